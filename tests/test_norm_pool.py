"""The fused activation -> BatchNorm -> max-pool -> dropout computes what the four layers do, and steps aside where
it cannot."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fer_lightning.models.cnn import FerCNN
from fer_lightning.models.dropout import ByteDropout
from fer_lightning.models.norm_pool import act_norm_pool, can_fuse

CONV_BLOCKS = [
    {"filters": 8, "kernel_size": [5, 5], "padding": "valid", "dropout": 0.25},
    {"filters": 16, "kernel_size": 3, "padding": "valid", "dropout": 0.1},
    {"filters": 8, "kernel_size": 3, "padding": "valid", "dropout": 0.0},
]


def four_layers(z: torch.Tensor, norm: nn.BatchNorm2d, slope: float, drop_threshold: int,
                layout: torch.memory_format) -> torch.Tensor:
    """The plain layers; the dropout's input laid out as given, since its bytes follow the memory order."""
    pooled = F.max_pool2d(norm(F.leaky_relu(z, slope)), 2)
    return ByteDropout(drop_threshold / 256)(pooled.contiguous(memory_format=layout))


# Each case compiles its own tail (5-25 s on an empty cache), so each slope, dropout and layout is met twice rather
# than in every combination. Two cases have the map, slope and dropout of a block of the training step below (its
# third, its second), which then runs the steps they compiled.
@pytest.mark.parametrize(("slope", "drop_threshold", "channels_last", "map_shape"),
                         [(0.01, 0, False, (8, 8, 8)), (0.0, 0, True, (5, 12, 10)), (0.0, 64, True, (5, 12, 10)),
                          (0.01, 26, False, (16, 20, 20))])
def test_fused_tail_matches_the_four_layers_forward_backward_and_running_stats(
        slope: float, drop_threshold: int, channels_last: bool, map_shape: tuple[int, int, int]) -> None:
    torch.manual_seed(0)
    channels, height, width = map_shape
    z = torch.randn(6, *map_shape) + 0.3
    grad = torch.randn(6, channels, height // 2, width // 2)
    if channels_last:  # the reference stays NCHW: PyTorch's channels_last BatchNorm sums in another order
        z, grad = z.contiguous(memory_format=torch.channels_last), grad.contiguous(memory_format=torch.channels_last)
    norm = nn.BatchNorm2d(channels)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.normal_()
        norm.running_mean.fill_(0.2)
    fused_norm = copy.deepcopy(norm)
    z_ref, z_fused = z.contiguous().clone().requires_grad_(), z.clone().requires_grad_()

    torch.manual_seed(1)  # the same random bytes for both dropouts
    layout = torch.channels_last if channels_last else torch.contiguous_format
    expected = four_layers(z_ref, norm, slope, drop_threshold, layout)
    expected.backward(grad.contiguous())
    assert can_fuse(z_fused, fused_norm)
    torch.manual_seed(1)
    got = act_norm_pool(z_fused, fused_norm, slope, drop_threshold)
    got.backward(grad)
    if drop_threshold:
        assert 0 < (got == 0).float().mean() < 0.5

    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(z_fused.grad, z_ref.grad, atol=1e-5, rtol=1e-5)
    assert z_fused.grad.is_contiguous(memory_format=torch.channels_last) == channels_last
    for name in ("weight", "bias"):
        torch.testing.assert_close(getattr(fused_norm, name).grad, getattr(norm, name).grad, atol=1e-4, rtol=1e-5)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(fused_norm, name), getattr(norm, name))


