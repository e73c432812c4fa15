"""Start a net's first conv as a whitening filter bank for Training's own image patches.

A first conv learns, early on, roughly to decorrelate neighbouring pixels; airbench (Keller Jordan's fast
CIFAR-10 trainer) saves those steps by starting from the answer: the eigenvectors of the covariance of the
image patches the conv sees, each scaled by 1/sqrt(its eigenvalue), so that every output channel starts with
unit variance and no two are correlated. Each eigenvector goes in twice, as +v and -v, so a ReLU after the
conv passes both halves of the signal. The study's first conv (48 filters of 5x5 on one channel) takes 24 of
the 25 eigenvectors, the strongest first.

The filters are a starting point, trained like any others; a run that loads a checkpoint does not whiten.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EIGENVALUE_FLOOR = 5e-4  # times the strongest direction's variance: the faint, noise-like directions stay bounded
# Patches unfolded at a time: ~10 MB chunks reuse the memory the last one freed; chunks of a million patches took
# 4-6 s for fer-train's 5,000 faces on a 2-core VM where fresh memory is slow to fault in, these 1.5-2 s.
PATCHES_PER_CHUNK = 50_000


def first_conv(net: nn.Module) -> nn.Conv2d:
    """The first Conv2d a forward pass reaches in a net built from Sequentials, as FerCNN and the ResNet are."""
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError(f"{type(net).__name__} has no Conv2d to whiten")


def patch_covariance(images: torch.Tensor, kernel_size: tuple[int, int]) -> torch.Tensor:
    """Covariance (float64, D x D, D = channels x kernel area) of every ``kernel_size`` patch of (N, C, H, W)
    ``images``, accumulated a chunk of images at a time so the unfolded patches never all sit in memory."""
    per_image = (images.shape[-2] - kernel_size[0] + 1) * (images.shape[-1] - kernel_size[1] + 1)
    step = max(1, PATCHES_PER_CHUNK // per_image)
    dims = images.shape[1] * kernel_size[0] * kernel_size[1]
    total, outer, count = torch.zeros(dims, dtype=torch.float64), torch.zeros(dims, dims, dtype=torch.float64), 0
    for start in range(0, len(images), step):
        # Unfolded in float32 (faster than in float64), summed in float64.
        patches = F.unfold(images[start:start + step].float(), kernel_size).transpose(1, 2).reshape(-1, dims).double()
        total += patches.sum(0)
        outer += patches.T @ patches
        count += len(patches)
    mean = total / count
    return outer / count - torch.outer(mean, mean)


@torch.no_grad()
def whiten_first_conv(net: nn.Module, images: torch.Tensor) -> int:
    """Set the first conv's leading filters to ± whitening pairs for ``images`` (normalised, (N, C, H, W)).

    Returns how many filters were set: twice the eigenvectors used, at most the conv's filter count. Filters
    beyond that (more filters than twice the patch dimension) keep their default initialisation. The set
    filters' bias starts at zero: standardised faces' patches are close to zero-mean already.
    """
    conv = first_conv(net)
    if conv.groups != 1 or conv.in_channels != images.shape[1]:
        raise ValueError(f"the first conv takes {conv.in_channels} channels in {conv.groups} groups; whitening "
                         f"needs an ungrouped conv over the images' {images.shape[1]} channels")
    kernel = (conv.kernel_size[0], conv.kernel_size[1])
    eigenvalues, eigenvectors = torch.linalg.eigh(patch_covariance(images, kernel))  # ascending
    pairs = min(conv.out_channels // 2, len(eigenvalues))
    strongest = eigenvalues.flip(0)[:pairs].clamp_min(EIGENVALUE_FLOOR * eigenvalues[-1])
    filters = (eigenvectors.flip(1)[:, :pairs] / strongest.sqrt()).T  # (pairs, D)
    filters = torch.cat([filters, -filters]).reshape(2 * pairs, conv.in_channels, *kernel)
    conv.weight[: 2 * pairs] = filters.to(conv.weight.dtype)
    if conv.bias is not None:
        conv.bias[: 2 * pairs] = 0
    return 2 * pairs
