"""fer-bench: one timed training epoch and inference timings, e.g. ``fer-bench model=leaky keras=true``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.common import CONF_DIR, exit_on_error
from fer_lightning.data.csv_reader import existing_csv


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="bench")
def main(cfg: DictConfig) -> None:
    exit_on_error(lambda: existing_csv(cfg.data.csv_path))  # before the training stack's imports (fer_lightning.cli)
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from fer_lightning.bench.speed import bench

    exit_on_error(lambda: bench(cfg), also=(MisconfigurationException,))  # as fer-train: trainer.* refused
