"""The study's block tail, activation -> BatchNorm -> 2x2 max-pool -> dropout, trained in four passes over the map.

Run as four eager layers, that tail reads or writes the full-size activation map six times forward and about ten
times backward (ReLU, BatchNorm's statistics and affine, max-pool; then their backwards, with a zero fill and a
scatter for the pool), and a few more times at a quarter of the size for the dropout: on the 2-core CPU, the tails
of the first two blocks took half as long as the big conv between them. Rewritten: ReLU and LeakyReLU are
increasing, and so is BatchNorm's per-channel affine while its scale is positive, so max-pooling commutes with
both. The tail is then

    mean, var, max_pool(z) and where each maximum sits       (one compiled reading pass)
    out = dropout(BN affine of act(max_pool(z)))            (one compiled quarter-size pass)

and its backward one compiled pass that applies the dropout mask, routes each pooled gradient to its argmax and adds
BatchNorm's dense terms (``mean(g)`` and ``mean(g * xhat)``, summed over the pooled positions only, where ``g`` is
non-zero). The dropout masks are ``ByteDropout``'s, drawn from the same random bytes in the same order.

Same outputs as the four layers up to float rounding; where a pool window ties after BatchNorm rounds to bf16,
the gradient can go to a different one of the tied inputs (the eager pool picks the first of the rounded values,
this the first of the raw ones). Used by ``FerCNN`` in training on the CPU when every scale is positive and the map
has even sides; otherwise the four layers run as they are.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fer_lightning.models.compiled_steps import compiled_on_disk
from fer_lightning.models.dropout import random_bytes_like

log = logging.getLogger(__name__)


def _per_channel(t: torch.Tensor) -> torch.Tensor:
    return t.view(1, -1, 1, 1)


def _act(x: torch.Tensor, slope: float) -> torch.Tensor:
    return torch.where(x > 0, x, x * slope)


def _moments_and_pool(
    z: torch.Tensor, shift: torch.Tensor, slope: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-channel sums of act(z) - shift and of its square, in float32; and z's 2x2 max-pool with the place of
    each window's maximum (0-3 in reading order, the first of equal values, as the eager pool picks), in z's dtype.

    The shift (the running mean) keeps E[d^2] - E[d]^2 from cancelling where the mean is large against the spread.
    The places are compared as floats in the backward, like the dropout bytes (``_dropout_scale``); as int64
    indices from the eager pool they were a write and a read of twice z's bytes, and the eager pool another read.
    The sums run over each window's four corners, then along the pooled rows, then over the rows: as one sum over
    N*H*W per channel, inductor's loop took 1.3-1.6x as long in channels_last and rounded 50x as much
    (docs/results.md, "The tails' statistics summed in stages").
    """
    corners = z[:, :, 0::2, 0::2], z[:, :, 0::2, 1::2], z[:, :, 1::2, 0::2], z[:, :, 1::2, 1::2]
    pooled = torch.maximum(torch.maximum(corners[0], corners[1]), torch.maximum(corners[2], corners[3]))
    place = torch.where(corners[0] == pooled, 0.0,
                        torch.where(corners[1] == pooled, 1.0, torch.where(corners[2] == pooled, 2.0, 3.0)))
    d = [_act(corner.float(), slope) - _per_channel(shift) for corner in corners]
    sum_d = (d[0] + d[1] + d[2] + d[3]).sum(3).sum((0, 2))
    sum_d2 = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2] + d[3] * d[3]).sum(3).sum((0, 2))
    return sum_d, sum_d2, pooled, place.to(z.dtype)


def _dropout_scale(noise: torch.Tensor, threshold: int) -> torch.Tensor:
    """ByteDropout's factor per unit: 0 where its random byte is under the threshold, else 1 / keep probability.
    The bytes are compared as floats: compared as bytes, the compiled steps ran 4-7x slower (unvectorised)."""
    return torch.where(noise.float() >= threshold, 256.0 / (256 - threshold), 0.0)


def _pooled_affine(
    pooled_z: torch.Tensor,
    mean: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    slope: float,
    noise: torch.Tensor | None,
    threshold: int,
) -> torch.Tensor:
    y = _act(pooled_z.float(), slope)
    out = (y - _per_channel(mean)) * _per_channel(scale) + _per_channel(bias)
    return (out if noise is None else out * _dropout_scale(noise, threshold)).to(pooled_z.dtype)


