from __future__ import annotations

import pytest
import torch
from conftest import compose_train
from hydra.utils import instantiate
from torch import nn

from fer_lightning.models.cnn import KERAS_NORM_EPS, KERAS_NORM_MOMENTUM, FerCNN
from fer_lightning.models.dropout import ByteDropout, keep_mask_like
from fer_lightning.models.flops import face_flops
from fer_lightning.models.resnet import BasicBlock, FerResNet

# The study's ReLU model summary (Keras, channels last), layer by layer: output shape and parameter count.
# BatchNorm counts its 4 vectors (gamma, beta, moving mean, moving variance) as Keras does.
STUDY_LAYERS = [
    ("Conv2d", (48, 44, 44), 1_248), ("BatchNorm2d", (48, 44, 44), 192), ("MaxPool2d", (48, 22, 22), 0),
    ("Conv2d", (256, 20, 20), 110_848), ("BatchNorm2d", (256, 20, 20), 1_024), ("MaxPool2d", (256, 10, 10), 0),
    ("Conv2d", (128, 8, 8), 295_040), ("BatchNorm2d", (128, 8, 8), 512), ("MaxPool2d", (128, 4, 4), 0),
    ("Conv2d", (256, 2, 2), 295_168), ("BatchNorm2d", (256, 2, 2), 1_024),
    ("Flatten", (1_024,), 0), ("Linear", (256,), 262_400), ("Linear", (7,), 1_799),
]
STUDY_PARAMETERS = 969_255


def _layer_table(net: nn.Module) -> list[tuple[str, tuple[int, ...], int]]:
    """(layer type, output shape without the batch, parameters incl. BatchNorm's running stats) per layer."""
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.Flatten, nn.Linear)
    table: list[tuple[str, tuple[int, ...], int]] = []

    def record(module: nn.Module, _: object, output: torch.Tensor) -> None:
        count = sum(p.numel() for p in module.parameters())
        if isinstance(module, nn.BatchNorm2d):
            count += module.running_mean.numel() + module.running_var.numel()
        table.append((type(module).__name__, tuple(output.shape[1:]), count))

    hooks = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, kinds)]
    net.eval()(torch.zeros(1, 1, 48, 48))
    for hook in hooks:
        hook.remove()
    return table


@pytest.mark.parametrize("name", ["relu", "leaky"])
def test_study_nets_match_the_notebook_layer_for_layer(name: str) -> None:
    net = instantiate(compose_train([f"model={name}"]).model.net)
    assert _layer_table(net) == STUDY_LAYERS
    keras_count = sum(p.numel() for p in net.parameters()) + sum(
        m.running_mean.numel() + m.running_var.numel() for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert keras_count == STUDY_PARAMETERS
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is not None for c in convs)  # Conv2D(use_bias=True), Keras' default
    # The activation comes between each conv and its BatchNorm, as in Conv2D(activation=...) -> BatchNormalization.
    activation = nn.ReLU if name == "relu" else nn.LeakyReLU
    order = [type(m) for m in net.features if isinstance(m, nn.Conv2d | nn.BatchNorm2d | activation)]
    assert order == [nn.Conv2d, activation, nn.BatchNorm2d] * 4
    assert sum(isinstance(m, activation) for m in net.modules()) == 5
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == (
        [0.35, 0.25, 0.25, 0.35, 0.25] if name == "relu" else [0.3, 0.25, 0.25, 0.3, 0.25])


@pytest.mark.parametrize("name", ["relu", "leaky"])
def test_wide_variants_keep_the_earlier_nets(name: str) -> None:
    net = instantiate(compose_train([f"model={name}_wide"]).model.net)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [48, 256, 128, 256]
    assert all(c.bias is None and c.padding == "same" for c in convs)
    assert net.head[1].in_features == 6 * 6 * 256
    assert sum(p.numel() for p in net.parameters()) == 3_064_343
    order = [type(m) for m in net.features[:3]]
    assert order == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU if name == "relu" else nn.LeakyReLU]


def test_leaky_slopes_come_from_config() -> None:
    net = FerCNN([{"filters": 4, "negative_slope": 0.07}], [{"units": 8, "negative_slope": 0.002}],
                 activation="leaky_relu")
    slopes = [m.negative_slope for m in net.modules() if isinstance(m, nn.LeakyReLU)]
    assert slopes == [0.07, 0.002]


def test_l2_penalty_is_keras_kernel_regularizer() -> None:
    net = FerCNN([{"filters": 4, "l2": 0.01}, {"filters": 8, "l2": 0.0}], [{"units": 5, "l2": 0.1}],
                 output_l2=0.5)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    dense = net.head[1]
    expected = (0.01 * convs[0].weight.pow(2).sum() + 0.1 * dense.weight.pow(2).sum()
                + 0.5 * net.classifier.weight.pow(2).sum())
    assert torch.allclose(net.l2_penalty(), expected)
    net.l2_penalty().backward()
    assert convs[1].weight.grad is None  # l2 0 adds no term


