"""Callbacks of our own; the rest come straight from Lightning via config."""

from __future__ import annotations

import logging
import time
from typing import Any

import lightning as L
import torch

from fer_lightning.errors import FerError

log = logging.getLogger(__name__)


class NonFiniteLossError(FerError, ArithmeticError):
    """The training loss became NaN or infinite; the message says at which step."""


class StopOnNonFiniteLoss(L.Callback):
    """Stop at the first step whose loss is NaN or infinite, instead of training on garbage until the end.

    One scalar check per step: free on CPU, one small host sync per step on a GPU.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not torch.isfinite(loss.detach()).all():
            last = getattr(trainer.checkpoint_callback, "last_model_path", "") or "none written yet"
            raise NonFiniteLossError(
                f"training loss is {float(loss):.4g} at step {trainer.global_step} (epoch {trainer.current_epoch + 1}, "
                f"batch {batch_idx + 1}); stopped. Lower the learning rate or check the inputs. "
                f"Last checkpoint: {last}"
            )


class GlobalRngState(L.Callback):
    """Puts torch's global random state (dropout draws from it) into checkpoints and back on resume.

    Lightning saves no random state. The state is captured when the checkpoint is written, at the end of an
    epoch, and restored when the next epoch starts, after Lightning's sanity check and data-loader set-up have
    drawn what they draw; in between, an uninterrupted run draws nothing from it.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Any] | None = None

    def state_dict(self) -> dict[str, Any]:
        state = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending = state_dict

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._pending is None:
            return
        torch.set_rng_state(self._pending["torch"])
        if "cuda" in self._pending and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(self._pending["cuda"])
        self._pending = None


class EpochSummary(L.Callback):
    """One log line per epoch (metrics and seconds), so background runs show progress in train.log.

    Lightning computes epoch-level train metrics after ``on_train_epoch_end``, so an epoch is reported when
    the next one starts, and the last one when training ends.
    """

    def __init__(self, keys: tuple[str, ...] = ("train/loss", "train/acc", "val/loss", "val/acc", "val/acc_best")):
        self.keys = keys
        self._epoch_start, self._epoch_running = time.perf_counter(), False

    def _report(self, trainer: L.Trainer, epoch: int) -> None:
        metrics = trainer.callback_metrics
        shown = " ".join(f"{k}={float(metrics[k]):.4f}" for k in self.keys if k in metrics)
        log.info("epoch %d/%d %s (%.0f s)", epoch + 1, trainer.max_epochs, shown,
                 time.perf_counter() - self._epoch_start)

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._epoch_running:  # not after a resume, where the previous epoch ran in another process
            self._report(trainer, trainer.current_epoch - 1)
        self._epoch_start, self._epoch_running = time.perf_counter(), True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._epoch_running:
            self._report(trainer, trainer.current_epoch - 1)
