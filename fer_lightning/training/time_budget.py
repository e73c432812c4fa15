"""``fit_minutes``: train for as many epochs as fit a number of minutes, the learning-rate schedule sized to them.

Lightning's ``trainer.max_time`` stops a run when the time is up, wherever its schedule has got to: a one-cycle
run stopped halfway never anneals. This callback plans instead. After each epoch it divides the minutes left by
that epoch's seconds (validation included), sets the number of epochs that still fit, and resizes a one-cycle-style
schedule to end with the last of them (``EmotionClassifier.resize_schedule``). The plan is made after the first
epoch and made again after the second; after that it only shrinks, when an epoch ran slower than planned, so the
schedule is stretched at most twice. ``trainer.max_epochs`` stays the most it may plan.

The first epoch carries the warm-up: its first step compiles (the fused block tails, ``compile=``) and meets cold
caches, so its plan is on the safe side. Where the warm-up took most of a short budget, that plan would leave room
for no second epoch, and the run would end before the second epoch's plan could see the real pace: so where the
epoch without its warm-up (its first step counted as long as its later ones took on average) leaves room for
another, the first plan keeps one more. Planning from that estimate throughout was tried: a 10-minute
``cpu_10min`` run planned 4 epochs from it, found the second epoch as slow as the first and shrank the plan to 3
(docs/results.md, "A time budget").

What was spent and planned goes into checkpoints, so a resumed run keeps to the same budget.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from typing import Any

import lightning as L

from fer_lightning.errors import check_number
from fer_lightning.models.classifier import EmotionClassifier

log = logging.getLogger(__name__)
EPOCHS_PLANNED_FREELY = 2  # after these, the plan only shrinks


class FitInMinutes(L.Callback):
    """Ends training within ``minutes`` of fit's start, with as many whole epochs as fit, the schedule sized to
    them."""

    def __init__(self, minutes: float) -> None:
        check_number("fit_minutes", minutes, above=0, why="the minutes training may take")
        self.budget_s = 60.0 * minutes
        self._spent_before = 0.0  # seconds of this budget spent before a resume
        self._planned: int | None = None
        self._ceiling = 1  # trainer.max_epochs: the most epochs a plan may have
        self._fit_start = self._epoch_start = 0.0
        self._first_step_s = self._last_step_end = 0.0  # this epoch's first step; when its latest step ended
        self._warm = False  # whether this process has run an epoch (its warm-up) already

    def state_dict(self) -> dict[str, Any]:
        return {"spent_s": self._spent(), "planned_epochs": self._planned}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._spent_before, self._planned = state_dict["spent_s"], state_dict["planned_epochs"]

    def _spent(self) -> float:
        return self._spent_before + time.perf_counter() - self._fit_start

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._fit_start = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._ceiling = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else sys.maxsize  # -1: none
        if self._planned is not None:  # a resumed run: the scheduler's state already holds the plan's length
            trainer.fit_loop.max_epochs = self._planned

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._last_step_end = time.perf_counter()
        if batch_idx == 0:
            self._first_step_s = self._last_step_end - self._epoch_start

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        done = trainer.current_epoch + 1
        epoch_s = time.perf_counter() - self._epoch_start
        left_s = max(self.budget_s - self._spent(), 0.0)
        fits, pace = done + int(left_s / epoch_s), f"epochs of {epoch_s:.0f} s"
        if not self._warm:
            steady_s = self._without_warm_up(epoch_s, trainer.num_training_batches)
            if fits == done and left_s >= steady_s:  # the warm-up took the room of a second epoch
                fits, pace = done + 1, f"{pace} ({steady_s:.0f} s without its warm-up: one more, to plan from)"
            self._warm = True
        fits = trainer.strategy.broadcast(min(fits, self._ceiling))  # DDP's processes must agree: rank 0's plan
        current = trainer.max_epochs
        if done > EPOCHS_PLANNED_FREELY and current is not None and fits >= current:
            return
        if fits != current:
            self._plan(trainer, pl_module, fits, pace)

    def _without_warm_up(self, epoch_s: float, batches: int | float) -> float:
        """``epoch_s`` with its first of ``batches`` training steps as long as its later ones took on average."""
        if not 1 < batches < math.inf:
            return epoch_s
        later_step_s = (self._last_step_end - self._epoch_start - self._first_step_s) / (batches - 1)
        return epoch_s - self._first_step_s + later_step_s

    def _plan(self, trainer: L.Trainer, pl_module: L.LightningModule, epochs: int, pace: str) -> None:
        done = trainer.current_epoch + 1
        log.info("fit_minutes=%g: %s, %.0f s spent, so %d epochs in all (was %d)",
                 self.budget_s / 60, pace, self._spent(), epochs, trainer.max_epochs)
        trainer.fit_loop.max_epochs = self._planned = epochs
        if epochs > done and isinstance(pl_module, EmotionClassifier) and pl_module.schedule_has_length:
            steps_per_epoch = math.ceil(trainer.num_training_batches / trainer.accumulate_grad_batches)
            pl_module.resize_schedule(epochs * steps_per_epoch)