def test_no_l2_gives_zero_penalty() -> None:
    assert FerCNN([{"filters": 4}], []).l2_penalty().item() == 0.0


def test_bad_architecture_errors() -> None:
    with pytest.raises(ValueError, match="activation must be one of"):
        FerCNN([{"filters": 4}], [], activation="gelu")
    with pytest.raises(ValueError, match="shrink a 48px image to nothing"):
        FerCNN([{"filters": 4}] * 6, [])
    with pytest.raises(ValueError, match="padding must be 'same' or 'valid'"):
        FerCNN([{"filters": 4}], [], conv_padding="full")


@pytest.mark.parametrize("keras_l2", [True, False])
def test_keras_l2_switch_adds_or_drops_the_penalty(keras_l2: bool) -> None:
    from functools import partial

    from fer_lightning.models.classifier import EmotionClassifier

    net = FerCNN([{"filters": 4, "l2": 0.01}], [{"units": 5, "l2": 0.1}])
    module = EmotionClassifier(net, partial(torch.optim.SGD, lr=0.1), keras_l2=keras_l2)
    expected = net.l2_penalty() if keras_l2 else torch.zeros(())
    with torch.no_grad():
        assert float(module._l2_penalty()) == pytest.approx(expected.item())
    assert expected.item() > 0 or not keras_l2


