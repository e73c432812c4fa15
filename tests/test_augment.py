"""Batched augmentation: shapes and ranges, each change on its own, per-face choice, and training-only use."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import compose_train
from hydra.utils import instantiate

from fer_lightning.data.augment import BatchAugment
from fer_lightning.data.datamodule import FerDataModule
from fer_lightning.data.mixing import BatchMix

NOTHING = {"hflip": 0.0, "affine": 0.0, "color": 0.0}


def faces(n: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, 256, (n, 1, 48, 48), generator=torch.Generator().manual_seed(seed)).float()


def run(augment: BatchAugment, images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    return augment(images.clone(), torch.Generator().manual_seed(seed))


def test_default_augment_keeps_shape_dtype_and_range() -> None:
    images = faces()
    out = run(BatchAugment(), images)
    assert out.shape == images.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 255 and not torch.equal(out, images)


def test_all_probabilities_zero_is_identity() -> None:
    images = faces()
    assert torch.equal(run(BatchAugment(**NOTHING), images), images)


def test_same_generator_state_same_batch() -> None:
    images = faces()
    assert torch.equal(run(BatchAugment(), images, seed=3), run(BatchAugment(), images, seed=3))
    assert not torch.equal(run(BatchAugment(), images, seed=3), run(BatchAugment(), images, seed=4))


def test_flip_is_chosen_per_face() -> None:
    images = faces(256)
    out = run(BatchAugment(**{**NOTHING, "hflip": 0.5}), images)
    flipped = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, images, strict=True)])
    unchanged = torch.tensor([torch.equal(o, i) for o, i in zip(out, images, strict=True)])
    assert bool((flipped | unchanged).all()) and 0.35 < flipped.float().mean() < 0.65


def test_warp_shifts_and_rotates_like_the_geometry_says() -> None:
    images = faces(2)
    one, zero = torch.ones(2), torch.zeros(2)
    shifted = BatchAugment._warp(images, zero, one, torch.tensor([[0.25, 0.0]] * 2))  # right by 12 px
    torch.testing.assert_close(shifted[..., 12:], images[..., :-12], atol=1e-3, rtol=0)
    assert shifted[..., :12].abs().max() < 1e-3  # black fill
    turned = BatchAugment._warp(images, torch.full((2,), torch.pi / 2), one, torch.zeros(2, 2))
    torch.testing.assert_close(turned, images.rot90(-1, (-2, -1)), atol=1e-2, rtol=0)  # +90° turns clockwise
    torch.testing.assert_close(BatchAugment._warp(images, zero, one, torch.zeros(2, 2)), images, atol=1e-3, rtol=0)



def test_warp_samples_where_affine_grid_would() -> None:
    """The broadcast grid is torch's affine_grid for the same inverse map, on a non-square image too."""
    images = torch.rand(8, 1, 48, 40) * 255
    draws = torch.Generator().manual_seed(1)
    angle, scale, shift = torch.rand(8, generator=draws) - 0.5, 0.9 + 0.2 * torch.rand(8, generator=draws), \
        0.2 * torch.rand(8, 2, generator=draws) - 0.1
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    inverse = torch.stack([torch.stack([cos, sin], 1), torch.stack([-sin, cos], 1)], 1)
    theta = torch.cat([inverse, -(inverse @ (2 * shift).unsqueeze(-1))], 2)
    grid = torch.nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    expected = torch.nn.functional.grid_sample(images, grid, align_corners=False)
    torch.testing.assert_close(BatchAugment._warp(images, angle, scale, shift), expected, atol=0.01, rtol=0)

def test_brightness_moves_each_face_by_one_amount_within_the_limit() -> None:
    images = faces().clamp(60, 190)  # away from the clamp at 0 and 255
    out = run(BatchAugment(**{**NOTHING, "color": 1.0, "contrast": 0.0, "brightness": 0.2}), images)
    delta = (out - images).flatten(1)
    assert torch.allclose(delta, delta[:, :1], atol=1e-3) and delta.abs().max() <= 0.2 * 255 + 1e-3


def test_bad_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="float batch"):
        BatchAugment()(torch.zeros(2, 1, 48, 48, dtype=torch.uint8), torch.Generator())


