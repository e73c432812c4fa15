"""The small-map conv path computes what nn.Conv2d computes, and runs only where it is meant to."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fer_lightning.models import cnn
from fer_lightning.models.cnn import FerCNN
from fer_lightning.models.small_map_conv import small_map_conv, takes_small_map_path


def conv_and_grads(conv: nn.Conv2d, x: torch.Tensor, bf16: bool, small: bool) -> list[torch.Tensor]:
    conv.zero_grad()
    x = x.clone().requires_grad_()
    with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
        y = small_map_conv(conv, x) if small else conv(x)
    (y.float() * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return [y.detach().float(), x.grad.float(), conv.weight.grad.clone(), conv.bias.grad.clone()]


@pytest.mark.parametrize("bf16", [False, True])
@pytest.mark.parametrize("layout", [torch.channels_last, torch.contiguous_format])
def test_output_and_gradients_match_the_plain_conv(bf16: bool, layout: torch.memory_format) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 32, (3, 2))
    x = torch.randn(8, 16, 4, 3).contiguous(memory_format=layout)
    assert takes_small_map_path(conv, x)
    plain, small = conv_and_grads(conv, x, bf16, small=False), conv_and_grads(conv, x, bf16, small=True)
    assert small[0].dtype == torch.float32 and conv.weight.grad.dtype == torch.float32
    for want, got in zip(plain, small, strict=True):  # bf16: the two sum in different orders before rounding
        torch.testing.assert_close(got, want, rtol=0, atol=(1e-2 if bf16 else 1e-5) * float(want.abs().max()))


def test_only_plain_small_maps_in_cpu_training_take_the_path() -> None:
    conv, x = nn.Conv2d(8, 8, 3), torch.randn(2, 8, 6, 6)  # 4x4 = 16 outputs: the most that qualifies
    assert takes_small_map_path(conv, x)
    assert not takes_small_map_path(conv, torch.randn(2, 8, 7, 7))  # 25 outputs
    assert not takes_small_map_path(nn.Conv2d(8, 8, 3, padding=1), x)
    assert not takes_small_map_path(nn.Conv2d(8, 8, 3, stride=2), x)
    with torch.no_grad():
        assert not takes_small_map_path(conv, x)
    assert not takes_small_map_path(conv.eval(), x)


def test_fer_cnn_trains_its_fourth_conv_through_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The study's fourth conv (4x4 in, 2x2 out) takes the path; gradients match the plain layers'."""
    blocks = [{"filters": 4, "kernel_size": 5, "padding": "valid"}, {"filters": 8, "padding": "valid"},
              {"filters": 8, "padding": "valid"}, {"filters": 8, "padding": "valid", "pool": False}]
    torch.manual_seed(0)
    net = FerCNN(blocks, [{"units": 16, "dropout": 0.0}], conv_dropout=0.0, norm_after_activation=True,
                 fuse_tails=False)
    faces = torch.randn(4, 1, 48, 48)
    taken: list[tuple[int, ...]] = []

    def counted(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
        taken.append(tuple(x.shape[-2:]))
        return small_map_conv(conv, x)

    def grads(small: bool) -> list[torch.Tensor]:
        net.zero_grad()
        monkeypatch.setattr(cnn, "small_map_conv", counted if small else small_map_conv)
        monkeypatch.setattr(cnn, "takes_small_map_path", takes_small_map_path if small else lambda conv, x: False)
        net(faces).square().sum().backward()
        return [p.grad.clone() for p in net.parameters()]

    plain, small = grads(small=False), grads(small=True)
    assert taken == [(4, 4)]
    for want, got in zip(plain, small, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
