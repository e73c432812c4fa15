"""Callbacks of our own; the rest come straight from Lightning via config."""

from __future__ import annotations

import logging
import time

import lightning as L

log = logging.getLogger(__name__)


class EpochSummary(L.Callback):
    """One log line per epoch (metrics and seconds), so background runs show progress in train.log.

    Lightning computes epoch-level train metrics after ``on_train_epoch_end``, so an epoch is reported when
    the next one starts, and the last one when training ends.
    """

    def __init__(self, keys: tuple[str, ...] = ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best")):
        self.keys = keys
        self._epoch_start = time.perf_counter()

    def _report(self, trainer: L.Trainer, epoch: int) -> None:
        metrics = trainer.callback_metrics
        shown = " ".join(f"{k}={float(metrics[k]):.4f}" for k in self.keys if k in metrics)
        log.info("epoch %d/%d %s (%.0f s)", epoch + 1, trainer.max_epochs, shown,
                 time.perf_counter() - self._epoch_start)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch > 0:
            self._report(trainer, trainer.current_epoch - 1)
        self._epoch_start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._report(trainer, trainer.current_epoch - 1)