def test_datamodule_augments_training_batches_only_and_checkpoints_the_generator(fer_csv: Path) -> None:
    dm = FerDataModule(str(fer_csv), batch_augment=BatchAugment(), batch_size=16)
    dm.setup()
    images, labels = next(iter(dm.val_dataloader()))
    plain = dm.normalize(images)
    dm.trainer = SimpleNamespace(training=False)
    assert torch.equal(dm.on_after_batch_transfer((images, labels), 0)[0], plain)
    dm.trainer = SimpleNamespace(training=True)
    state = dm.state_dict()
    first = dm.on_after_batch_transfer((images, labels), 0)[0]
    assert not torch.equal(first, plain)
    dm.load_state_dict(state)  # a resumed run draws the same augmentation again
    assert torch.equal(dm.on_after_batch_transfer((images, labels), 0)[0], first)


def test_batched_data_config_swaps_the_loader_transform_for_the_batch_one(tmp_path: Path) -> None:
    cfg = compose_train([f"paths.output_dir={tmp_path}", "data.csv_path=unused.csv", "data=fer2013_batched"])
    dm = instantiate(cfg.data)
    assert dm.train_transform is None and isinstance(dm.batch_augment, BatchAugment)
    assert list(dm.batch_augment.scale) == [0.9, 1.1]


def test_erasing_blacks_out_one_rectangle_of_the_allowed_size_per_face() -> None:
    images = faces(128)
    out = run(BatchAugment(**{**NOTHING, "erase": 1.0, "erase_area": (0.05, 0.2)}), images)
    for face in (out == 0)[:, 0]:
        rows, cols = face.any(1).nonzero().flatten(), face.any(0).nonzero().flatten()
        height, width = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert face.sum() == height * width  # one solid rectangle
        assert 0.05 * 48 * 48 * 0.7 <= height * width <= 0.2 * 48 * 48 * 1.3
    assert torch.equal(out[out != 0], images[out != 0])  # nothing else changes


def constant_faces() -> tuple[torch.Tensor, torch.Tensor]:
    """Face i of 7 is the constant 10 * (i + 1) with label i, so a mixed face shows which faces went into it."""
    return (torch.arange(1, 8).float() * 10).view(7, 1, 1, 1).expand(7, 1, 48, 48).clone(), torch.arange(7)


def test_mixup_blends_each_face_with_a_partner_and_its_target_alike() -> None:
    images, labels = constant_faces()
    mixed, targets = BatchMix(mixup_alpha=0.4)(images, labels, torch.Generator().manual_seed(3))
    assert targets.shape == (7, 7) and torch.allclose(targets.sum(1), torch.ones(7))
    value, own_value = mixed[:, 0, 0, 0], images[:, 0, 0, 0]
    assert (mixed == value.view(-1, 1, 1, 1)).all()  # a blend of two constant faces is constant
    lam = targets[labels, labels]  # each face's weight on its own label
    paired = lam < 1  # the others drew themselves as partner
    assert paired.sum() >= 5
    partner_value = (value[paired] - lam[paired] * own_value[paired]) / (1 - lam[paired])
    partner = targets.clone()
    partner[labels, labels] = 0  # what is left is the partner's label and weight
    partner = partner[paired]
    assert torch.allclose(partner_value, own_value[partner.argmax(1)], atol=1e-3)
    assert torch.allclose(partner.sum(1), 1 - lam[paired])


def test_cutmix_pastes_a_box_whose_area_is_the_partners_target_weight() -> None:
    images, labels = constant_faces()
    mixed, targets = BatchMix(cutmix_alpha=1.0)(images, labels, torch.Generator().manual_seed(5))
    own = (mixed == images).float().mean((1, 2, 3))  # share of pixels still the face's own
    assert torch.allclose(targets[labels, labels], own, atol=1e-6)
    assert (own < 1).sum() >= 5  # one box per batch: every face paired with another got the same patch


def test_mixing_is_reproducible_from_the_generator_and_off_when_p_is_zero() -> None:
    images, labels = constant_faces()
    mix = BatchMix(mixup_alpha=0.4, cutmix_alpha=1.0)
    first, second = (mix(images, labels, torch.Generator().manual_seed(8)) for _ in range(2))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    untouched, one_hot = BatchMix(mixup_alpha=0.4, p=0.0)(images, labels, torch.Generator())
    assert torch.equal(untouched, images) and torch.equal(one_hot.argmax(1), labels)
    with pytest.raises(ValueError, match="BatchMix needs alphas >= 0"):
        BatchMix(mixup_alpha=-1.0)
