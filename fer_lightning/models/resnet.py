"""A residual net for 48x48 faces, built from config like the study's CNNs: ``model=resnet18``.

ResNet-18's layout (He et al. 2016) cut to the face's size: a 3x3 stem instead of the 7x7 stride-2 stem and
max-pool that ImageNet's 224 px images call for, then stages of basic blocks (two 3x3 conv + BatchNorm, the
input added back), each stage after the first halving the side with a stride-2 first block (48 -> 24 -> 12 -> 6
for four stages), global average pooling, dropout and one linear layer. ``widths`` make it a wide ResNet
(Zagoruyko & Komodakis 2016: wider stages, fewer blocks); ``blocks`` deepen it. No weights are pretrained:
everything here trains from scratch on FER-2013's Training split.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fer_lightning.errors import ConfigError
from fer_lightning.fer2013 import NUM_CLASSES


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the input (through a strided 1x1 conv where the shape changes)."""

    def __init__(self, channels_in: int, channels_out: int, stride: int) -> None:
        super().__init__()
        last_norm = nn.BatchNorm2d(channels_out)
        nn.init.zeros_(last_norm.weight)  # each block starts as the identity: deep stacks train from step one
        self.body = nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False), nn.BatchNorm2d(channels_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False), last_norm)
        self.shortcut = nn.Identity() if stride == 1 and channels_in == channels_out else nn.Sequential(
            nn.Conv2d(channels_in, channels_out, 1, stride, bias=False), nn.BatchNorm2d(channels_out))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.shortcut(x))


class FerResNet(nn.Module):
    def __init__(self, widths: Sequence[int] = (64, 128, 256, 512), blocks: Sequence[int] = (2, 2, 2, 2),
                 dropout: float = 0.0, num_classes: int = NUM_CLASSES, in_channels: int = 1) -> None:
        super().__init__()
        if not widths or len(widths) != len(blocks) or min(blocks) < 1:
            raise ConfigError(f"a ResNet needs one block count (>= 1) per stage width, got widths={list(widths)}, "
                              f"blocks={list(blocks)}")
        layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]),
                                   nn.ReLU(inplace=True)]
        channels = widths[0]
        for stage, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            for index in range(count):
                layers.append(BasicBlock(channels, width, stride=2 if stage > 0 and index == 0 else 1))
                channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
