from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch

from fer_lightning.data.datamodule import FerDataModule, fit_normalization, pixel_moments


def make_dm(fer_csv: Path, **kwargs) -> FerDataModule:
    dm = FerDataModule(str(fer_csv), batch_size=16, eval_batch_size=32, **kwargs)
    dm.setup()
    return dm


def test_splits_follow_usage(fer_csv: Path) -> None:
    dm = make_dm(fer_csv)
    assert [len(dm.dataset(s)) for s in ("train", "val", "test")] == [140, 42, 42]


def test_prepare_data_parses_into_the_cache_once_and_setup_loads_it_once(fer_csv: Path, tmp_path: Path,
                                                                        caplog) -> None:
    caplog.set_level("INFO", logger="fer_lightning")
    dm = FerDataModule(str(fer_csv), batch_size=16, eval_batch_size=32, cache_dir=str(tmp_path / "cache"))
    dm.prepare_data()
    dm.prepare_data()  # the cache is there: nothing to parse or load
    dm.setup()
    assert caplog.text.count("Parsed 224 faces") == 1 and caplog.text.count("Loaded 224 faces from cache") == 1
    no_cache = FerDataModule(str(fer_csv), batch_size=16, eval_batch_size=32)
    no_cache.prepare_data()  # without a cache dir, setup() alone parses
    assert caplog.text.count("Parsed 224 faces") == 1


def test_batches_are_uint8_until_normalised(fer_csv: Path) -> None:
    dm = make_dm(fer_csv)
    images, labels = next(iter(dm.val_dataloader()))
    assert images.dtype == torch.uint8 and images.shape == (32, 1, 48, 48)
    normalised, same_labels = dm.on_after_batch_transfer((images, labels), 0)
    assert normalised.dtype == torch.float32 and torch.equal(labels, same_labels)


def test_per_pixel_standardisation_is_fitted_on_training_only(fer_csv: Path) -> None:
    dm = make_dm(fer_csv, normalization="per_pixel")
    train_images = torch.from_numpy(dm.data.split("Training")[0]).unsqueeze(1)
    normalised = dm.normalize(train_images)
    assert normalised.mean(dim=0).abs().max() < 1e-4
    assert torch.allclose(normalised.std(dim=0, unbiased=False), torch.ones(1, 48, 48), atol=1e-3)
    val_images = torch.from_numpy(dm.data.split("PublicTest")[0]).unsqueeze(1)
    assert dm.normalize(val_images).mean(dim=0).abs().max() > 1e-3  # stats not refitted on val


@pytest.mark.parametrize("kind", ["global", "scale"])
def test_scalar_normalisations(kind: str) -> None:
    images = np.full((4, 48, 48), 51, dtype=np.uint8)
    images[0] = 255
    mean, std = fit_normalization(images, kind)
    assert mean.ndim == 0 and std.ndim == 0
    if kind == "scale":
        assert (float(mean), float(std)) == (0.0, 255.0)
    else:
        assert float(mean) == pytest.approx(images.mean())


def test_pixel_moments_by_chunks_equal_numpys_over_the_whole_array() -> None:
    images = np.random.default_rng(0).integers(0, 256, (1000, 6, 5), dtype=np.uint8)
    pixels = images.astype(np.float64)
    mean, var = pixel_moments(images, rows_per_chunk=300)  # chunks of 300, 300, 300 and 100 rows
    np.testing.assert_allclose(mean, pixels.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, pixels.var(axis=0), rtol=1e-10)
    overall_mean, overall_std = fit_normalization(images, "global")
    assert float(overall_mean) == pytest.approx(pixels.mean(), rel=1e-6)
    assert float(overall_std) == pytest.approx(pixels.std(), rel=1e-6)


def test_unknown_normalisation_is_rejected() -> None:
    with pytest.raises(ValueError, match="per_pixel, global or scale"):
        fit_normalization(np.zeros((2, 48, 48), np.uint8), "minmax")


def test_balanced_class_weights_follow_sklearn(fer_csv: Path) -> None:
    from sklearn.utils.class_weight import compute_class_weight

    dm = make_dm(fer_csv)
    labels = dm.data.split("Training")[1]
    expected = compute_class_weight("balanced", classes=np.arange(7), y=labels)
    np.testing.assert_allclose(dm.balanced_class_weights(), expected)