def _backward(
    grad: torch.Tensor,
    z: torch.Tensor,
    place: torch.Tensor,
    pooled_z: torch.Tensor,
    mean: torch.Tensor,
    invstd: torch.Tensor,
    weight: torch.Tensor,
    slope: float,
    noise: torch.Tensor | None,
    threshold: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dropout's mask, then BatchNorm's training backward for an output that only the pooled positions feed, then
    the pool's routing and the activation's slope, in one pass over the full map. Returns d z, d weight, d bias."""
    n, c, h, w = z.shape
    count = n * h * w
    g = grad.float() if noise is None else grad.float() * _dropout_scale(noise, threshold)
    mean, invstd = _per_channel(mean), _per_channel(invstd)
    xhat_pooled = (_act(pooled_z.float(), slope) - mean) * invstd
    sum_g, sum_g_xhat = g.sum((0, 2, 3)), (g * xhat_pooled).sum((0, 2, 3))

    def up(t: torch.Tensor) -> torch.Tensor:  # each pooled value over its 2x2 window, by index arithmetic
        return t[:, :, :, None, :, None].expand(n, c, h // 2, 2, w // 2, 2).reshape(n, c, h, w)

    rows, cols = torch.arange(h, device=z.device) % 2, torch.arange(w, device=z.device) % 2
    routed = torch.where(up(place) == (rows.view(h, 1) * 2 + cols.view(1, w)).to(place.dtype), up(g), 0.0)
    xhat = (_act(z.float(), slope) - mean) * invstd
    dense_terms = _per_channel(sum_g / count) + xhat * _per_channel(sum_g_xhat / count)
    d_act = _per_channel(weight) * invstd * (routed - dense_terms)
    return torch.where(z > 0, d_act, d_act * slope).to(z.dtype), sum_g_xhat, sum_g


@functools.cache
def _compiled(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` compiled for every batch size, kept on disk for the next run (compiled_steps.py)."""
    return compiled_on_disk(step)


class _ActNormPool(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        z: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor,
        shift: torch.Tensor,
        eps: float,
        slope: float,
        threshold: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        count = z.shape[0] * z.shape[2] * z.shape[3]
        sum_d, sum_d2, pooled_z, place = _compiled(_moments_and_pool)(z, shift, slope)
        mean_d = sum_d / count
        var = (sum_d2 / count - mean_d * mean_d).clamp_min(0.0)
        mean, invstd = shift + mean_d, torch.rsqrt(var + eps)
        noise = random_bytes_like(pooled_z) if threshold else None  # ByteDropout's bytes, drawn as it would
        out = _compiled(_pooled_affine)(pooled_z, mean, weight * invstd, bias, slope, noise, threshold)
        ctx.save_for_backward(z, place, pooled_z, mean, invstd, weight, noise)
        ctx.slope, ctx.threshold = slope, threshold
        ctx.mark_non_differentiable(mean, var)
        return out, mean, var

    @staticmethod
    def backward(
        ctx: Any, grad: torch.Tensor, *_: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        z, place, pooled_z, mean, invstd, weight, noise = ctx.saved_tensors
        d_z, d_weight, d_bias = _compiled(_backward)(
            grad, z, place, pooled_z, mean, invstd, weight, ctx.slope, noise, ctx.threshold
        )
        return d_z, d_weight, d_bias, None, None, None, None


@functools.cache
def have_cpp_compiler() -> bool:
    """Whether inductor finds the C++ compiler it builds the fused steps with; without one the plain layers train,
    and the log says so once."""
    from torch._inductor.cpp_builder import get_cpp_compiler
    from torch._inductor.exc import InvalidCxxCompiler

    try:
        get_cpp_compiler()
    except InvalidCxxCompiler:
        log.warning("No C++ compiler found (g++ or clang++, or $CXX): the block tails train as plain layers, "
                    "about 10% slower; fuse_tails=false silences this")
        return False
    return True


def can_fuse(z: torch.Tensor, norm: nn.BatchNorm2d) -> bool:
    """Whether ``act_norm_pool`` computes what the three layers would for this input, and runs where it pays."""
    return (
        norm.training
        and z.device.type == "cpu"
        and z.shape[0] > 1  # the compiled steps take any batch size but 1, which they would have to specialise on
        and z.shape[2] % 2 == 0
        and z.shape[3] % 2 == 0
        and not torch.compiler.is_compiling()  # an outer torch.compile fuses the plain layers itself
        and bool((norm.weight > 0).all())
        and have_cpp_compiler()
    )


def act_norm_pool(z: torch.Tensor, norm: nn.BatchNorm2d, slope: float, drop_threshold: int = 0) -> torch.Tensor:
    """``ByteDropout(MaxPool2d(2)(norm(act(z))))`` in training, ``act`` a LeakyReLU of ``slope`` (0: ReLU) and the
    dropout's threshold ``drop_threshold`` (0: none; the same masks as ``ByteDropout``), updating ``norm``'s running
    statistics as it would. Call only where ``can_fuse`` holds."""
    if not 0 <= drop_threshold < 256:
        raise ValueError(f"drop_threshold must be in [0, 256), got {drop_threshold}")
    running_mean, running_var, batches = norm.running_mean, norm.running_var, norm.num_batches_tracked
    if running_mean is None or running_var is None or batches is None:
        raise ValueError("act_norm_pool updates the BatchNorm's running statistics, and this one keeps none")
    with torch.autocast(z.device.type, enabled=False):
        out, mean, var = _ActNormPool.apply(z, norm.weight, norm.bias, running_mean, norm.eps, slope, drop_threshold)
    count = z.shape[0] * z.shape[2] * z.shape[3]
    batches.add_(1)
    momentum = 1.0 / float(batches) if norm.momentum is None else norm.momentum
    with torch.no_grad():
        running_mean.lerp_(mean, momentum)
        running_var.lerp_(var * count / (count - 1), momentum)
    return out
