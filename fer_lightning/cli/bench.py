"""fer-bench: one timed training epoch and inference timings, e.g. ``fer-bench model=leaky keras=true``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.bench.speed import bench
from fer_lightning.cli.common import CONF_DIR, exit_on_error


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="bench")
def main(cfg: DictConfig) -> None:
    exit_on_error(lambda: bench(cfg))