def test_kernel_height_and_width_can_differ() -> None:
    net = FerCNN([{"filters": 8, "kernel_size": [5, 3], "padding": "valid", "pool": True}], [{"units": 16}])
    assert net.features[0].kernel_size == (5, 3)
    assert net.head[1].in_features == 8 * (44 // 2) * (46 // 2)  # 48-5+1 high, 48-3+1 wide, then pooled
    assert net(torch.zeros(2, 1, 48, 48)).shape == (2, 7)


def test_one_knob_sets_every_blocks_dropout() -> None:
    blocks = [{"filters": 4, "dropout": 0.3}, {"filters": 4, "dropout": 0.25}]
    net = FerCNN(blocks, [{"units": 8, "dropout": 0.4}], conv_dropout=0.1)
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == [0.1, 0.1, 0.4]
    net = FerCNN(blocks, [{"units": 8, "dropout": 0.4}], dense_dropout=0.0)
    assert [m.p for m in net.modules() if isinstance(m, nn.Dropout)] == [0.3, 0.25, 0.0]


@pytest.mark.parametrize("channels_last", [False, True])
def test_byte_dropout_drops_at_rate_p_and_keeps_the_mean(channels_last: bool) -> None:
    torch.manual_seed(0)
    x = torch.ones(64, 16, 12, 12, requires_grad=True)
    inputs = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    drop = ByteDropout(0.25).train()
    out = drop(inputs)
    assert out.shape == x.shape and out.is_contiguous(
        memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    kept = out != 0
    assert abs(1 - kept.float().mean().item() - 0.25) < 0.01
    assert torch.allclose(out[kept], torch.tensor(4 / 3)) and abs(out.mean().item() - 1) < 0.02
    out.sum().backward()  # the gradient is the same mask and scale
    assert torch.equal(x.grad, out.detach())
    # Masks are independent across positions: neighbouring channels are not dropped together.
    assert abs((kept[:, 0] & kept[:, 1]).float().mean().item() - 0.75**2) < 0.01


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("threshold", [0, 1, 64, 255])
def test_keep_mask_is_exactly_each_random_byte_compared_with_the_threshold(dtype: torch.dtype, threshold: int) -> None:
    x = torch.zeros(8, 5, 6, 7, dtype=dtype).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(3)
    mask = keep_mask_like(x, threshold)
    torch.manual_seed(3)
    words = torch.empty((x.numel() + 7) // 8, dtype=torch.int64).random_(-(2**63), None)
    expected = (words.view(torch.uint8)[: x.numel()] >= threshold).view(8, 6, 7, 5).permute(0, 3, 1, 2)
    assert mask.dtype == dtype and mask.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(mask, expected.to(dtype))


@pytest.mark.parametrize("model", ["relu", "leaky"])
def test_keras_init_starts_the_study_nets_as_keras_would(model: str) -> None:
    torch.manual_seed(0)
    net = instantiate(compose_train([f"model={model}", "model.net.keras_init=true"]).model.net)
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    for layer in layers:
        receptive = layer.weight[0, 0].numel() if layer.weight.dim() == 4 else 1
        fan_in, fan_out = layer.weight.shape[1] * receptive, layer.weight.shape[0] * receptive
        bound = (6 / (fan_in + fan_out)) ** 0.5  # glorot_uniform
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.95 * bound
        assert not layer.bias.any()
    norms = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 4 and all((m.momentum, m.eps) == (KERAS_NORM_MOMENTUM, KERAS_NORM_EPS) for m in norms)
    plain = instantiate(compose_train([f"model={model}"]).model.net)
    assert [(m.momentum, m.eps) for m in plain.modules() if isinstance(m, nn.BatchNorm2d)] == [(0.1, 1e-5)] * 4
    assert any(m.bias.any() for m in plain.modules() if isinstance(m, nn.Linear))


def test_byte_dropout_is_identity_in_eval_and_at_p_zero() -> None:
    x = torch.randn(4, 8)
    assert torch.equal(ByteDropout(0.5).eval()(x), x)
    assert torch.equal(ByteDropout(0.0).train()(x), x)
    assert not ByteDropout(1.0).train()(x).any()


def test_vgg_is_four_stages_of_two_convs_through_the_same_fercnn() -> None:
    net = instantiate(compose_train(["model=vgg"]).model.net)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.features) == 4
    assert [m.out_features for m in net.head if isinstance(m, nn.Linear)] == [4096, 4096, 7]
    assert net(torch.zeros(2, 1, 48, 48)).shape == (2, 7)


def test_resnet18_has_resnet18s_stages_at_the_faces_size() -> None:
    net = instantiate(compose_train(["model=resnet18"]).model.net)
    assert sum(p.numel() for p in net.parameters()) == 11_171_271
    sides, x = [], torch.zeros(2, 1, 48, 48)
    for layer in net.features:
        x = layer(x)
        if isinstance(layer, BasicBlock):
            sides.append((x.shape[1], x.shape[2]))
    assert sides == [(64, 48), (64, 48), (128, 24), (128, 24), (256, 12), (256, 12), (512, 6), (512, 6)]
    assert net(torch.zeros(2, 1, 48, 48)).shape == (2, 7)
    block = BasicBlock(8, 8, stride=1).eval()  # its last BatchNorm starts at zero: the block passes ReLU(x) on
    faces = torch.randn(3, 8, 6, 6)
    assert torch.equal(block(faces), torch.relu(faces))
    with pytest.raises(ValueError, match="one block count"):
        FerResNet(widths=[8, 16], blocks=[1])


def test_face_flops_count_each_multiply_add_twice_per_submodule() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 10, bias=False), nn.Sequential(nn.ReLU(), nn.Linear(10, 7)))
    assert face_flops(net) == {"": 2 * (48 * 48 * 10 + 10 * 7), "1": 2 * 48 * 48 * 10, "2": 2 * 10 * 7,
                               "2.1": 2 * 10 * 7}
    study_net = instantiate(compose_train(["model=relu"]).model.net)
    convs = [(44 * 44, 48, 1, 5), (20 * 20, 256, 48, 3), (8 * 8, 128, 256, 3), (2 * 2, 256, 128, 3)]
    by_hand = sum(2 * side * out * into * k * k for side, out, into, k in convs) + 2 * (1024 * 256 + 256 * 7)
    assert face_flops(study_net)[""] == by_hand == 133_755_904


def test_face_flops_leave_the_run_as_they_found_it() -> None:
    """No BatchNorm statistic moves, no dropout draws, every mode comes back, and a net compiled in place is not
    compiled for the count (its backend would raise; torch 2.13 runs eagerly under a FLOP counter anyway, and
    ``face_flops`` asks for it)."""

    def no_compiling(graph: torch.fx.GraphModule, example_inputs: list[torch.Tensor]) -> None:
        raise AssertionError("compiled for a count")

    class Tiny(nn.Module):  # dynamo compiles a module's own forward, not nn.Sequential's
        def __init__(self) -> None:
            super().__init__()
            self.conv, self.norm, self.drop = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Dropout(0.5).eval()
            self.head = nn.Linear(4 * 46 * 46, 7)

        def forward(self, faces: torch.Tensor) -> torch.Tensor:
            return self.head(self.drop(self.norm(self.conv(faces))).flatten(1))

    net = Tiny()
    net.compile(backend=no_compiling)
    statistics, random_state = net.norm.running_mean.clone(), torch.get_rng_state()
    assert face_flops(net) == {"": 2 * (46 * 46 * 4 * 9 + 4 * 46 * 46 * 7), "conv": 2 * 46 * 46 * 4 * 9,
                               "head": 2 * 4 * 46 * 46 * 7}
    assert torch.equal(net.norm.running_mean, statistics)
    assert torch.equal(torch.get_rng_state(), random_state)
    assert [m.training for m in net.modules()] == [True, True, True, False, True]
