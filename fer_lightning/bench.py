"""fer-bench: how fast this machine trains and predicts with the configured model, one ``key=value`` per line.

``fer-bench`` (or ``python -m fer_lightning.bench``) takes train.py's overrides, e.g. ``fer-bench model=leaky
data.batch_size=256``. It trains one full real epoch through the Lightning Trainer (data pipeline, augmentation
and validation included, no PrivateTest pass), then times inference with the weights it trained.
It also counts the network's forward FLOPs per face, so the speeds read as arithmetic rates (training taken as
3x the forward: the backward pass costs about twice the forward).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, open_dict
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fer_lightning.cli import CONF_DIR, exit_on_error
from fer_lightning.fercsv import load_fer2013
from fer_lightning.inference import FaceClassifier
from fer_lightning.timing import timings
from fer_lightning.training import train


class EpochClock(L.Callback):
    """Times the first training epoch: its training batches alone, and the whole epoch with validation."""

    def __init__(self) -> None:
        self.images, self.train_seconds, self.epoch_seconds, self._start = 0, 0.0, 0.0, 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.images += len(batch[1])
        self.train_seconds = time.perf_counter() - self._start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_seconds = time.perf_counter() - self._start


def forward_mflops(net: nn.Module) -> float:
    """Millions of floating-point operations in one 48x48 face's forward pass (a multiply-add counts 2)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net.float()(torch.zeros(1, 1, 48, 48, device=next(net.parameters()).device))
    return counter.get_total_flops() / 1e6


def bench(cfg: DictConfig) -> dict[str, Any]:
    """One timed epoch, then inference timings with its last checkpoint; returns the figures printed."""
    with open_dict(cfg):
        cfg.test, cfg.trainer.max_epochs = False, 1
    clock = EpochClock()
    summary = train(cfg, extra_callbacks=[clock])
    bf16 = summary["precision"] == "bf16-mixed"
    classifier = FaceClassifier.from_checkpoint(Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt", bf16)
    classifier.net.to(summary["device"])  # time inference where training ran
    faces = load_fer2013(cfg.data.csv_path, cfg.data.cache_dir).split("PublicTest")[0][: cfg.infer_batch]
    speed = timings(classifier.logits, faces, batch=cfg.infer_batch)
    mflops = forward_mflops(classifier.net)
    figures = {
        "train_images_per_s": clock.images / clock.train_seconds,
        "epoch_seconds": clock.epoch_seconds,
        "infer_images_per_s": speed["faces_per_s"],
        "latency_ms_p50": speed["latency_ms_p50"],
        "latency_ms_p95": speed["latency_ms_p95"],
        "forward_mflops_per_face": mflops,
        "train_gflops_per_s": 3 * mflops * clock.images / clock.train_seconds / 1e3,
        "infer_gflops_per_s": mflops * speed["faces_per_s"] / 1e3,
        "precision": summary["precision"],
        "device": summary["device"],
        "memory_format": "channels_last" if bf16 else "contiguous",
        "batch_size": cfg.data.batch_size,
        "model": cfg.model.net.activation,
    }
    (Path(cfg.paths.output_dir) / "bench.json").write_text(json.dumps(figures, indent=2))
    for key, value in figures.items():
        print(f"{key}={value:.1f}" if isinstance(value, float) else f"{key}={value}")
    return figures


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="bench")
def main(cfg: DictConfig) -> None:
    exit_on_error(lambda: bench(cfg))


if __name__ == "__main__":
    main()
