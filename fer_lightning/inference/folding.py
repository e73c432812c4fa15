"""The study's post-activation BatchNorms folded into the convs around them, for the exported graph.

In the study's blocks (Conv(+bias) -> ReLU or LeakyReLU -> BatchNorm -> MaxPool -> Dropout, then the next conv)
an inference-time BatchNorm is a per-channel affine ``y = s * x + t``. Where every ``s`` is positive both halves
move out of it exactly: the scale into the conv before the activation (both activations are positively
homogeneous: ``act(s * z) = s * act(z)``), and the shift, which a max-pool and dropout pass unchanged, into the
next conv's or dense layer's bias (``b + W·t``). The graph loses a pass over each block's output.

Why it matters (docs/results.md, "BatchNorm folded into the convs"): int8 quantisation of the unfolded graph left
each BatchNorm in float between int8 convs, with a quantise/dequantise around it, and lost 0.31 points of PublicTest
on the best ReLU net, which fer-export then refused; folded, the 40-epoch best ReLU nets lose at most 0.22
(LeakyReLU 0.22-0.39), and one face runs faster in bf16 and in int8. The scale goes backwards, not into the next
layer's weights, because int8 weights share one range per output channel: a dead channel (variance ~0, so ``s``
~100) scaled into the next layer's inputs cost one net 7 points.

A BatchNorm stays where folding would not be exact: a scale that is not positive, no conv right before its
activation, a padded next conv (its zero padding would become ``-t`` before the shift), or no conv or dense
layer after it. Other nets (norm before the activation, residual nets) are left to the runtimes, which fold a
BatchNorm into the conv just before it themselves.
"""

from __future__ import annotations

import copy
from typing import cast

import torch
from torch import nn

from fer_lightning.models.cnn import FerCNN

PASS_THROUGH = (nn.MaxPool2d, nn.Dropout, nn.Flatten)  # what a folded shift travels across unchanged
HOMOGENEOUS = (nn.ReLU, nn.LeakyReLU)  # act(s * z) = s * act(z) for s > 0


def _affine(norm: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """The eval-mode BatchNorm as (scale, shift) per channel."""
    assert norm.running_mean is not None and norm.running_var is not None, "FerCNN's BatchNorms track statistics"
    scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
    return scale, norm.bias - norm.running_mean * scale


def _foldable(scale: torch.Tensor, before: list[nn.Module], after: nn.Module | None) -> bool:
    if len(before) < 2 or not isinstance(before[-1], HOMOGENEOUS) or not isinstance(before[-2], nn.Conv2d):
        return False
    if isinstance(after, nn.Conv2d):
        fits = after.groups == 1 and after.padding in ("valid", (0, 0))
    else:
        fits = isinstance(after, nn.Linear) and after.in_features % len(scale) == 0
    return fits and bool((scale > 0).all())


@torch.no_grad()
def _scaled(conv: nn.Conv2d, scale: torch.Tensor) -> nn.Conv2d:
    """A copy of ``conv`` whose outputs are ``scale`` (per channel) times the original's."""
    scaled = copy.deepcopy(conv)
    scaled.weight.mul_(scale.view(-1, 1, 1, 1))
    if scaled.bias is not None:
        scaled.bias.mul_(scale)
    return scaled


@torch.no_grad()
def _shifted_input(layer: nn.Conv2d | nn.Linear, shift: torch.Tensor) -> nn.Module:
    """A copy of ``layer`` (an unpadded conv, or a dense layer after a channel-major flatten) that computes
    ``layer(x + shift)``, ``shift`` per input channel."""
    shifted = copy.deepcopy(layer)
    if isinstance(shifted, nn.Linear):
        shift = shift.repeat_interleave(shifted.in_features // len(shift))
        added = shifted.weight @ shift
    else:
        added = (shifted.weight * shift.view(1, -1, 1, 1)).sum((1, 2, 3))
    if shifted.bias is None:
        shifted.bias = nn.Parameter(added)
    else:
        shifted.bias.add_(added)
    return shifted


def fold_batchnorms(net: nn.Module) -> nn.Module:
    """An eval-mode copy of ``net`` with each post-activation BatchNorm of a FerCNN folded into the convs around
    it where that is exact; any other net, a plain eval-mode copy."""
    net = copy.deepcopy(net).eval()
    if not isinstance(net, FerCNN):
        return net
    modules = [*net.features, *net.head]
    kept: list[nn.Module] = []
    position = 0
    while position < len(modules):
        module = modules[position]
        position += 1
        if not isinstance(module, nn.BatchNorm2d):
            kept.append(module)
            continue
        between = []
        while position < len(modules) and isinstance(modules[position], PASS_THROUGH):
            between.append(modules[position])
            position += 1
        after = modules[position] if position < len(modules) else None
        scale, shift = _affine(module)
        if _foldable(scale, kept, after):  # so kept[-2] is a conv, and after a conv or a dense layer
            kept[-2] = _scaled(cast(nn.Conv2d, kept[-2]), scale)
            kept += [*between, _shifted_input(cast(nn.Conv2d | nn.Linear, after), shift)]
            position += 1
        else:
            kept += [module, *between]
    return nn.Sequential(*kept).eval()
