"""Mixup and CutMix for a training batch: faces blended or patched together, their targets mixed in proportion.

Each mixed batch pairs every face with another of the same batch (a random permutation) and draws one weight
``lam`` from Beta(alpha, alpha): mixup blends the two faces ``lam : 1 - lam``; CutMix pastes a box of the
partner's face covering ``1 - lam`` of the image. The targets become the same mixture of the two faces' target
distributions, so what comes out is (B, 7) probabilities, which the classifier's loss takes as they are.

Every draw comes from the CPU generator the DataModule owns and saves in checkpoints (as ``BatchAugment``'s),
so a resumed run mixes the same pairs; Beta is drawn by its inverse CDF from one uniform.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.special import betaincinv

from fer_lightning.errors import ConfigError
from fer_lightning.fer2013 import NUM_CLASSES


def as_probabilities(targets: torch.Tensor) -> torch.Tensor:
    """(B,) class indices as one-hot rows, (B, 7) target distributions as they are; float32 either way."""
    return F.one_hot(targets, NUM_CLASSES).float() if targets.dim() == 1 else targets.float()


@dataclass
class BatchMix:
    """Mixup (``mixup_alpha`` > 0) and/or CutMix (``cutmix_alpha`` > 0) on a share ``p`` of training batches.

    With both on, each mixed batch uses CutMix with probability ``cutmix_share``, else mixup.
    """

    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    p: float = 1.0
    cutmix_share: float = 0.5

    def __post_init__(self) -> None:
        if self.mixup_alpha < 0 or self.cutmix_alpha < 0 or not 0 <= self.p <= 1:
            raise ConfigError(f"BatchMix needs alphas >= 0 and 0 <= p <= 1, got mixup_alpha={self.mixup_alpha}, "
                              f"cutmix_alpha={self.cutmix_alpha}, p={self.p}")

    def __call__(self, images: torch.Tensor, targets: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        targets = as_probabilities(targets)
        mix, which, weight, top, left = torch.rand(5, generator=generator).tolist()
        partner = torch.randperm(len(images), generator=generator).to(images.device, non_blocking=True)
        if mix >= self.p or self.mixup_alpha == self.cutmix_alpha == 0:
            return images, targets
        cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha == 0 or which < self.cutmix_share)
        alpha = self.cutmix_alpha if cutmix else self.mixup_alpha
        lam = float(betaincinv(alpha, alpha, weight))
        if cutmix:
            images, lam = self._paste_box(images, images[partner], lam, top, left)
        else:
            images = lam * images + (1 - lam) * images[partner]
        return images, lam * targets + (1 - lam) * targets[partner]

    @staticmethod
    def _paste_box(images: torch.Tensor, partners: torch.Tensor, lam: float, top: float,
                   left: float) -> tuple[torch.Tensor, float]:
        """The partners' pixels inside a box of about ``1 - lam`` of the image (placed whole inside it), and the
        share of the face actually kept once the box is rounded to whole pixels."""
        height, width = images.shape[-2:]
        side = (1 - lam) ** 0.5
        box_h, box_w = round(height * side), round(width * side)
        y0, x0 = round(top * (height - box_h)), round(left * (width - box_w))
        mixed = images.clone()
        mixed[..., y0:y0 + box_h, x0:x0 + box_w] = partners[..., y0:y0 + box_h, x0:x0 + box_w]
        return mixed, 1 - box_h * box_w / (height * width)
