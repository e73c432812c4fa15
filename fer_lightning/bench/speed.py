"""fer-bench: how fast this machine trains and predicts with the configured model, one ``key=value`` per line.

``fer-bench`` takes train.py's overrides, e.g. ``fer-bench model=leaky
data.batch_size=256``. It trains one full real epoch through the Lightning Trainer (data pipeline, augmentation
and validation included, no PrivateTest pass), then times inference with the weights it trained.
It also counts the network's forward FLOPs per face, so the speeds read as arithmetic rates (training taken as
3x the forward: the backward pass costs about twice the forward).

``fer-bench keras=true`` also times the study's Keras model with the same layers (``bench.keras_reference``, in
its own process, before ours) and prints the ratios. Both sides' training figures leave out the first
``warmup_batches`` batches (Keras' graph tracing, oneDNN's kernel building); ours is still a Lightning epoch
with augmentation.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.errors import FerError
from fer_lightning.fer2013 import IMAGE_SIDE
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.timing import timings
from fer_lightning.precision import inference_bf16
from fer_lightning.training.run_dir import RunDir
from fer_lightning.training.train import train


class EpochClock(L.Callback):
    """Times the first training epoch: its steady training batches, and the whole epoch with validation.

    The first ``warmup_batches`` are left out of the steady figure, as the Keras reference leaves out its graph
    tracing: oneDNN builds its kernels for each new shape on the first steps.
    """

    def __init__(self, warmup_batches: int) -> None:
        self.warmup_batches = warmup_batches
        self.images, self.epoch_seconds, self._start = 0, 0.0, 0.0
        self.steady_images, self.steady_seconds, self._steady_start = 0, 0.0, 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        now = time.perf_counter()
        self.images += len(batch[1])
        if batch_idx == self.warmup_batches - 1:
            self._steady_start = now
        elif batch_idx >= self.warmup_batches:
            self.steady_images += len(batch[1])
            self.steady_seconds = now - self._steady_start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_seconds = time.perf_counter() - self._start


def cpu_name() -> str:
    """The processor, its core count and its bf16 matrix units: figures are only comparable on one CPU."""
    model, flags = platform.processor() or platform.machine(), set()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    units = [name for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX-512 bf16")) if flag in flags]
    return f"{model}, {os.cpu_count()} cores" + "".join(f", {unit}" for unit in units)


def forward_mflops(net: nn.Module) -> float:
    """Millions of floating-point operations in one 48x48 face's forward pass (a multiply-add counts 2)."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        net.float()(torch.zeros(1, 1, IMAGE_SIDE, IMAGE_SIDE, device=next(net.parameters()).device))
    return counter.get_total_flops() / 1e6


def keras_figures(cfg: DictConfig) -> dict[str, Any]:
    """The Keras reference's figures for the configured net, from its own process (see keras_reference)."""
    net = json.dumps(OmegaConf.to_container(cfg.model.net, resolve=True))
    command = [sys.executable, "-m", "fer_lightning.bench.keras_reference", net, str(cfg.data.csv_path),
               str(cfg.data.cache_dir), str(cfg.data.batch_size), str(cfg.keras_infer_batch), str(cfg.warmup_batches)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise FerError(f"the Keras reference failed: {last.removeprefix('error: ')}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(cfg: DictConfig) -> dict[str, Any]:
    """One timed epoch, then inference timings with its last checkpoint; returns the figures printed."""
    with open_dict(cfg):
        cfg.test, cfg.trainer.max_epochs = False, 1
    keras = keras_figures(cfg) if cfg.keras else {}
    clock = EpochClock(cfg.warmup_batches)
    summary = train(cfg, extra_callbacks=[clock])
    if not clock.steady_images:
        raise FerError(f"the epoch had no training batches after the {cfg.warmup_batches} warm-up ones "
                       "(warmup_batches); nothing steady to time")
    device = torch.device(str(summary.device))
    bf16 = inference_bf16(summary.precision, device.type)
    checkpoint = RunDir(Path(cfg.paths.output_dir)).last_checkpoint
    faces = load_fer2013(cfg.data.csv_path, cfg.data.cache_dir).split("PublicTest")[0][: cfg.infer_batch]
    speeds = {}
    for runtime in cfg.runtimes:  # the first is the headline: fer-predict's default
        classifier = FaceClassifier.from_checkpoint(checkpoint, bf16, runtime=runtime)
        classifier.net.to(device)  # time inference where training ran
        speeds[runtime] = timings(classifier.logits, faces, batch=cfg.infer_batch)
    speed = speeds[cfg.runtimes[0]]
    mflops = forward_mflops(classifier.net)
    figures = {
        "train_images_per_s": clock.steady_images / clock.steady_seconds,
        "epoch_seconds": clock.epoch_seconds,
        "epoch_images_per_s": clock.images / clock.epoch_seconds,  # PublicTest validation counted in the time
        "infer_images_per_s": speed["faces_per_s"],
        "latency_ms_p50": speed["latency_ms_p50"],
        "latency_ms_p95": speed["latency_ms_p95"],
        "forward_mflops_per_face": mflops,
        "train_gflops_per_s": 3 * mflops * clock.steady_images / clock.steady_seconds / 1e3,
        "infer_gflops_per_s": mflops * speed["faces_per_s"] / 1e3,
        "precision": summary.precision,
        "device": summary.device,
        "memory_format": "channels_last" if bf16 else "contiguous",
        "infer_runtime": cfg.runtimes[0],
        **{f"{runtime}_{key}": value for runtime, timed in speeds.items() for key, value in timed.items()},
        "batch_size": cfg.data.batch_size,
        "model": cfg.model.net.activation,
        "cpu": cpu_name(),
    }
    if keras:
        figures |= keras | {
            "train_speedup_vs_keras": figures["train_images_per_s"] / keras["keras_train_images_per_s"],
            "epoch_speedup_vs_keras": figures["epoch_images_per_s"] / keras["keras_train_images_per_s"],
            "infer_speedup_vs_keras": figures["infer_images_per_s"] / keras["keras_infer_images_per_s"],
        }
    (Path(cfg.paths.output_dir) / "bench.json").write_text(json.dumps(figures, indent=2))
    for key, value in figures.items():
        print(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}")
    return figures