# The maps, slopes and layouts of the first two cases above: their compiled steps serve these too.
@pytest.mark.parametrize(("slope", "channels_last", "map_shape"), [(0.01, False, (8, 8, 8)), (0.0, True, (5, 12, 10))])
def test_tied_windows_send_the_gradient_where_the_eager_pool_does(slope: float, channels_last: bool,
                                                                  map_shape: tuple[int, int, int]) -> None:
    """Whole-number maps tie often: the first of equal maxima in reading order takes the gradient, as in max_pool2d."""
    torch.manual_seed(0)
    channels, height, width = map_shape
    z = torch.randint(-2, 3, (4, *map_shape)).float()
    grad = torch.randn(4, channels, height // 2, width // 2)
    norm = nn.BatchNorm2d(channels)
    fused_norm = copy.deepcopy(norm)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    z_ref, z_fused = z.clone().requires_grad_(), z.contiguous(memory_format=layout).requires_grad_()
    four_layers(z_ref, norm, slope, 0, torch.contiguous_format).backward(grad)
    act_norm_pool(z_fused, fused_norm, slope).backward(grad.contiguous(memory_format=layout))
    maxima = F.max_pool2d(z, 2).repeat_interleave(2, -1).repeat_interleave(2, -2) == z
    assert maxima.sum() > z.numel() / 4 * 1.2  # more maxima than windows: ties
    torch.testing.assert_close(z_fused.grad, z_ref.grad, atol=1e-5, rtol=1e-5)


def test_a_training_step_of_the_study_net_is_the_same_fused_or_not() -> None:
    torch.manual_seed(0)
    fused = FerCNN(CONV_BLOCKS, [{"units": 16}], activation="leaky_relu", norm_after_activation=True)
    plain = FerCNN(CONV_BLOCKS, [{"units": 16}], activation="leaky_relu", norm_after_activation=True,
                   fuse_tails=False)
    assert len(fused.fused_tails) == 3 and not plain.fused_tails
    assert fused.state_dict().keys() == plain.state_dict().keys()  # checkpoints do not see the fusion
    plain.load_state_dict(fused.state_dict())
    faces, labels = torch.randn(8, 1, 48, 48), torch.randint(0, 7, (8,))
    for net in (fused, plain):
        torch.manual_seed(1)  # the same dropout masks
        F.cross_entropy(net(faces), labels).backward()
    for (name, a), b in zip(fused.named_parameters(), plain.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)
    for a, b in zip(fused.buffers(), plain.buffers(), strict=True):
        torch.testing.assert_close(a, b)


def test_the_plain_layers_run_where_the_fusion_would_not_be_the_same() -> None:
    norm = nn.BatchNorm2d(3)
    z = torch.randn(4, 3, 8, 8)
    assert can_fuse(z, norm)
    with torch.no_grad():
        norm.weight[1] = -0.5  # a negative scale turns max-pooling into min-pooling of the activations
    assert not can_fuse(z, norm)
    norm.weight.data.fill_(1.0)
    assert not can_fuse(torch.randn(4, 3, 9, 8), norm)  # max-pool drops the odd row: no 2x2 window for it
    assert not can_fuse(torch.randn(1, 3, 8, 8), norm)
    assert not can_fuse(z, norm.eval())


def test_evaluation_is_the_plain_layers_bit_for_bit() -> None:
    torch.manual_seed(0)
    fused = FerCNN(CONV_BLOCKS, [{"units": 16}], norm_after_activation=True).eval()
    plain = FerCNN(CONV_BLOCKS, [{"units": 16}], norm_after_activation=True, fuse_tails=False).eval()
    plain.load_state_dict(fused.state_dict())
    faces = torch.randn(4, 1, 48, 48)
    assert torch.equal(fused(faces), plain(faces))


def test_without_a_cpp_compiler_the_plain_layers_train_and_the_log_says_so(monkeypatch, caplog) -> None:
    import torch._inductor.cpp_builder
    from torch._inductor.exc import InvalidCxxCompiler

    from fer_lightning.models import norm_pool

    def no_compiler() -> str:
        raise InvalidCxxCompiler

    monkeypatch.setattr(torch._inductor.cpp_builder, "get_cpp_compiler", no_compiler)
    norm_pool.have_cpp_compiler.cache_clear()
    try:
        assert not can_fuse(torch.randn(4, 3, 8, 8), nn.BatchNorm2d(3))
        assert "No C++ compiler found" in caplog.text
    finally:
        norm_pool.have_cpp_compiler.cache_clear()
