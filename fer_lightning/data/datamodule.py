"""FER-2013 as a LightningDataModule: Training trains, PublicTest validates, PrivateTest is the final test.

Images travel as uint8 and are normalised in one vectorised step after the batch reaches the device, with
statistics fitted on the Training split only. Training faces are augmented either one by one in the loader
(``train_transform``, albumentations) or a batch at a time on the device (``batch_augment``). On a GPU the
splits move to the device once and batches are indexed there (``loader``, see ``resident.py``). Training labels
may become (7,) target distributions: mixed per batch (``batch_mix``), a teacher's from the start (``teacher``), or
a teacher's on each augmented batch (``teach_on_batches``).

The shuffling and augmentation random states live here and go into every checkpoint, so a resumed run draws
the same batches and augmentations as an uninterrupted one.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, Literal, cast

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

from fer_lightning.data.audit import DataAudit, LabelConflicts, csv_audit, training_selection
from fer_lightning.data.augment import BatchAugment
from fer_lightning.data.csv_reader import BadRows, FerArrays, cache_file, existing_csv, load_fer2013
from fer_lightning.data.mixing import BatchMix
from fer_lightning.data.resident import ResidentBatches
from fer_lightning.data.teacher import teacher_targets
from fer_lightning.errors import ConfigError, check_whole_number
from fer_lightning.fer2013 import CLASS_NAMES, SPLITS

log = logging.getLogger(__name__)
Normalization = Literal["per_pixel", "global", "scale"]
Loader = Literal["auto", "dataloader", "resident"]
STAGE_SPLITS = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def _reseed_worker(worker_id: int) -> None:
    """Each worker's torch seed already differs (base seed + id); derive its augmentation seed from it."""
    info = torch.utils.data.get_worker_info()
    if info is not None and isinstance(info.dataset, FaceDataset):
        info.dataset.reseed(torch.initial_seed())


class FaceDataset(Dataset):
    """uint8 faces with an optional albumentations transform; returns ((1, 48, 48) uint8 tensor, label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable | None = None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def reseed(self, seed: int) -> None:
        """albumentations 2 keeps its own RNG, out of reach of seed_everything; seed it explicitly."""
        set_random_seed = getattr(self.transform, "set_random_seed", None)
        if set_random_seed is not None:
            set_random_seed(seed % 2**32)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int | torch.Tensor]:
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image=image)["image"]
        label = self.labels[index]  # a class index, or a (7,) target distribution
        return torch.from_numpy(np.ascontiguousarray(image)).unsqueeze(0), \
            torch.from_numpy(label) if label.ndim else int(label)


def fit_normalization(train_images: np.ndarray, kind: Normalization) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std on the 0-255 scale: per pixel (the study's StandardScaler), one global pair, or 0 and 255."""
    if kind == "scale":
        return torch.tensor(0.0), torch.tensor(255.0)
    if kind not in ("global", "per_pixel"):
        raise ConfigError(f"data.normalization must be per_pixel, global or scale, got {kind!r}")
    mean, var = pixel_moments(train_images)
    if kind == "global":  # every pixel has as many values, so the overall moments follow from the per-pixel ones
        overall = mean.mean()
        overall_var = (var + (mean - overall) ** 2).mean()
        return torch.tensor(overall, dtype=torch.float32), torch.tensor(np.sqrt(overall_var), dtype=torch.float32)
    std = np.sqrt(var)
    std[std == 0] = 1.0  # StandardScaler's rule for constant features
    return torch.from_numpy(mean).float()[None], torch.from_numpy(std).float()[None]


