"""A teacher's predictions for every Training face, saved once, so that a student trains without the teachers.

``fer-stack teacher=true`` writes ``teacher_train.npz`` in its run dir: the chosen stacker's probabilities (its
base models' TTA included) for each Training row, keyed by the row's CSV line. ``data.teacher=<that file>``
then trains any net on soft targets: ``(1 - teacher_weight) * one-hot label + teacher_weight * teacher``, the
teacher's distribution first softened (``teacher_temperature`` > 1) or sharpened (< 1) as ``softmax(log p / T)``.
The file holds Training rows only: PublicTest and PrivateTest keep their hard labels, and no teacher output on
them ever reaches a student. (``teacher_nets.py`` runs the teachers on each augmented batch instead.)
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch

from fer_lightning.data.mixing import as_probabilities
from fer_lightning.errors import FerError, check_number
from fer_lightning.fer2013 import NUM_CLASSES

TEACHER_FILE = "teacher_train.npz"


def write_teacher(path: Path, lines: np.ndarray, probabilities: np.ndarray) -> Path:
    """Save (N, 7) probabilities for the Training rows on CSV ``lines``."""
    if probabilities.shape != (len(lines), NUM_CLASSES):
        raise ValueError(f"expected ({len(lines)}, {NUM_CLASSES}) probabilities, got {probabilities.shape}")
    np.savez_compressed(path, lines=lines.astype(np.int64), probabilities=probabilities.astype(np.float32))
    return path


def check_blend(weight: float, temperature: float) -> None:
    """ConfigError unless the teacher's share of each target and its softening temperature can work."""
    check_number("data.teacher_weight", weight, least=0, most=1, why="the teacher's share of each target")
    check_number("data.teacher_temperature", temperature, above=0)


def blended_targets(teacher: torch.Tensor, labels: torch.Tensor, weight: float, temperature: float) -> torch.Tensor:
    """``(1 - weight) * label + weight * softmax(log teacher / temperature)``: (N, 7) teacher probabilities and
    class indices or (N, 7) label distributions -> (N, 7) targets in the teacher's dtype."""
    softened = (teacher.clamp(1e-12, 1).log() / temperature).softmax(1)
    return (1 - weight) * as_probabilities(labels).to(teacher.dtype) + weight * softened


def teacher_targets(path: str | Path, lines: np.ndarray, labels: np.ndarray, weight: float,
                    temperature: float) -> np.ndarray:
    """(N, 7) float32 training targets for the Training rows on ``lines`` with hard ``labels``."""
    path = Path(path)
    check_blend(weight, temperature)
    if not path.is_file():
        raise FerError(f"{path}: no such teacher file (fer-stack teacher=true writes {TEACHER_FILE})")
    try:
        with np.load(path) as saved:
            if set(saved.files) != {"lines", "probabilities"}:
                raise FerError(f"{path}: not a teacher file (expected arrays lines and probabilities, found "
                               f"{', '.join(saved.files)})")
            saved_lines, probabilities = saved["lines"], saved["probabilities"]
    except (OSError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as err:  # not an .npz, or a damaged one
        raise FerError(f"{path}: not a teacher file, or a damaged one ({type(err).__name__}: {err}); "
                       f"fer-stack teacher=true writes {TEACHER_FILE}") from err
    row_of_line = {int(line): row for row, line in enumerate(saved_lines)}
    missing = [int(line) for line in lines if int(line) not in row_of_line]
    if missing:
        raise FerError(f"{path}: no teacher probabilities for the Training row on CSV line {missing[0]} "
                       f"({len(missing)} of {len(lines)} rows missing; write the file from the same CSV)")
    teacher = torch.from_numpy(probabilities[[row_of_line[int(line)] for line in lines]]).double()
    return blended_targets(teacher, torch.from_numpy(labels).long(), weight, temperature).float().numpy()
