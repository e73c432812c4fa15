"""What one face costs a network: the floating-point operations of its forward pass (a multiply-add counts 2)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from fer_lightning.fer2013 import IMAGE_SIDE


def face_flops(module: nn.Module) -> dict[str, int]:
    """FLOPs of one 48x48 face through ``module``, by submodule: ``""`` is the whole pass, ``"net"``,
    ``"net.features.0"``, ... its parts (the names of ``module.named_modules()``; those doing no arithmetic are
    left out).

    The face runs in eval mode, without gradients and eagerly, so counting leaves no trace on a run about to train:
    no BatchNorm statistics move, no dropout draws from the random state, and a net compiled in place
    (``compile=``) is not compiled for it. Each submodule's mode is put back afterwards.
    """
    modes = {submodule: submodule.training for submodule in module.modules()}
    parameter = next(module.parameters())
    face = torch.zeros(1, 1, IMAGE_SIDE, IMAGE_SIDE, device=parameter.device, dtype=parameter.dtype)
    counter = FlopCounterMode(display=False)
    module.eval()
    try:
        with torch.no_grad(), torch.compiler.set_stance("force_eager"), counter:
            module(face)
    finally:
        for submodule, training in modes.items():
            submodule.train(training)
    root = type(module).__name__
    return {name.removeprefix(root).removeprefix("."): sum(counts.values())
            for name, counts in counter.get_flop_counts().items() if name == root or name.startswith(f"{root}.")}
