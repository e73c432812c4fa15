"""The first conv's whitening start: uncorrelated unit-variance channels in ± pairs, on any first conv."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import compose_train
from hydra.utils import instantiate
from torch import nn

from fer_lightning.models.cnn import FerCNN
from fer_lightning.models.whitening import patch_covariance, whiten_first_conv


def _faces(count: int = 64, seed: int = 0) -> torch.Tensor:
    """Images whose neighbouring pixels are strongly correlated, as a face's are (white noise would need no
    whitening: its patch covariance is already the identity)."""
    noise = torch.randn(count, 1, 48, 48, generator=torch.Generator().manual_seed(seed))
    return F.avg_pool2d(noise, 5, 1, 2) * 5 + 0.3


def test_patch_covariance_matches_the_covariance_of_all_unfolded_patches() -> None:
    faces = _faces(8)
    patches = F.unfold(faces, (3, 2)).transpose(1, 2).reshape(-1, 6).double()
    assert torch.allclose(patch_covariance(faces, (3, 2)), torch.cov(patches.T, correction=0), atol=1e-10)


def test_the_study_nets_first_conv_starts_with_uncorrelated_unit_variance_pairs() -> None:
    net = instantiate(compose_train(["model=relu"]).model.net)
    faces = _faces()
    assert whiten_first_conv(net, faces) == 48  # 24 of the 25 directions of a 5x5 patch, each as +v and -v
    conv = net.features[0]
    assert torch.equal(conv.weight[:24], -conv.weight[24:]) and not conv.bias.any()
    channels = F.conv2d(faces, conv.weight[:24]).transpose(0, 1).reshape(24, -1)
    covariance = torch.cov(channels, correction=0)
    assert torch.allclose(covariance, torch.eye(24), atol=2e-3)
    assert net(faces[:2]).shape == (2, 7)


def test_filters_beyond_twice_the_patch_size_keep_their_own_start() -> None:
    net = FerCNN([{"filters": 24, "kernel_size": 3}], [])  # a 3x3 patch has 9 directions: 18 filters set
    before = net.features[0].weight.detach().clone()
    assert whiten_first_conv(net, _faces(16)) == 18
    after = net.features[0].weight
    assert torch.equal(after[18:], before[18:]) and not torch.equal(after[:18], before[:18])


def test_a_first_conv_over_other_channels_is_refused() -> None:
    net = nn.Sequential(nn.Conv2d(3, 8, 3))
    with pytest.raises(ValueError, match="takes 3 channels in 1 groups; whitening needs an ungrouped conv over "
                                         "the images' 1 channels"):
        whiten_first_conv(net, _faces(4))
    with pytest.raises(ValueError, match="Linear has no Conv2d to whiten"):
        whiten_first_conv(nn.Linear(4, 2), _faces(4))
