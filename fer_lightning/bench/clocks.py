"""Clock readings during training that wait for the device: a GPU queues work, and a timer read while it is
still busy stops early."""

from __future__ import annotations

import time
from typing import Any

import lightning as L
import torch

from fer_lightning.data.resident import ResidentBatches


class EpochClock(L.Callback):
    """Times the training batches after the run's first ``warmup_batches``, and the last epoch as a whole.

    The warm-up is left out of the steady figure, as the Keras reference leaves out its graph tracing: oneDNN
    builds its kernels for each new shape on the first steps, and ``torch.compile`` compiles there. Over several
    epochs (``fer-bench epochs=3``, for a GPU, where one epoch is a second) the steady figure adds up each
    epoch's training batches and leaves the validation between them out.
    """

    def __init__(self, warmup_batches: int) -> None:
        self.warmup_batches = warmup_batches
        self.batches, self.images, self.epoch_images, self.epoch_seconds = 0, 0, 0, 0.0
        self.steady_images, self.steady_seconds = 0, 0.0
        self._epoch_start, self._segment_start = 0.0, 0.0
        self.loader = ""  # what fed the batches: resident (splits on the device) or dataloader

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = self._segment_start = device_clock(pl_module.device)
        self.epoch_images = 0
        self.loader = "resident" if isinstance(trainer.train_dataloader, ResidentBatches) else "dataloader"

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        faces = len(batch[1])
        self.batches, self.images, self.epoch_images = self.batches + 1, self.images + faces, self.epoch_images + faces
        if self.batches == self.warmup_batches:
            self._segment_start = device_clock(pl_module.device)  # the warm-up ends with this batch
        elif self.batches > self.warmup_batches:
            self.steady_images += faces
            if batch_idx == trainer.num_training_batches - 1:  # only here wait for the device: a wait after
                self.steady_seconds += device_clock(pl_module.device) - self._segment_start  # every step slows it

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epoch_seconds = device_clock(pl_module.device) - self._epoch_start


def device_clock(device: torch.device) -> float:
    """``time.perf_counter()`` once the device has finished the work queued on it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()
