"""Sharpness-aware minimisation: the update it makes, the state it keeps, and a run that trains with it."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from fer_lightning.models.classifier import EmotionClassifier
from fer_lightning.models.sam import SAM
from fer_lightning.training.train import train

TARGET = torch.tensor([1.0, -2.0, 0.5])


def _loss(weights: torch.Tensor) -> torch.Tensor:
    return ((weights - TARGET) ** 4).sum()  # not quadratic, so the gradient at the nudged point differs


def _closure(weights: torch.Tensor, optimizer: torch.optim.Optimizer):
    def closure() -> torch.Tensor:  # what Lightning's closure does: zero, forward, backward
        optimizer.zero_grad()
        loss = _loss(weights)
        loss.backward()
        return loss
    return closure


def test_a_step_descends_with_the_gradient_at_the_nudged_weights() -> None:
    start = torch.tensor([0.0, 0.0, 0.0])
    weights = start.clone().requires_grad_()
    optimizer = SAM(torch.optim.SGD([weights], lr=0.01), rho=0.1)
    loss = optimizer.step(_closure(weights, optimizer))

    first = torch.func.grad(_loss)(start)
    nudged = start + 0.1 * first / first.norm()
    expected = start - 0.01 * torch.func.grad(_loss)(nudged)
    torch.testing.assert_close(weights.detach(), expected)
    assert loss.item() == pytest.approx(_loss(start).item())  # the loss at the weights, not at the nudged point


def test_batchnorm_statistics_follow_the_weights_stepped_from() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    faces = torch.randn(8, 3)
    once = copy.deepcopy(net)
    once(faces)  # one training-mode pass at the starting weights
    optimizer = SAM(torch.optim.SGD(net.parameters(), lr=0.1), rho=0.5, kept=list(net.buffers()))

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = net(faces).pow(2).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(net[1], name), getattr(once[1], name))


def test_schedulers_and_checkpoints_see_the_wrapped_optimizer() -> None:
    weights = torch.zeros(3, requires_grad=True)
    optimizer = SAM(torch.optim.SGD([weights], lr=0.1, momentum=0.9), rho=0.05)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=10)  # cycles momentum
    for _ in range(3):
        optimizer.step(_closure(weights, optimizer))
        scheduler.step()
    assert optimizer.base.param_groups[0]["lr"] == scheduler.get_last_lr()[0]
    saved = optimizer.state_dict()
    assert "momentum_buffer" in saved["state"][0]  # the base's state, all of it

    again = SAM(torch.optim.SGD([weights], lr=0.1, momentum=0.9), rho=0.05)
    again.load_state_dict(saved)
    torch.testing.assert_close(again.base.state[weights]["momentum_buffer"], saved["state"][0]["momentum_buffer"])
    assert again.param_groups is again.base.param_groups
    assert again.param_groups[0]["lr"] == saved["param_groups"][0]["lr"]


def test_sam_refuses_a_step_without_a_closure_and_a_radius_that_is_not_positive() -> None:
    weights = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match=r"sam_rho must be a number above 0 .*got 0.0"):
        SAM(torch.optim.SGD([weights], lr=0.1), rho=0.0)
    with pytest.raises(RuntimeError, match="bf16-mixed or 32-true"):
        SAM(torch.optim.SGD([weights], lr=0.1)).step()


def test_a_run_trains_with_sam(train_cfg, monkeypatch) -> None:
    steps = []
    plain_step = EmotionClassifier.training_step

    def counted_step(self, batch, batch_idx):
        steps.append(batch_idx)
        return plain_step(self, batch, batch_idx)

    monkeypatch.setattr(EmotionClassifier, "training_step", counted_step)
    summary = train(train_cfg("sam_rho=0.05", "trainer.max_epochs=1", "test=false"))
    assert summary.epochs == 1 and math.isfinite(summary.val_acc_best)
    assert steps == [0, 0, 1, 1]  # each batch twice: at the weights, then at the nudged weights
