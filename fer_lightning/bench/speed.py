"""fer-bench: how fast this machine trains and predicts with the configured model, one ``key=value`` per line.

``fer-bench`` takes train.py's overrides, e.g. ``fer-bench model=leaky
data.batch_size=256``. It trains ``epochs`` full real epochs (1 by default) through the Lightning Trainer (data
pipeline, augmentation and validation included, no PrivateTest pass), then times inference with the weights it
trained.
It also counts the network's forward FLOPs per face, so the speeds read as arithmetic rates (training taken as
3x the forward: the backward pass costs about twice the forward), and times a large matrix product on the
same device in the precision training computed in: ``peak_tflops``, and ``mfu``, the share of it the training
steps reach. On a GPU every clock reading waits for the queued work first, or a timer would stop while the
device is still busy.

``fer-bench keras=true`` also times the study's Keras model with the same layers (``bench.keras_reference``, in
its own process, before ours) and prints the ratios. Both sides' training figures leave out the first
``warmup_batches`` batches (Keras' graph tracing, oneDNN's kernel building); ours is still a Lightning epoch
with augmentation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from fer_lightning.bench.clocks import EpochClock, device_clock
from fer_lightning.bench.step_profile import StepProfiler
from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.errors import ConfigError, FerError, as_list, check_switch, check_whole_number
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.onnx_file import OnnxFaceClassifier
from fer_lightning.inference.quantization import calibration_faces, quantize_int8
from fer_lightning.inference.runtime_names import AUTO, GRAPH_RUNTIMES, RUNTIMES
from fer_lightning.inference.runtimes import chosen_runtime, onnx_bytes
from fer_lightning.inference.timing import timings
from fer_lightning.machine import cpu_name
from fer_lightning.models.flops import face_flops
from fer_lightning.precision import channels_last_layout, inference_bf16
from fer_lightning.training.hparams import model_name
from fer_lightning.training.run_dir import RunDir
from fer_lightning.training.train import train

# What ``runtimes`` can list: fer-predict's auto, FaceClassifier's runtimes, and the int8 graph on either graph runtime.
BENCH_RUNTIMES = (AUTO, *RUNTIMES, *(f"{runtime}_int8" for runtime in GRAPH_RUNTIMES))


def matmul_peak_tflops(device: torch.device, dtype: torch.dtype, side: int | None = None, rounds: int = 5,
                       products: int = 4) -> float:
    """TFLOP/s of a square matrix product on ``device`` in the ``dtype`` training computes in (bf16 under
    bf16-mixed, else float32): the ceiling ``mfu`` is measured against. Timing bf16 on a CPU without bf16 units
    would time oneDNN's emulation (minutes, and no ceiling of anything training does).

    8192-sided on a GPU (large enough to fill an H100), 2048 on a CPU (seconds on two cores); three untimed
    products first, so kernel selection and clock ramp-up stay out of the figure. The rate is the fastest of
    ``rounds`` rounds of ``products`` products: a ceiling is what the device reaches when nothing holds it up, and
    one timed block took whatever the host did meanwhile (on a 2-core Zen 4 one run in five timed half the others'
    rate, and its ``mfu`` read 1.4).
    """
    side = side or (8192 if device.type == "cuda" else 2048)
    a, b = (torch.randn(side, side, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    fastest = float("inf")
    for _ in range(rounds):
        start = device_clock(device)
        for _ in range(products):
            a @ b
        fastest = min(fastest, device_clock(device) - start)
    return 2 * side**3 * products / fastest / 1e12


def compute_dtype(precision: str) -> torch.dtype:
    """The dtype a Lightning precision setting runs the convolutions and matrix products in."""
    if precision.startswith("bf16"):
        return torch.bfloat16
    return torch.float16 if precision.startswith("16") else torch.float32


def inference_candidate(runtime: str, checkpoint: Path, bf16: bool, device: torch.device,
                        int8_file: Path) -> Callable[[np.ndarray], np.ndarray]:
    """uint8 faces -> logits on one candidate: a FaceClassifier runtime (torch, torch_compile, onnxruntime,
    openvino) on ``device``, or ``<graph runtime>_int8``, the int8 graph fer-export int8=true would write."""
    if runtime.endswith("_int8"):
        return OnnxFaceClassifier(int8_file, runtime.removesuffix("_int8")).logits
    classifier = FaceClassifier.from_checkpoint(checkpoint, bf16, runtime=runtime)
    classifier.net.to(device)  # time inference where training ran
    return classifier.logits


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


def inference_speeds(cfg: DictConfig, runtimes: list[str], plain: FaceClassifier, checkpoint: Path, bf16: bool,
                     device: torch.device) -> dict[str, dict[str, float]]:
    """Each of ``runtimes`` timed on PublicTest faces, batched and one at a time; an int8 runtime's graph is
    quantised from ``plain`` first (calibrated on Training faces) where the run dir has none yet."""
    data = load_fer2013(cfg.data.csv_path, cfg.data.cache_dir)
    faces = data.split("PublicTest")[0][: cfg.infer_batch]
    int8_file = Path(cfg.paths.output_dir) / "model.int8.onnx"
    speeds = {}
    for runtime in runtimes:
        if runtime.endswith("_int8") and not int8_file.exists():
            calibration = calibration_faces(data.split("Training")[0], cfg.int8_calibration_rows)
            int8_file.write_bytes(quantize_int8(onnx_bytes(plain.net, plain.mean, plain.std), calibration))
        speeds[runtime] = timings(inference_candidate(runtime, checkpoint, bf16, device, int8_file), faces,
                                  batch=cfg.infer_batch)
    return speeds


def _check_knobs(cfg: DictConfig) -> None:
    """ConfigError for fer-bench's own knobs, before the timed training rather than after it; a lone runtime
    (``runtimes=torch``) becomes a list of one in ``cfg``."""
    check_whole_number("epochs", cfg.epochs)
    check_whole_number("warmup_batches", cfg.warmup_batches, "batches", least=0)
    check_whole_number("profile_batches", cfg.profile_batches, "steps", least=0)
    for key in ("infer_batch", "keras_infer_batch"):
        check_whole_number(key, cfg[key], "faces")
    check_switch("keras", cfg.keras)
    cfg.runtimes = as_list("runtimes", cfg.runtimes, "runtimes")
    unknown = [runtime for runtime in cfg.runtimes if runtime not in BENCH_RUNTIMES]
    if not cfg.runtimes or unknown:
        raise ConfigError(f"runtimes must list one or more of {', '.join(BENCH_RUNTIMES)}; got {list(cfg.runtimes)}")


def bench(cfg: DictConfig) -> dict[str, Any]:
    """Timed training epochs, then inference timings with the last checkpoint; returns the figures printed."""
    _check_knobs(cfg)
    with open_dict(cfg):
        cfg.test, cfg.trainer.max_epochs = False, cfg.epochs
    keras = keras_figures(cfg) if cfg.keras else {}
    clock = EpochClock(cfg.warmup_batches)
    profiler = StepProfiler(cfg.profile_batches, cfg.warmup_batches) if cfg.profile_batches else None
    summary = train(cfg, extra_callbacks=[clock, *([profiler] if profiler else [])])
    if not clock.steady_images:
        raise FerError(f"the epoch had no training batches after the {cfg.warmup_batches} warm-up ones "
                       "(warmup_batches); nothing steady to time")
    device = torch.device(str(summary.device))
    checkpoint = RunDir(Path(cfg.paths.output_dir)).last_checkpoint
    plain = FaceClassifier.from_checkpoint(checkpoint)  # float32 on the CPU: the int8 graph's source, FLOPs
    bf16 = inference_bf16(summary.precision, device.type)
    # auto is the runtime fer-predict would pick here, timed once where the list names it too
    runtimes = list(dict.fromkeys(chosen_runtime(AUTO, bf16) if r == AUTO else r for r in cfg.runtimes))
    speeds = inference_speeds(cfg, runtimes, plain, checkpoint, bf16, device)
    speed = speeds[runtimes[0]]  # the first is the headline: fer-predict's default
    mflops = face_flops(plain.net.to(device))[""] / 1e6
    train_gflops = 3 * mflops * clock.steady_images / clock.steady_seconds / 1e3
    peak_tflops = matmul_peak_tflops(device, compute_dtype(summary.precision))
    figures = {
        "train_images_per_s": clock.steady_images / clock.steady_seconds,
        "epoch_seconds": clock.epoch_seconds,
        "epoch_images_per_s": clock.epoch_images / clock.epoch_seconds,  # the last epoch, validation included
        "infer_images_per_s": speed["faces_per_s"],
        "latency_ms_p50": speed["latency_ms_p50"],
        "latency_ms_p95": speed["latency_ms_p95"],
        "forward_mflops_per_face": mflops,
        "train_gflops_per_s": train_gflops,
        "peak_tflops": peak_tflops,
        "mfu": train_gflops / 1e3 / peak_tflops,
        "infer_gflops_per_s": mflops * speed["faces_per_s"] / 1e3,
        "precision": summary.precision,
        "device": summary.device,
        "memory_format": "channels_last" if channels_last_layout(cfg.channels_last) else "contiguous",  # training's
        "infer_runtime": runtimes[0],
        **{f"{runtime}_{key}": value for runtime, timed in speeds.items() for key, value in timed.items()},
        "batch_size": cfg.data.batch_size,
        "data_loader": clock.loader,
        "model": model_name(cfg),
        "cpu": cpu_name(),
    }
    if profiler:
        figures |= profiler.figures
        (Path(cfg.paths.output_dir) / "profile.txt").write_text(profiler.table)
        print(profiler.table)
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