def test_weighted_sampler_evens_out_classes(tmp_path: Path) -> None:
    from conftest import synthetic_frame

    frame = synthetic_frame()
    training = frame.Usage == "Training"
    frame = frame[~training | (frame.emotion != 3) | (frame.index % 10 == 0)]  # make Happy rare
    path = tmp_path / "skewed.csv"
    frame.to_csv(path, index=False)
    torch.manual_seed(0)
    dm = make_dm(path, sampler="weighted")
    drawn = torch.cat([labels for _ in range(20) for _, labels in dm.train_dataloader()])
    share = torch.bincount(drawn, minlength=7).float() / len(drawn)
    assert dm.class_counts()[3] < dm.class_counts()[0] / 5
    assert share[3] > 0.10  # ~1/7 when weighted; ~0.02 if drawn uniformly


def test_train_transform_applies_to_train_only(fer_csv: Path) -> None:
    dm = make_dm(fer_csv, train_transform=A.Compose([A.HorizontalFlip(p=1.0)]))
    raw = dm.data.split("Training")[0][0]
    flipped, _ = dm.train_dataloader().dataset[0]
    np.testing.assert_array_equal(flipped[0].numpy(), raw[:, ::-1])
    val_image, _ = dm.val_dataloader().dataset[0]
    np.testing.assert_array_equal(val_image[0].numpy(), dm.data.split("PublicTest")[0][0])


def test_state_dict_carries_normalisation(fer_csv: Path) -> None:
    dm = make_dm(fer_csv)
    fresh = FerDataModule(str(fer_csv))
    fresh.load_state_dict(dm.state_dict())
    assert torch.equal(fresh.mean, dm.mean) and torch.equal(fresh.std, dm.std)


def test_bad_sampler_is_rejected(fer_csv: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.sampler"):
        FerDataModule(str(fer_csv), sampler="oversample")


@pytest.mark.parametrize("sampler", [None, "weighted"])
def test_resident_batches_cover_the_split_and_follow_the_shuffle_state(fer_csv: Path, sampler: str | None) -> None:
    dm = make_dm(fer_csv, loader="resident", sampler=sampler)
    images, labels = dm.data.split("Training")
    state = dm.shuffle_rng.get_state()
    epochs = [list(dm.train_dataloader()) for _ in range(2)]
    assert len(epochs[0]) == len(labels) // 16 and all(len(y) == 16 for _, y in epochs[0])
    for x, y in epochs[0]:  # each batch holds Training faces with their own labels
        rows = [int(np.flatnonzero((images == face[0].numpy()).all(axis=(1, 2)))[0]) for face in x]
        assert labels[rows].tolist() == y.tolist() and x.dtype == torch.uint8
    faces = torch.cat([x for x, _ in epochs[0]]).flatten(1)
    if sampler is None:  # a permutation: no face twice within an epoch
        assert len(torch.unique(faces, dim=0)) == len(faces)
    assert not torch.equal(epochs[0][0][0], epochs[1][0][0])  # reshuffled each epoch
    dm.shuffle_rng.set_state(state)  # what a resumed run restores from its checkpoint
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epochs[0], dm.train_dataloader(), strict=True))
    val = list(dm.val_dataloader())
    np.testing.assert_array_equal(torch.cat([x for x, _ in val])[:, 0].numpy(), dm.data.split("PublicTest")[0])


def test_resident_shards_split_the_faces_between_ranks() -> None:
    from fer_lightning.data.resident import ResidentBatches

    images, labels = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1), torch.arange(10)
    order = lambda: torch.tensor([3, 1, 4, 0, 5, 9, 2, 6, 8, 7])  # noqa: E731
    ranks = [ResidentBatches(images, labels, 2, order, drop_last=True, shard=(r, 2)) for r in (0, 1)]
    trained = [torch.cat([y for _, y in batches]) for batches in ranks]
    assert trained[0].tolist() == [3, 4, 5, 2] and trained[1].tolist() == [1, 0, 9, 6]  # 5 each, last dropped
    evaluated = [torch.cat([y for _, y in ResidentBatches(images, labels, 4, shard=(r, 2))]) for r in (0, 1)]
    assert sorted(torch.cat(evaluated).tolist()) == list(range(10))  # every face once, none padded in
    assert len(ResidentBatches(images, labels, 4, shard=(1, 3))) == 1


def test_resident_loader_refuses_per_face_augmentation(fer_csv: Path) -> None:
    with pytest.raises(ValueError, match=r"data\.loader=resident.*batch_augment"):
        FerDataModule(str(fer_csv), loader="resident", train_transform=A.Compose([A.HorizontalFlip()]))
    with pytest.raises(ValueError, match=r"data\.loader must be"):
        FerDataModule(str(fer_csv), loader="gpu")
