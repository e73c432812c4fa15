"""fit_minutes: as many epochs as fit the minutes, the one-cycle schedule sized to them, kept across a resume."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from fer_lightning.training import time_budget
from fer_lightning.training.train import train

BATCHES = 2  # an epoch's batches of 4 faces: only the schedule's own test needs more steps than its floor of 100
SCHEDULE_BATCHES = 35  # all 140 Training faces of the synthetic CSV


class Clock:
    """Stands in for time.perf_counter in time_budget: seconds pass only as training batches end."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


class Ticks(L.Callback):
    """Each training batch takes ``seconds(epoch, batch)`` on the clock; records the learning rate each step used.
    Registered before fit_minutes' own callback, so its clock has moved when that one reads it."""

    def __init__(self, clock: Clock, seconds=lambda epoch, batch: 1.0, stop_after_epoch: int | None = None) -> None:
        self.clock, self.seconds, self.stop_after_epoch = clock, seconds, stop_after_epoch
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, *args) -> None:
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_train_batch_end(self, trainer: L.Trainer, module, outputs, batch, batch_idx: int) -> None:
        self.clock.now += self.seconds(trainer.current_epoch, batch_idx)

    def on_train_epoch_start(self, trainer: L.Trainer, *args) -> None:
        if trainer.current_epoch == self.stop_after_epoch:
            raise KeyboardInterrupt  # stands in for a kill, after that epoch's checkpoint


def budgeted(train_cfg, epochs: float, *more: str, batches: int = BATCHES):
    """The tiny run, fit_minutes set to ``epochs`` epochs of ``batches`` batches at a second a batch."""
    return train_cfg(f"fit_minutes={epochs * batches / 60}", "trainer.max_epochs=20", "data.batch_size=4",
                     f"trainer.limit_train_batches={batches}", "test=false", *more)


def one_cycle_lrs(cfg, steps: int) -> list[float]:
    """The learning rate of each step of a one-cycle schedule built for ``steps`` from the start."""
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, total_steps=steps, max_lr=cfg.model.scheduler.max_lr,
                                                    pct_start=cfg.model.scheduler.pct_start)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return lrs


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(time_budget, "time", clock)
    return clock


def test_the_run_ends_in_budget_with_its_schedule_annealed(train_cfg, clock: Clock) -> None:
    n = SCHEDULE_BATCHES
    cfg = budgeted(train_cfg, 4.5, batches=n)  # four and a half epochs of a second a batch
    ticks = Ticks(clock)
    summary = train(cfg, extra_callbacks=[ticks])
    assert summary.epochs == 4 and clock.now <= 4.5 * n
    # Planned after the first epoch: from there on, exactly the schedule of a 4-epoch run.
    assert ticks.lrs[n:] == pytest.approx(one_cycle_lrs(cfg, 4 * n)[n:], rel=1e-6)
    assert ticks.lrs[-1] < 1e-3 * max(ticks.lrs)


def test_a_slow_first_epoch_is_replanned_after_the_second(train_cfg, clock: Clock) -> None:
    """The first epoch's every step slower (cold caches): planned from it alone, the run would stop at 3 epochs."""
    ticks = Ticks(clock, seconds=lambda epoch, batch: 2.0 if epoch == 0 else 1.0)
    summary = train(budgeted(train_cfg, 6), extra_callbacks=[ticks])
    assert summary.epochs == 5 and clock.now <= 6 * BATCHES


def test_a_warm_up_that_took_the_room_of_a_second_epoch_leaves_one_to_plan_from(train_cfg, clock: Clock,
                                                                                 caplog) -> None:
    """A first step of 10 s, then steps of 1 s: the first epoch (11 s) is most of a 20-s budget, yet 4 more fit.
    Planned from the epoch's own length the run would stop after it, with no second epoch to plan from."""
    ticks = Ticks(clock, seconds=lambda epoch, batch: 10.0 if epoch == batch == 0 else 1.0)
    with caplog.at_level("INFO", logger=time_budget.__name__):
        summary = train(budgeted(train_cfg, 10), extra_callbacks=[ticks])
    assert summary.epochs == 5 and clock.now <= 10 * BATCHES
    assert "epochs of 11 s (2 s without its warm-up: one more, to plan from), 11 s spent, so 2 epochs" in caplog.text


def test_an_epoch_slower_than_planned_shortens_the_plan(train_cfg, clock: Clock) -> None:
    ticks = Ticks(clock, seconds=lambda epoch, batch: 2.0 if epoch == 3 else 1.0)
    summary = train(budgeted(train_cfg, 6), extra_callbacks=[ticks])
    assert summary.epochs == 4 and clock.now <= 6 * BATCHES  # planned 6; the fourth took twice as long


def test_the_budget_is_never_exceeded_past_max_epochs(train_cfg, clock: Clock) -> None:
    summary = train(budgeted(train_cfg, 100, "trainer.max_epochs=3"), extra_callbacks=[Ticks(clock)])
    assert summary.epochs == 3


def test_a_resumed_run_keeps_the_plan_and_the_time_already_spent(train_cfg, clock: Clock, tmp_path: Path) -> None:
    whole = Ticks(clock)
    assert train(budgeted(train_cfg, 4.5), extra_callbacks=[whole]).epochs == 4

    clock.now = 0.0
    killed = f"paths.output_dir={tmp_path / 'killed'}"
    with pytest.raises(SystemExit):  # Lightning's answer to a KeyboardInterrupt
        train(budgeted(train_cfg, 4.5, killed), extra_callbacks=[Ticks(clock, stop_after_epoch=2)])
    clock.now += 1000.0  # time away from the run does not count against it
    resumed = Ticks(clock)
    summary = train(budgeted(train_cfg, 4.5, killed, "ckpt_path=last"), extra_callbacks=[resumed])
    assert summary.epochs == 4
    assert resumed.lrs == pytest.approx(whole.lrs[2 * BATCHES:], rel=1e-6)


@pytest.mark.parametrize("minutes", [0, -1.5, "ten", True])
def test_fit_minutes_must_be_a_positive_number(minutes: object) -> None:
    with pytest.raises(ValueError, match=rf"fit_minutes must be a number above 0 .*got {minutes!r}"):
        time_budget.FitInMinutes(minutes)
