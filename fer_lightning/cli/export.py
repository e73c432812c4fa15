"""fer-export: ``fer-export ckpt=<checkpoint or run dir> format=onnx`` writes the ONNX file beside the checkpoint,
checks it, and times it."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.common import CONF_DIR, exit_on_error
from fer_lightning.data.csv_reader import existing_csv
from fer_lightning.models.checkpoints import existing_checkpoint
from fer_lightning.training.run_dir import RunDir


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="export")
def main(cfg: DictConfig) -> None:
    cfg.ckpt = str(exit_on_error(lambda: existing_checkpoint(RunDir.checkpoint_named(cfg.ckpt))))  # before torch
    exit_on_error(lambda: existing_csv(cfg.csv_path))  # parity needs real faces
    from fer_lightning.inference.onnx_file import export

    exit_on_error(lambda: export(cfg))
