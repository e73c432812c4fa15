"""CPU training of a conv whose output map is a few pixels, its weight gradient taken as one matrix product.

oneDNN's weight (and bias) gradient walks the output map, and on a map of 2x2 (the study's fourth conv: 4x4x128 in,
2x2x256 out, 0.3 GFLOP for the weight gradient of a batch of 128) it took about 15 ms alone on the 2-core Zen 4
EPYC, where gathering the 3x3 patches (nine slice copies, 0.2 ms) and one product of patches and output gradients
take about 1 ms. A training step of the study's ReLU net with the default recipe took 221 ms without this path and
201 ms with it (docs/scripts/step_paths.py, the two alternated in one process). On the 8x8 and 20x20 maps of its
second and third convs the product gained nothing, so only maps of at most ``MAX_POSITIONS`` outputs take this path.
The forward and the input's gradient stay oneDNN's; evaluation never comes here.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

MAX_POSITIONS = 16  # output pixels per face; the 2x2 map gained 4x, the 8x8 one nothing


def takes_small_map_path(conv: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether ``small_map_conv`` computes this conv for ``x``: CPU training of a plain conv (stride 1, no
    padding, dilation or groups) whose output map has at most ``MAX_POSITIONS`` pixels, outside torch.compile."""
    out_height, out_width = x.shape[-2] - conv.kernel_size[0] + 1, x.shape[-1] - conv.kernel_size[1] + 1
    return (
        conv.training
        and x.device.type == "cpu"
        and x.dim() == 4
        and torch.is_grad_enabled()
        and conv.weight.requires_grad
        and conv.stride == (1, 1)
        and conv.dilation == (1, 1)
        and conv.groups == 1
        and conv.padding in ((0, 0), "valid")
        and 0 < out_height * out_width <= MAX_POSITIONS
        and not torch.compiler.is_compiling()
    )


def small_map_conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)``, with the weight gradient as a matrix product; in autocast's dtype where autocast is on, as
    ``conv(x)`` would compute. Call only where ``takes_small_map_path`` holds."""
    dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else x.dtype
    bias = None if conv.bias is None else conv.bias.to(dtype)
    with torch.autocast("cpu", enabled=False):
        return _SmallMapConv.apply(x.to(dtype), conv.weight.to(dtype), bias)


def _patches(x: torch.Tensor, kernel: tuple[int, int]) -> torch.Tensor:
    """(N * out_h * out_w, kh * kw * C): each output pixel's input window, channels last, the kernel's rows and
    columns outer, as a channels-last weight lays them out. Nine slice copies rather than ``F.unfold`` (which
    whitening.py uses): for the fourth conv's bf16 channels-last input, 0.2 ms against 1.5-2.8 ms."""
    n, c, h, w = x.shape
    kh, kw = kernel
    out_h, out_w = h - kh + 1, w - kw + 1
    pixels = x.permute(0, 2, 3, 1)  # a view, contiguous when x is channels_last
    patches = torch.empty(n, out_h, out_w, kh, kw, c, dtype=x.dtype, device=x.device)
    for i in range(kh):
        for j in range(kw):
            patches[:, :, :, i, j].copy_(pixels[:, i:i + out_h, j:j + out_w])
    return patches.view(n * out_h * out_w, kh * kw * c)


class _SmallMapConv(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias)

    @staticmethod
    def backward(
        ctx: Any, grad: torch.Tensor
    ) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        out_channels, in_channels, kh, kw = weight.shape
        d_x = None
        if ctx.needs_input_grad[0]:
            d_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], [0, 0], [1, 1], False, [0, 0], 1, [True, False, False])[0]
        grad_rows = grad.permute(0, 2, 3, 1).reshape(-1, out_channels)  # (N * out_h * out_w, O)
        d_weight = (grad_rows.t() @ _patches(x, (kh, kw))).view(out_channels, kh, kw, in_channels)
        d_bias = grad_rows.sum(0, dtype=torch.float32) if ctx.has_bias else None  # autograd casts to the bias's dtype
        return d_x, d_weight.permute(0, 3, 1, 2), d_bias
