"""fer-predict: ``fer-predict ckpt=<run dir or checkpoint> inputs=photos/`` (or onnx=<file>, stack=<stack run dir>)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.common import CONF_DIR, exit_on_error
from fer_lightning.predict.request import check_request


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="predict")
def main(cfg: DictConfig) -> None:
    exit_on_error(lambda: check_request(cfg))  # before the inference stack's imports (fer_lightning.cli)
    from fer_lightning.predict.predictor import predict

    summary = exit_on_error(lambda: predict(cfg))
    if summary["failed"]:
        sys.exit(f"error: {summary['failed']} input(s) failed (each named above); the rest were predicted")
