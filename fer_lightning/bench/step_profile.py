"""Where a training step's time goes: ``fer-bench profile_batches=3`` profiles a few steady steps.

On one H200 the resident-batch steps took 16-18 ms whatever the batch (512 to 2048) and the net (0.8 to 3.1 TFLOP
a step), which points away from the GPU's arithmetic. Three figures per step tell the candidates apart:
``profile_device_busy_ms`` (kernel time: the GPU's own share), ``profile_sync_wait_ms`` (the host blocked until
the GPU caught up: a ``.item()`` or a copy back) and ``profile_kernel_launches`` (each launch costs the host a
few microseconds whatever its size). A step much longer than its device time, with few waits, is the host's:
Python and launches, what CUDA graphs and ``torch.compile`` remove.

Lightning's own PyTorchProfiler was tried first (the GPU checks of 2026-12-04): its schedule repeats through the
run and the report keeps only the last cycle, which on a short epoch held validation and checkpointing rather
than the steps. This callback profiles exactly the steps it is given and nothing else.
"""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from fer_lightning.bench.clocks import device_clock
from fer_lightning.errors import FerError

# CUDA runtime calls in which the host waits for the device. cudaDeviceSynchronize is left out: only the
# profile's own clock reading calls it, at the end.
SYNC_WAITS = ("cudaStreamSynchronize", "cudaEventSynchronize")
# The host's launch calls; a CUDA graph's replay (compile=reduce-overhead) launches all its kernels in one.
KERNEL_LAUNCHES = ("cudaLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernel", "cuLaunchKernelEx", "cudaGraphLaunch")
log = logging.getLogger(__name__)


class StepProfiler(L.Callback):
    """Profiles ``steps`` training steps that end one batch before fer-bench's ``warmup_batches`` do: inside the
    warm-up, so the profiler's cost stays out of the timed figures, and after its first batch, which builds kernels.

    After them ``figures`` holds the per-step figures and ``table`` the operations by host time (by device time on a
    GPU), then by how often they ran.
    """

    def __init__(self, steps: int, warmup_batches: int) -> None:
        if not 1 <= steps <= warmup_batches - 2:
            raise FerError(f"profile_batches={steps} needs warmup_batches of at least {steps + 2} (it is "
                           f"{warmup_batches}): the profiled steps lie inside the warm-up, after its first batch "
                           "and one before its end")
        self.first, self.steps = warmup_batches - steps - 1, steps  # batches counted from 0 over the whole run
        self.batches, self.table = 0, ""
        self.figures: dict[str, float] = {}
        self._profile: profile | None = None
        self._start, self._on_gpu = 0.0, False

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        if self.batches == self.first:
            self._on_gpu = pl_module.device.type == "cuda"
            activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if self._on_gpu else [])]
            self._profile = profile(activities=activities)
            self._start = device_clock(pl_module.device)
            self._profile.start()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.batches += 1
        if self._profile is not None and self.batches == self.first + self.steps:
            seconds = device_clock(pl_module.device) - self._start
            self._profile.stop()
            operations = self._profile.key_averages()
            self.figures = step_figures(operations, seconds, self.steps, self._on_gpu)
            by_time = operations.table(sort_by="self_device_time_total" if self._on_gpu else "self_cpu_time_total",
                                       row_limit=30)
            # Where the host is what a step waits for, how many operations it dispatches counts, whatever each costs.
            by_count = operations.table(sort_by="count", row_limit=40)
            steps = f"{self.steps} step{'s' if self.steps > 1 else ''}"
            self.table = f"By time, over {steps}:\n{by_time}\nBy count, over {steps}:\n{by_count}"
            self._profile = None


def step_figures(operations: Any, seconds: float, steps: int, on_gpu: bool) -> dict[str, float]:
    """Per-step figures from a profile's ``key_averages()`` over ``steps`` steps that took ``seconds`` in all."""
    figures = {
        "profile_step_ms": seconds * 1e3 / steps,
        # Every level counted: conv2d and the convolution it calls are two.
        "profile_aten_ops": sum(op.count for op in operations if op.key.startswith("aten::")) / steps,
    }
    kernels = [op for op in operations if op.device_type == DeviceType.CUDA and not op.is_user_annotation]
    if on_gpu and not kernels:  # PyTorch's profiler needs CUPTI for the GPU's side; zeros would read as an idle GPU
        log.warning("the profiler recorded no GPU kernels (is CUPTI missing?): host figures only")
    elif on_gpu:  # the profiler's times are in microseconds
        device_us = sum(op.self_device_time_total for op in kernels)
        waits_us = sum(op.self_cpu_time_total for op in operations if op.key in SYNC_WAITS)
        figures |= {
            "profile_device_busy_ms": device_us / 1e3 / steps,
            "profile_sync_wait_ms": waits_us / 1e3 / steps,
            "profile_kernel_launches": sum(op.count for op in operations if op.key in KERNEL_LAUNCHES) / steps,
        }
    return figures
