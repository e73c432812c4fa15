"""Callbacks of our own; the rest come straight from Lightning via config."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import RichModelSummary
from lightning.pytorch.utilities.model_summary import get_human_readable_count

from fer_lightning.errors import FerError, check_whole_number
from fer_lightning.models.flops import face_flops

log = logging.getLogger(__name__)
ACCELERATOR_CHECK_EVERY_N_STEPS = 50


class NonFiniteLossError(FerError, ArithmeticError):
    """The training loss became NaN or infinite; the message says at which step."""


class StopOnNonFiniteLoss(L.Callback):
    """Stop at the first step whose loss is NaN or infinite, instead of training on garbage until the end.

    Reading the loss on the host is free on a CPU, so there every step is checked at once. On a GPU each read
    is a host sync that leaves the GPU idle between steps, so the per-step checks stay on the device and are
    read together every ``every_n_steps`` steps (default 50 there, 1 on a CPU), before validation and at the
    end of an epoch; the error still names the first bad step, and ``last_checkpoint`` where it exists.
    """

    def __init__(self, every_n_steps: int | None = None, last_checkpoint: str | None = None) -> None:
        if every_n_steps is not None:
            check_whole_number("callbacks.stop_on_non_finite_loss.every_n_steps", every_n_steps, of="steps")
        self.every_n_steps, self.last_checkpoint = every_n_steps, last_checkpoint
        self._unread: list[tuple[torch.Tensor, torch.Tensor, int, int, int]] = []  # (finite, loss, step, epoch, batch)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        loss = loss.detach()
        self._unread.append((torch.isfinite(loss).all(), loss, trainer.global_step, trainer.current_epoch, batch_idx))
        every = self.every_n_steps or (1 if loss.device.type == "cpu" else ACCELERATOR_CHECK_EVERY_N_STEPS)
        if len(self._unread) >= every:
            self._read()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._read()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._read()

    def _read(self) -> None:
        unread, self._unread = self._unread, []
        if not unread:
            return
        finite = torch.stack([entry[0] for entry in unread]).cpu()  # the one host sync
        if bool(finite.all()):
            return
        _, loss, step, epoch, batch_idx = unread[int((~finite).nonzero()[0])]
        last = self.last_checkpoint if self.last_checkpoint and Path(self.last_checkpoint).is_file() else None
        raise NonFiniteLossError(
            f"training loss is {float(loss):.4g} at step {step} (epoch {epoch + 1}, batch {batch_idx + 1}); "
            f"stopped. Lower the learning rate or check the inputs. Last checkpoint: {last or 'none written yet'}"
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
        state: dict[str, Any] = {"torch": torch.get_rng_state()}
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


class FaceFlopsSummary(RichModelSummary):
    """Lightning's table of the model's layers at the start of training, with the FLOPs one face costs each.

    Lightning counts FLOPs only by passing an ``example_input_array`` through the DataModule's batch hooks and the
    forward; here the hooks would augment it, drawing from the run's random state, and with ``compile=`` the
    forward would compile a graph before training. Without one it printed 0 FLOPs for every layer and in all. So one
    face goes through the forward on its own (``face_flops``, which leaves the run as it found it), and its counts
    fill the FLOPs column and the total.
    """

    def __init__(self, max_depth: int = 1, **summarize_kwargs: Any) -> None:
        super().__init__(max_depth, **summarize_kwargs)
        self._flops: dict[str, int] = {}  # by submodule name, "" the whole forward: counted as training starts

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._flops = face_flops(pl_module) if self._max_depth else {}
        super().on_fit_start(trainer, pl_module)

    def summarize(self, summary_data: list[tuple[str, list[str]]], total_parameters: int,  # type: ignore[override]
                  trainable_parameters: int, model_size: float, total_training_modes: dict[str, int],
                  total_flops: int, **summarize_kwargs: Any) -> None:
        columns = dict(summary_data)
        columns["FLOPs"] = [get_human_readable_count(self._flops.get(name, 0)) for name in columns["Name"]]
        RichModelSummary.summarize(list(columns.items()), total_parameters, trainable_parameters, model_size,
                                   total_training_modes, self._flops.get("", 0), **summarize_kwargs)
        # The table goes to the console alone; this line also reaches train.log, and says what the FLOPs count.
        log.info("Model: %s parameters, %s FLOPs in one face's forward pass",
                 get_human_readable_count(total_parameters), get_human_readable_count(self._flops.get("", 0)))
