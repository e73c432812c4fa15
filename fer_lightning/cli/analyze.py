"""fer-analyze: faces of each class, the class balance of each split, and the data audit (blanks, copies)."""

from __future__ import annotations

from pathlib import Path

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.common import CONF_DIR, exit_on_error
from fer_lightning.data.csv_reader import existing_csv
from fer_lightning.errors import check_switch
from fer_lightning.host_memory import keep_freed_memory


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="analyze")
def main(cfg: DictConfig) -> None:
    exit_on_error(lambda: existing_csv(cfg.csv_path))  # before the audit's imports (fer_lightning.cli)
    exit_on_error(lambda: check_switch("keep_freed_memory", cfg.keep_freed_memory))
    from fer_lightning.data.analysis import analyze

    if cfg.keep_freed_memory:  # the audit's similarity chunks are ~300 MB each, faulted in afresh otherwise
        keep_freed_memory()
    written = exit_on_error(lambda: analyze(cfg.csv_path, Path(cfg.paths.output_dir), Path(cfg.cache_dir),
                                            cfg.per_class, cfg.audit, cfg.near_duplicate_check))
    for path in written:
        print(f"wrote {path}")
