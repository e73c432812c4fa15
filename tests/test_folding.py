"""Folding the study's post-activation BatchNorms into the convs around them changes the graph, never the function."""

from __future__ import annotations

import pytest
import torch
from conftest import compose_train
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torch import nn

from fer_lightning.inference.folding import fold_batchnorms
from fer_lightning.models.cnn import FerCNN
from fer_lightning.models.resnet import FerResNet


def trained_looking(net: nn.Module, seed: int = 0, negative_scale: bool = False) -> nn.Module:
    """``net`` with BatchNorm statistics and affines far from their initial identity, as training leaves them."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for norm in (m for m in net.modules() if isinstance(m, nn.BatchNorm2d)):
            size = norm.num_features
            norm.running_mean.copy_(torch.randn(size, generator=generator))
            norm.running_var.copy_(torch.rand(size, generator=generator) * 3 + 0.1)
            norm.weight.copy_(torch.rand(size, generator=generator) * 2 + 0.1)
            norm.bias.copy_(torch.randn(size, generator=generator))
            if negative_scale:
                norm.weight[0] = -norm.weight[0]
    return net.eval()


def study_net(name: str, **overrides: object) -> FerCNN:
    config = compose_train([f"model={name}"]).model.net
    return instantiate(OmegaConf.merge(config, overrides), _convert_="all")


def count(net: nn.Module, kind: type[nn.Module]) -> int:
    return sum(isinstance(m, kind) for m in net.modules())


@pytest.mark.parametrize("name", ["relu", "leaky"])
def test_the_study_nets_lose_every_batchnorm_and_keep_their_logits(name: str) -> None:
    net = trained_looking(study_net(name))
    faces = torch.randn(16, 1, 48, 48)
    folded = fold_batchnorms(net)
    assert count(net, nn.BatchNorm2d) == 4 and count(folded, nn.BatchNorm2d) == 0
    torch.testing.assert_close(folded(faces), net(faces), atol=1e-4, rtol=1e-4)
    assert count(net, nn.BatchNorm2d) == 4  # the net it was given is untouched
    # Scales go into the conv before each activation, shifts into the next layer's bias: the dense layer keeps its
    # weights, so a huge scale (a dead channel's) cannot stretch the range its int8 weights share.
    folded_dense = next(m for m in folded.modules() if isinstance(m, nn.Linear))
    torch.testing.assert_close(folded_dense.weight, net.head[1].weight, rtol=0, atol=0)


def test_a_negative_scale_keeps_its_batchnorm() -> None:
    net = trained_looking(study_net("relu"), negative_scale=True)
    faces = torch.randn(16, 1, 48, 48)
    folded = fold_batchnorms(net)
    assert count(folded, nn.BatchNorm2d) == 4
    torch.testing.assert_close(folded(faces), net(faces), atol=1e-4, rtol=1e-4)


def test_a_padded_next_conv_keeps_the_batchnorm_before_it() -> None:
    net = trained_looking(study_net("relu", conv_padding="same"))
    faces = torch.randn(16, 1, 48, 48)
    folded = fold_batchnorms(net)
    assert count(folded, nn.BatchNorm2d) == 3  # only the last block's, before the dense layer, folds
    torch.testing.assert_close(folded(faces), net(faces), atol=1e-4, rtol=1e-4)


NORM_FIRST = {"conv_padding": "same", "norm_after_activation": False}  # the wide variant's blocks


@pytest.mark.parametrize("net", [study_net("relu", **NORM_FIRST), FerResNet(widths=(8, 16), blocks=(1, 1))],
                         ids=["norm first", "resnet"])
def test_other_nets_come_back_as_eval_copies(net: nn.Module) -> None:
    net = trained_looking(net).train()
    faces = torch.randn(4, 1, 48, 48)
    folded = fold_batchnorms(net)
    assert not folded.training and net.training and count(folded, nn.BatchNorm2d) == count(net, nn.BatchNorm2d)
    torch.testing.assert_close(folded(faces), net.eval()(faces))