def pixel_moments(images: np.ndarray, rows_per_chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean and (population) variance of (N, ...) images in float64, a chunk of rows at a time.

    numpy's ``std(axis=0)`` of the whole float64 copy of Training (530 MB) builds temporaries as large, and on the
    project's 2-core VMs, where fresh memory is slow to fault in, that took 7-15 s of every run's start; by chunks
    it takes 0.2 s and gives the same figures to 1e-11.
    """
    mean = images.mean(axis=0, dtype=np.float64)
    squares = np.zeros_like(mean)
    for start in range(0, len(images), rows_per_chunk):
        deviations = images[start:start + rows_per_chunk].astype(np.float64) - mean
        squares += np.einsum("i...,i...->...", deviations, deviations)
    return mean, squares / len(images)


class FerDataModule(L.LightningDataModule):
    def __init__(
        self,
        csv_path: str | None,
        cache_dir: str | None = None,
        bad_rows: BadRows = "raise",
        normalization: Normalization = "per_pixel",
        train_transform: Callable | None = None,
        batch_augment: BatchAugment | None = None,
        batch_mix: BatchMix | None = None,
        teacher: str | None = None,
        teacher_weight: float = 0.5,
        teacher_temperature: float = 1.0,
        batch_size: int = 128,
        eval_batch_size: int = 512,
        num_workers: int = 0,
        sampler: Literal["weighted"] | None = None,
        drop_blank: bool = False,
        dedupe: Literal["train"] | None = None,
        label_conflicts: LabelConflicts = "keep",
        loader: Loader = "auto",
    ) -> None:
        super().__init__()
        check_whole_number("data.batch_size", batch_size, "faces")
        check_whole_number("data.eval_batch_size", eval_batch_size, "faces")
        check_whole_number("data.num_workers", num_workers, "loader processes", least=0)
        if sampler not in (None, "weighted"):
            raise ConfigError(f"data.sampler must be null or 'weighted', got {sampler!r}")
        if loader not in ("auto", "dataloader", "resident"):
            raise ConfigError(f"data.loader must be auto, dataloader or resident, got {loader!r}")
        if loader == "resident" and train_transform is not None:
            raise ConfigError("data.loader=resident batches faces on the device, where the per-face albumentations "
                              "train_transform cannot run: use data=fer2013_batched (batch_augment)")
        self.loader = loader
        self.csv_path, self.cache_dir, self.bad_rows = csv_path, cache_dir, bad_rows
        self.drop_blank, self.dedupe, self.label_conflicts = drop_blank, dedupe, label_conflicts
        self.normalization = normalization
        self.train_transform, self.batch_augment, self.batch_mix = train_transform, batch_augment, batch_mix
        self.teacher, self.teacher_weight, self.teacher_temperature = teacher, teacher_weight, teacher_temperature
        self.batch_teacher: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
        self._train_targets: np.ndarray | None = None  # with a teacher: (N, 7) soft targets of the Training rows
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.sampler = num_workers, sampler
        self._data: FerArrays | None = None
        self._on_device: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}  # (stage, device): split
        self._copy_in_training: np.ndarray | None = None  # per row of data: a copy is among the Training rows
        self._mean: torch.Tensor | None = None
        self._std: torch.Tensor | None = None
        self._stats_copies: tuple[torch.Tensor, ...] | None = None  # mean, std, and their copies on a device
        self.shuffle_rng, self.batch_augment_rng = torch.Generator(), torch.Generator()
        self.augment_rng, self.augment_py_rng = np.random.default_rng(), random.Random()

    def prepare_data(self) -> None:
        """Parse the CSV into its cache where none holds it yet: Lightning runs this in one process per machine, before
        every process's setup() loads the cache. Without a cache dir there is nothing to prepare; setup() parses."""
        if self._data is not None or not self.cache_dir:
            return
        if not cache_file(existing_csv(self.csv_path), self.cache_dir, self.bad_rows).is_file():
            load_fer2013(self.csv_path, self.cache_dir, self.bad_rows)

    def setup(self, stage: str | None = None) -> None:
        if self._data is not None:
            return
        data = load_fer2013(self.csv_path, self.cache_dir, self.bad_rows)
        cleaning = self.drop_blank or self.dedupe is not None or self.label_conflicts != "keep"
        if cleaning:
            data = self._cleaned(data)
        self._data = data
        train_images, _ = data.split("Training")
        if len(train_images) == 0:
            raise ValueError(f"{self.csv_path}: no rows with Usage=Training, nothing to train on")
        self._mean, self._std = fit_normalization(train_images, self.normalization)
        if self.teacher is not None:
            training = data.usage == SPLITS.index("Training")
            self._train_targets = teacher_targets(self.teacher, data.lines[training], data.labels[training],
                                                  self.teacher_weight, self.teacher_temperature)
        self._seed_random_states(int(torch.randint(2**62, ())))  # follows seed_everything
        sizes = {stage: len(data.split(split)[1]) for stage, split in STAGE_SPLITS.items()}
        log.info("Splits: %s", ", ".join(f"{k} {v}" for k, v in sizes.items()))

    @property
    def data(self) -> FerArrays:
        """The CSV's rows, cleaned as configured; loaded by the first use (``setup``)."""
        self.setup()
        return cast(FerArrays, self._data)

    @property
    def mean(self) -> torch.Tensor:
        """The normalisation's mean, fitted on Training by ``setup`` or loaded from a checkpoint."""
        if self._mean is None:
            self.setup()
        return cast(torch.Tensor, self._mean)

    @property
    def std(self) -> torch.Tensor:
        """The normalisation's spread, as ``mean``."""
        if self._std is None:
            self.setup()
        return cast(torch.Tensor, self._std)

    def teach_on_batches(self, teacher: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
        """Training targets from ``teacher`` (normalised images, labels -> (B, 7) targets) on each training batch
        after augmentation and mixing, instead of from a teacher file (``training.teacher_nets``)."""
        if self.teacher is not None:
            raise ConfigError("data.teacher (a file of saved predictions) and teacher_runs (nets run on each batch) "
                              "are two ways to teach: set one of them")
        self.batch_teacher = teacher

    def _audit(self, data: FerArrays) -> DataAudit:
        """The data's blanks and copy groups, cached beside its CSV cache (computed about a minute, once)."""
        return csv_audit(data, self.csv_path, self.cache_dir, self.bad_rows)

    def _cleaned(self, data: FerArrays) -> FerArrays:
        """The rows left after ``drop_blank`` / ``dedupe`` / ``label_conflicts`` (Training rows only)."""
        audit = self._audit(data)
        keep, labels = training_selection(data, audit, self.drop_blank, self.dedupe, self.label_conflicts)
        training = data.usage == SPLITS.index("Training")
        log.info("Training rows dropped (drop_blank=%s, dedupe=%s, label_conflicts=%s): %d of %d; relabelled: %d",
                 self.drop_blank, self.dedupe, self.label_conflicts, int((~keep).sum()), int(training.sum()),
                 int((labels != data.labels).sum()))
        self._copy_in_training = audit.copies_in(keep & training)[keep]
        return data.select(keep, labels)

    def without_training_copy(self, split: str) -> np.ndarray:
        """Per face of the split: no copy of it, exact or near, among the Training rows trained on.

        Asked for by the PrivateTest report only, so runs that never test (tuning trials, fer-bench) skip the audit.
        """
        self.setup()
        if self._copy_in_training is None:
            self._copy_in_training = self._audit(self.data).copies_in(self.data.usage == SPLITS.index("Training"))
        return ~self._copy_in_training[self.data.usage == SPLITS.index(split)]

    def _seed_random_states(self, seed: int) -> None:
        self.shuffle_rng.manual_seed(seed)
        self.batch_augment_rng.manual_seed(seed + 1)
        self.augment_rng, self.augment_py_rng = np.random.default_rng(seed), random.Random(seed)
        set_random_state = getattr(self.train_transform, "set_random_state", None)
        if set_random_state is not None:  # albumentations 2 keeps its own generators
            set_random_state(self.augment_rng, self.augment_py_rng)

    def class_counts(self) -> np.ndarray:
        """Training-split count per class, all 7 present (zeros where a class is absent)."""
        return np.bincount(self.data.split("Training")[1], minlength=len(CLASS_NAMES))

    def balanced_class_weights(self) -> list[float]:
        """sklearn's 'balanced' weights n / (k * count); an absent class gets weight 0."""
        counts = self.class_counts()
        weights = np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 0.0)
        return weights.tolist()

    def _split(self, stage: str) -> tuple[np.ndarray, np.ndarray]:
        """The stage's faces and what its batches carry as labels: class indices, or for training with a teacher
        (N, 7) target distributions."""
        images, labels = self.data.split(STAGE_SPLITS[stage])
        return images, self._train_targets if stage == "train" and self._train_targets is not None else labels

    def dataset(self, stage: str, transform: Callable | None = None) -> FaceDataset:
        return FaceDataset(*self._split(stage), transform=transform)

    def _loader(self, dataset: FaceDataset, batch_size: int, **kwargs: Any) -> DataLoader:
        # Pinned batches reach a GPU without a host sync (Lightning copies them non-blocking).
        return DataLoader(dataset, batch_size=batch_size, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0, worker_init_fn=_reseed_worker,
                          pin_memory=torch.cuda.is_available(), **kwargs)

    def _device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def uses_resident_batches(self) -> bool:
        """``loader: auto`` keeps the splits on the device where that device is a GPU and augmentation is per batch."""
        if self.loader == "auto":
            return self._device().type == "cuda" and self.train_transform is None
        return self.loader == "resident"

    def _resident(self, stage: str, order: Callable[[], torch.Tensor] | None = None,
                  drop_last: bool = False) -> ResidentBatches:
        """The stage's split on the training device (copied there once), in batches of the stage's size."""
        device = self._device()
        key = (stage, str(device))
        if key not in self._on_device:
            images, labels = self._split(stage)
            labels = labels if labels.ndim == 2 else labels.astype(np.int64)
            self._on_device[key] = (torch.from_numpy(images).unsqueeze(1).to(device),
                                    torch.from_numpy(labels).to(device))
        trainer = self.trainer
        shard = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        batch_size = self.batch_size if stage == "train" else self.eval_batch_size
        return ResidentBatches(*self._on_device[key], batch_size, order, drop_last, shard)

    def _epoch_order(self, faces: int, weights: torch.Tensor | None) -> torch.Tensor:
        """One epoch's face indices from ``shuffle_rng``: a permutation, or class-balanced draws with replacement."""
        if weights is None:
            return torch.randperm(faces, generator=self.shuffle_rng)
        return torch.multinomial(weights, faces, replacement=True, generator=self.shuffle_rng)

    def _sampling_weights(self, labels: np.ndarray) -> torch.Tensor:
        per_class = 1.0 / np.maximum(self.class_counts(), 1)
        return torch.as_tensor(per_class[labels], dtype=torch.double)

    def train_dataloader(self) -> DataLoader | ResidentBatches:
        if self.uses_resident_batches():
            labels = self.data.split("Training")[1]
            weights = self._sampling_weights(labels) if self.sampler == "weighted" else None
            return self._resident("train", lambda: self._epoch_order(len(labels), weights), drop_last=True)
        dataset = self.dataset("train", self.train_transform)
        if self.sampler == "weighted":
            labels = self.data.split("Training")[1]
            sampler = WeightedRandomSampler(self._sampling_weights(labels),  # type: ignore[arg-type]
                                            num_samples=len(dataset),
                                            generator=self.shuffle_rng)
            return self._loader(dataset, self.batch_size, sampler=sampler, drop_last=True, generator=self.shuffle_rng)
        return self._loader(dataset, self.batch_size, shuffle=True, drop_last=True, generator=self.shuffle_rng)

    def val_dataloader(self) -> DataLoader | ResidentBatches:
        return self._resident("val") if self.uses_resident_batches() else \
            self._loader(self.dataset("val"), self.eval_batch_size)

    def test_dataloader(self) -> DataLoader | ResidentBatches:
        return self._resident("test") if self.uses_resident_batches() else \
            self._loader(self.dataset("test"), self.eval_batch_size)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 1, 48, 48) on the 0-255 scale, uint8 or float -> standardised float32 on the images' device."""
        mean, std = self._stats_on(images.device)
        return (images.float() - mean) / std

    def _stats_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """mean and std on ``device``, copied once rather than every batch (a copy to a GPU is a host sync)."""
        cached = self._stats_copies
        if cached is None or cached[0] is not self.mean or cached[1] is not self.std or cached[2].device != device:
            cached = self._stats_copies = (self.mean, self.std, self.mean.to(device), self.std.to(device))
        return cached[2], cached[3]

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, labels = batch
        images = images.float()
        training = self.trainer is not None and self.trainer.training
        if training and self.batch_augment is not None:
            images = self.batch_augment(images, self.batch_augment_rng)
        if training and self.batch_mix is not None:  # targets become (B, 7) mixtures
            images, labels = self.batch_mix(images, labels, self.batch_augment_rng)
        images = self.normalize(images)
        if training and self.batch_teacher is not None:  # the teacher sees the very images the student trains on
            labels = self.batch_teacher(images, labels)
        return images, labels

    def state_dict(self) -> dict[str, Any]:
        """Saved into every checkpoint: the normalisation a model saw, and where shuffling and augmentation are.

        Plain tensors, dicts and tuples only, so checkpoints still load with ``torch.load(weights_only=True)``.
        """
        return {"normalization": self.normalization, "mean": self.mean, "std": self.std,
                "shuffle_rng": self.shuffle_rng.get_state(), "augment_rng": self.augment_rng.bit_generator.state,
                "augment_py_rng": self.augment_py_rng.getstate(),
                "batch_augment_rng": self.batch_augment_rng.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._mean, self._std = state_dict["mean"], state_dict["std"]
        self.shuffle_rng.set_state(state_dict["shuffle_rng"])
        self.augment_rng.bit_generator.state = state_dict["augment_rng"]
        self.augment_py_rng.setstate(state_dict["augment_py_rng"])
        self.batch_augment_rng.set_state(state_dict["batch_augment_rng"])
