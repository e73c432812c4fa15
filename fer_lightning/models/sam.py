"""Sharpness-aware minimisation (Foret et al., ICLR 2021) around any torch optimizer, for Lightning's steps.

SAM looks for weights whose whole neighbourhood has a low loss rather than one sharp low point: each step takes
the gradient g at the weights w, moves to w + rho * g / ||g|| (to first order the worst point within rho), takes the
gradient there, and lets the wrapped optimizer step from w with that second gradient. A step therefore costs two
forward and backward passes.

Lightning hands ``step`` a closure that zeroes the gradients, runs ``training_step`` and the backward pass; SAM
calls it twice. What the second pass would change besides the gradients, BatchNorm's running statistics, is put
back (``kept``), so they follow the weights actually stepped from, as the SAM authors' code does; what
``training_step`` logs (the training loss and accuracy) does see both points of every step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from fer_lightning.errors import check_number


class SAM(torch.optim.Optimizer):
    """``base`` (an optimizer already built over the parameters) stepped with SAM's gradient; ``kept``: tensors the
    second pass must leave as the first left them (a net's buffers).

    The base's parameter groups, state and defaults are this optimizer's own, so learning-rate schedulers adjust
    the base, and checkpoints hold exactly the base's state: SAM itself keeps nothing from one step to the next.
    """

    def __init__(self, base: torch.optim.Optimizer, rho: float = 0.05, kept: Iterable[torch.Tensor] = ()) -> None:
        check_number("sam_rho", rho, above=0, why="the radius of SAM's neighbourhood")
        super().__init__(base.param_groups, base.defaults)  # a torch optimizer's hooks, which schedulers patch
        self.base, self.rho, self.kept = base, rho, list(kept)
        self.param_groups, self.state = base.param_groups, base.state

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor:  # type: ignore[override]
        if closure is None:
            raise RuntimeError("SAM takes two gradients a step, so it needs the closure that computes one; "
                               "Lightning passes it except under 16-bit mixed precision's gradient scaler: use "
                               "trainer.precision=bf16-mixed or 32-true")
        with torch.enable_grad():
            loss = closure()
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        grads = [p.grad for p in params]
        scale = self.rho / (torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) + 1e-12)
        weights, kept = [p.detach().clone() for p in params], [t.clone() for t in self.kept]
        torch._foreach_add_(params, torch._foreach_mul(grads, scale))
        with torch.enable_grad():
            closure()  # the gradient at the nudged weights replaces the first
        torch._foreach_copy_(params, weights)
        for tensor, before in zip(self.kept, kept, strict=True):
            tensor.copy_(before)
        self.base.step()
        return loss

    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict) -> None:
        self.base.load_state_dict(state_dict)
        self.param_groups, self.state = self.base.param_groups, self.base.state  # loading replaced the base's
