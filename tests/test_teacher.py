"""Distillation targets: a teacher file keyed by CSV line becomes soft Training targets; other splits keep labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import teacher_file

from fer_lightning.data.datamodule import FerDataModule
from fer_lightning.data.teacher import teacher_targets, write_teacher
from fer_lightning.errors import FerError


def test_targets_follow_each_rows_line_and_mix_label_and_teacher(fer_csv: Path, tmp_path: Path) -> None:
    path, lines, probabilities = teacher_file(fer_csv, tmp_path / "teacher.npz")
    labels = np.arange(len(lines)) % 7
    np.testing.assert_allclose(teacher_targets(path, lines, labels, 1.0, 1.0), probabilities, atol=1e-6)
    np.testing.assert_array_equal(teacher_targets(path, lines, labels, 0.0, 1.0), np.eye(7)[labels])
    half = teacher_targets(path, lines, labels, 0.5, 1.0)
    np.testing.assert_allclose(half, 0.5 * np.eye(7)[labels] + 0.5 * probabilities, atol=1e-6)

    def entropy(p: np.ndarray) -> np.ndarray:
        return -(p * np.log(p)).sum(1)

    softened, sharpened = (teacher_targets(path, lines, labels, 1.0, t) for t in (3.0, 0.5))
    assert (entropy(softened) > entropy(probabilities)).all() and (entropy(sharpened) < entropy(probabilities)).all()


def test_a_teacher_file_that_misses_a_training_row_is_one_clear_error(fer_csv: Path, tmp_path: Path) -> None:
    _, lines, probabilities = teacher_file(fer_csv, tmp_path / "teacher.npz")
    write_teacher(tmp_path / "short.npz", lines[1:], probabilities[1:])
    with pytest.raises(FerError, match=rf"short\.npz: no teacher probabilities for the Training row on CSV line "
                                       rf"{lines[0]} \(1 of {len(lines)} rows missing"):
        teacher_targets(tmp_path / "short.npz", lines, np.zeros(len(lines), int), 0.5, 1.0)
    np.savez(tmp_path / "other.npz", logits=probabilities)
    with pytest.raises(FerError, match=r"other\.npz: not a teacher file"):
        teacher_targets(tmp_path / "other.npz", lines, np.zeros(len(lines), int), 0.5, 1.0)
    with pytest.raises(FerError, match="teacher_weight must be in"):
        teacher_targets(tmp_path / "other.npz", lines, np.zeros(len(lines), int), 1.5, 1.0)


@pytest.mark.parametrize("loader", ["dataloader", "resident"])
def test_training_batches_carry_the_targets_and_evaluation_batches_the_labels(fer_csv: Path, tmp_path: Path,
                                                                                loader: str) -> None:
    path, _, probabilities = teacher_file(fer_csv, tmp_path / "teacher.npz")
    dm = FerDataModule(str(fer_csv), teacher=str(path), teacher_weight=1.0, loader=loader, batch_size=16)
    dm.setup()
    images, targets = next(iter(dm.train_dataloader()))
    assert targets.shape == (16, 7) and targets.dtype == torch.float32
    by_face = {face.tobytes(): row for row, face in enumerate(dm.data.split("Training")[0])}
    rows = [by_face[face.numpy().astype(np.uint8).tobytes()] for face in images[:, 0]]
    np.testing.assert_allclose(targets.numpy(), probabilities[rows], atol=1e-6)  # each face kept its own target
    _, labels = next(iter(dm.val_dataloader()))
    assert labels.dim() == 1 and labels.dtype == torch.int64
