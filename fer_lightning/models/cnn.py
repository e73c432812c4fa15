"""The study's CNN family as a plain nn.Module whose every block comes from config.

A conv block is Conv -> BatchNorm -> activation -> [MaxPool] -> Dropout (the usual order, used by the VGG and
the wide variants), or, with ``norm_after_activation``, the Keras study's Conv(+bias) -> activation -> BatchNorm
-> [MaxPool] -> Dropout. A dense block is Linear -> activation -> Dropout. Per-layer L2 strengths are kept
beside the weights so the LightningModule can add Keras' ``kernel_regularizer=l2(x)`` penalty to the loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from fer_lightning.errors import ConfigError
from fer_lightning.fer2013 import IMAGE_SIDE, NUM_CLASSES
from fer_lightning.models.dropout import ByteDropout, drop_threshold
from fer_lightning.models.norm_pool import act_norm_pool, can_fuse
from fer_lightning.models.small_map_conv import small_map_conv, takes_small_map_path

ACTIVATIONS = ("relu", "leaky_relu")


@dataclass
class ConvBlock:
    filters: int
    kernel_size: int | Sequence[int] = 3  # or [height, width], which the study tuned separately
    padding: str = "same"
    pool: bool = True
    dropout: float = 0.25
    l2: float = 0.0
    negative_slope: float = 0.01  # used only by leaky_relu


@dataclass
class DenseBlock:
    units: int
    dropout: float = 0.25
    l2: float = 0.0
    negative_slope: float = 0.01


class ActNormPool(nn.Module):
    """A block's activation -> BatchNorm -> MaxPool2d(2) -> ByteDropout as one training step on the CPU
    (models/norm_pool.py)."""

    norm: nn.BatchNorm2d
    dropout: ByteDropout

    def __init__(self, act: nn.ReLU | nn.LeakyReLU, norm: nn.BatchNorm2d, dropout: ByteDropout) -> None:
        super().__init__()
        # References, not submodules: no second copy in the state dict.
        self.__dict__.update(norm=norm, dropout=dropout)
        self.slope = act.negative_slope if isinstance(act, nn.LeakyReLU) else 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        threshold = drop_threshold(self.dropout.p) if self.dropout.training else 0
        if threshold >= 256:  # everything dropped
            return act_norm_pool(x, self.norm, self.slope) * 0
        return act_norm_pool(x, self.norm, self.slope, threshold)


KERAS_NORM_MOMENTUM, KERAS_NORM_EPS = 0.01, 1e-3  # Keras' BatchNormalization(momentum=0.99, epsilon=1e-3)


def init_as_keras(net: nn.Module) -> None:
    """Keras' defaults for what the study never set: glorot-uniform kernels, zero biases, and BatchNorm's
    running statistics moving by 1% a step (Keras' momentum 0.99) with epsilon 1e-3 (PyTorch: 10%, 1e-5).

    PyTorch starts a layer uniform in +-1/sqrt(fan_in) instead, which for the study's conv 3 and dense layers is
    half Keras' spread (fan_out < fan_in there); glorot's fans count the kernel's area on both sides, as Keras'.
    """
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            module.momentum, module.eps = KERAS_NORM_MOMENTUM, KERAS_NORM_EPS


def _activation(name: str, negative_slope: float) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "leaky_relu":
        return nn.LeakyReLU(negative_slope, inplace=True)
    raise ConfigError(f"model activation must be one of {ACTIVATIONS}, got {name!r}")


def _blocks(conv_blocks: Sequence[ConvBlock | dict], dense_blocks: Sequence[DenseBlock | dict],
            conv_dropout: float | None, dense_dropout: float | None,
            conv_padding: str | None) -> tuple[list[ConvBlock], list[DenseBlock]]:
    """The blocks as dataclasses, with the net-wide knobs applied (a config cannot edit list items, so a recipe
    changes every block's dropout or padding at once through them), checked."""
    convs = [b if isinstance(b, ConvBlock) else ConvBlock(**b) for b in conv_blocks]
    denses = [b if isinstance(b, DenseBlock) else DenseBlock(**b) for b in dense_blocks]
    if conv_dropout is not None:
        convs = [replace(b, dropout=conv_dropout) for b in convs]
    if dense_dropout is not None:
        denses = [replace(b, dropout=dense_dropout) for b in denses]
    if conv_padding is not None:
        convs = [replace(b, padding=conv_padding) for b in convs]
    if not convs:
        raise ConfigError("model needs at least one conv block")
    for block in convs:
        if block.padding not in ("same", "valid"):
            raise ConfigError(f"conv padding must be 'same' or 'valid', got {block.padding!r}")
    return convs, denses


def _conv_layers(convs: list[ConvBlock], activation: str, in_channels: int, image_size: int,
                 norm_after_activation: bool) -> tuple[list[nn.Module], tuple[int, int, int]]:
    """The conv blocks' layers in order, and the (channels, height, width) of what leaves the last one."""
    layers: list[nn.Module] = []
    channels, height, width = in_channels, image_size, image_size
    for block in convs:
        kernel_h, kernel_w = block.kernel_size if isinstance(block.kernel_size, Sequence) else (block.kernel_size,) * 2
        kernel = (kernel_h, kernel_w)
        conv = nn.Conv2d(channels, block.filters, kernel, padding=block.padding, bias=norm_after_activation)
        norm, act = nn.BatchNorm2d(block.filters), _activation(activation, block.negative_slope)
        layers += [conv, act, norm] if norm_after_activation else [conv, norm, act]
        if block.padding == "valid":
            height, width = height - kernel[0] + 1, width - kernel[1] + 1
        if block.pool:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        layers.append(ByteDropout(block.dropout))
        channels = block.filters
    if min(height, width) < 1:
        raise ConfigError(f"conv blocks shrink a {image_size}px image to nothing; use fewer pools")
    return layers, (channels, height, width)


def _fusable_tails(layers: list[nn.Module]) -> dict[int, ActNormPool]:
    """Each activation -> BatchNorm -> max-pool -> dropout run of four (the study's order) as one ActNormPool,
    keyed by the position of its activation."""
    runs_of_four = zip(layers, layers[1:], layers[2:], layers[3:], strict=False)
    return {
        i: ActNormPool(act, norm, dropout)
        for i, (act, norm, pool, dropout) in enumerate(runs_of_four)
        if isinstance(act, nn.ReLU | nn.LeakyReLU)
        and isinstance(norm, nn.BatchNorm2d)
        and isinstance(pool, nn.MaxPool2d)
        and isinstance(dropout, ByteDropout)
    }


class FerCNN(nn.Module):
    """Conv blocks, flatten, dense blocks, then a linear classifier over the 7 emotions.

    ``conv_dropout`` / ``dense_dropout`` / ``conv_padding``, when set, replace the dropout of every conv / dense
    block and the padding of every conv block. ``norm_after_activation`` puts BatchNorm after the activation,
    as the study's Keras models do; its convs then carry a bias, which a conv feeding BatchNorm directly would
    not use. The defaults (norm first, per-block padding ``same``) are the nets checkpoints were saved with
    before the study's own order was offered, so those checkpoints rebuild unchanged. ``keras_init`` starts the
    net as Keras would have (``init_as_keras``); off, it keeps PyTorch's defaults, which the published runs used.
    ``fuse_tails`` runs each activation -> BatchNorm -> max-pool -> dropout (the study's order) as one step in CPU
    training (``ActNormPool``); it changes the speed, not the function, and leaves evaluation and checkpoints as
    they were.
    """

    def __init__(
        self,
        conv_blocks: Sequence[ConvBlock | dict],
        dense_blocks: Sequence[DenseBlock | dict],
        activation: str = "relu",
        num_classes: int = NUM_CLASSES,
        image_size: int = IMAGE_SIDE,
        in_channels: int = 1,
        output_l2: float = 0.0,
        conv_dropout: float | None = None,
        dense_dropout: float | None = None,
        conv_padding: str | None = None,
        norm_after_activation: bool = False,
        keras_init: bool = False,
        fuse_tails: bool = True,
    ) -> None:
        super().__init__()
        convs, denses = _blocks(conv_blocks, dense_blocks, conv_dropout, dense_dropout, conv_padding)
        layers, (channels, height, width) = _conv_layers(convs, activation, in_channels, image_size,
                                                         norm_after_activation)
        conv_layers = [layer for layer in layers if isinstance(layer, nn.Conv2d)]
        self._l2: list[tuple[torch.Tensor, float]] = [(conv.weight, block.l2)
                                                      for conv, block in zip(conv_layers, convs, strict=True)]
        self.features = nn.Sequential(*layers)
        # By the position of the activation they start at; a plain dict, not registered: they own nothing, and
        # checkpoints keep the four layers' names.
        self.fused_tails = _fusable_tails(layers) if fuse_tails else {}
        head: list[nn.Module] = [nn.Flatten()]
        flat = channels * height * width
        for block in denses:
            dense = nn.Linear(flat, block.units)
            head += [dense, _activation(activation, block.negative_slope), ByteDropout(block.dropout)]
            self._l2.append((dense.weight, block.l2))
            flat = block.units
        self.classifier = nn.Linear(flat, num_classes)
        self._l2.append((self.classifier.weight, output_l2))
        head.append(self.classifier)
        self.head = nn.Sequential(*head)
        if keras_init:
            init_as_keras(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and x.device.type == "cpu"):
            return self.head(self.features(x))
        layers, i = self.features, 0  # CPU training: the fused tails, and small-map convs (small_map_conv.py)
        while i < len(layers):
            tail, layer = self.fused_tails.get(i), layers[i]
            if tail is not None and can_fuse(x, tail.norm):
                x, i = tail(x), i + 4
                continue
            if isinstance(layer, nn.Conv2d) and takes_small_map_path(layer, x):
                x = small_map_conv(layer, x)
            else:
                x = layer(x)
            i += 1
        return self.head(x)

    def l2_penalty(self) -> torch.Tensor:
        """Sum of l2 * ||W||^2 over layers, exactly what Keras adds to the loss for kernel_regularizer=l2(l2)."""
        terms = [strength * weight.float().pow(2).sum() for weight, strength in self._l2 if strength > 0]
        return torch.stack(terms).sum() if terms else torch.zeros((), device=self.classifier.weight.device)
