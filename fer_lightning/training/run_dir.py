"""A training run's folder, and the one place that knows its layout.

train() writes it; resuming, multirun summaries, stacking and fer-predict read it, all through ``RunDir``:
its checkpoints, its summary, the test-time augmentation it chose, its saved logits and its overrides.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import OmegaConf

from fer_lightning.errors import FerError
from fer_lightning.fer2013 import CLASS_NAMES, NUM_CLASSES
from fer_lightning.models.checkpoints import read_checkpoint

LOGIT_FILES = {"PublicTest": "logits_val.npz", "PrivateTest": "logits_test.npz"}
# summary.json names metrics as they are logged; the other fields keep their own names.
METRIC_KEYS = {"val_acc_best": "val/acc_best", "val_acc": "val/acc", "test_acc": "test/acc",
               "test_f1_macro": "test/f1_macro", "test_loss": "test/loss",
               "test_acc_single_pass": "test/acc_single_pass", "test_acc_unseen": "test/acc_unseen",
               "test_f1_macro_unseen": "test/f1_macro_unseen", "test_acc_ci95": "test/acc_ci95",
               "test_ece": "test/ece", "test_ece_calibrated": "test/ece_calibrated"}


class RunDirError(FerError, ValueError):
    """A run dir that lacks what was asked of it, or holds files that do not fit together."""


@dataclass
class RunSummary:
    """summary.json: what a finished train() measured. The PrivateTest fields stay None when ``test=false``.

    ``val_acc`` is PublicTest accuracy with the chosen ``tta``; ``tta_val_acc`` holds every candidate's.
    The ``_unseen`` figures count only the ``test_unseen_faces`` PrivateTest faces without a copy in Training.
    ``temperature`` is fitted on PublicTest (``inference.calibration``); ``test_ece`` is PrivateTest's expected
    calibration error as trained, ``test_ece_calibrated`` with that temperature, as fer-predict reports confidences.
    """

    val_acc_best: float
    epochs: int
    fit_seconds: float
    precision: str
    device: str | None = None  # runs finished before 2026-11-25 (their summaries are stacked in docs/) lack it
    forward_mflops_per_face: float | None = None  # the net's cost beside its accuracy; runs before 2026-12-06 lack it
    tta: str = "none"
    tta_val_acc: dict[str, float] = field(default_factory=dict)
    val_acc: float | None = None
    test_acc: float | None = None
    test_acc_ci95: list[float] | None = None  # its 95% interval (training.reports.accuracy_interval)
    test_f1_macro: float | None = None
    test_loss: float | None = None
    test_acc_single_pass: float | None = None
    test_acc_unseen: float | None = None
    test_f1_macro_unseen: float | None = None
    test_unseen_faces: int | None = None
    temperature: float | None = None
    test_ece: float | None = None
    test_ece_calibrated: float | None = None
    best_checkpoint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {METRIC_KEYS.get(name, name): value for name, value in asdict(self).items() if value is not None}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> RunSummary:
        keys = {METRIC_KEYS.get(f.name, f.name): f.name for f in fields(cls)}
        return cls(**{keys[key]: value for key, value in values.items() if key in keys})

    def metrics(self) -> dict[str, float]:
        """The float figures under their logged names, e.g. for TensorBoard's HParams tab; PrivateTest accuracy's
        interval as ``test/acc_low`` and ``test/acc_high``."""
        figures = {key: value for key, value in self.to_json().items() if isinstance(value, float)}
        if self.test_acc_ci95 is not None:
            figures["test/acc_low"], figures["test/acc_high"] = self.test_acc_ci95
        return figures


@dataclass(frozen=True)
class RunDir:
    """``outputs/<task>/runs/<date_time>/`` (or a multirun's numbered job dir) as train() lays it out."""

    path: Path

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.ckpt"

    @property
    def summary_path(self) -> Path:
        return self.path / "summary.json"

    @classmethod
    def of_checkpoint(cls, ckpt: str | Path) -> RunDir | None:
        """The run a checkpoint belongs to, or None for a checkpoint kept outside a run's ``checkpoints/``."""
        folder = Path(ckpt).parent
        return cls(folder.parent) if folder.name == "checkpoints" else None

    @classmethod
    def checkpoint_named(cls, path: str | Path) -> Path:
        """The checkpoint file that ``ckpt=`` names: ``path`` itself, or in a run dir the checkpoint its test used
        (the one its TTA and temperature were chosen for), else its last.ckpt, for a run stopped before its test."""
        path = Path(path)
        if not path.is_dir():
            return path
        run_dir = cls(path)
        found = [ckpt for ckpt in (run_dir.best_checkpoint(), run_dir.last_checkpoint) if ckpt and ckpt.is_file()]
        if not found:
            raise RunDirError(f"{path}: a folder without checkpoints/last.ckpt; expected a checkpoint file or the run "
                              "dir train.py wrote it in")
        return found[0]

    @classmethod
    def jobs(cls, sweep_dir: Path) -> list[RunDir]:
        """A multirun's job dirs (Hydra numbers them 0, 1, ...), in job order; [] where there is no such dir."""
        numbered = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()] if sweep_dir.is_dir() else []
        return [cls(p) for p in sorted(numbered, key=lambda p: int(p.name))]

    def check_writable(self, min_free_mb: float) -> None:
        """Fail now, not hours later at the first checkpoint, when the dir is unwritable or the disk is full."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.path):
                pass
        except OSError as err:
            raise FerError(f"{self.path}: cannot write the run's outputs there ({err.strerror or err}); "
                           "point paths.log_dir (or hydra.run.dir) at a writable folder") from None
        free_mb = shutil.disk_usage(self.path).free / 2**20
        if free_mb < min_free_mb:
            raise FerError(f"{self.path}: only {free_mb:.0f} MB free on its disk, below "
                           f"min_free_disk_mb={min_free_mb:g}; free some space or point paths.log_dir elsewhere")

    def checkpoint_to_resume(self, ckpt_path: str | None) -> str | None:
        """The checkpoint to continue from, checked readable before training: a path, or 'last' of this run."""
        if not ckpt_path:
            return None
        path = self.last_checkpoint if ckpt_path == "last" else Path(ckpt_path)
        if ckpt_path == "last" and not path.is_file():
            raise FerError(f"ckpt_path=last: {path} does not exist. To continue an earlier run, name its run dir: "
                           "python train.py resume=outputs/train/runs/<date>")
        read_checkpoint(path)  # a truncated or foreign file fails here with its name, not deep inside Lightning
        return str(path)

    @property
    def overrides_path(self) -> Path:
        return self.path / ".hydra" / "overrides.yaml"

    def overrides(self) -> list[str]:
        """The command-line overrides the run started with; [] for a run Hydra did not start (train() called
        directly, as tuning trials and tests do)."""
        return [str(o) for o in OmegaConf.load(self.overrides_path)] if self.overrides_path.is_file() else []

    def summary(self) -> RunSummary | None:
        """What the run measured, or None while it has not finished."""
        return RunSummary.from_json(json.loads(self.summary_path.read_text())) if self.summary_path.is_file() else None

    def write_summary(self, summary: RunSummary) -> None:
        self.summary_path.write_text(json.dumps(summary.to_json(), indent=2))

    def tta(self) -> str:
        """The test-time augmentation the run chose on PublicTest; 'none' for a run that has not finished."""
        summary = self.summary()
        return summary.tta if summary else "none"

    def best_checkpoint(self) -> Path | None:
        """The checkpoint the run tested (found here even after the run dir moved), or None before the test."""
        summary = self.summary()
        return self.checkpoints / Path(summary.best_checkpoint).name if summary and summary.best_checkpoint else None

    def has_logits(self) -> bool:
        return all((self.path / name).is_file() for name in LOGIT_FILES.values())

    def save_logits(self, split: str, logits: np.ndarray, labels: np.ndarray,
                    unseen: np.ndarray | None = None) -> None:
        """``unseen``: which faces have no copy in the Training rows the run trained on."""
        extra = {} if unseen is None else {"unseen": unseen.astype(bool)}
        np.savez(self.path / LOGIT_FILES[split], logits=logits.astype(np.float32), labels=labels.astype(np.int64),
                 class_names=np.array(CLASS_NAMES), **extra)  # type: ignore[arg-type]  # numpy's stubs: **extra as allow_pickle

    def unseen(self, split: str = "PrivateTest") -> np.ndarray | None:
        """The faces of a split without a copy in the run's Training rows, as saved with its logits."""
        with np.load(self.path / LOGIT_FILES[split]) as saved:
            return saved["unseen"] if "unseen" in saved.files else None

    def logits(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The (N, 7) logits, with the run's chosen TTA, and the labels of a split the run saved."""
        path = self.path / LOGIT_FILES[split]
        if not path.is_file():
            raise RunDirError(f"{path}: missing; a run saves its logits when it finishes with test=true")
        with np.load(path) as saved:
            logits, labels = saved["logits"], saved["labels"]
        if logits.ndim != 2 or logits.shape != (len(labels), NUM_CLASSES):
            raise RunDirError(f"{path}: logits of shape {logits.shape} for {len(labels)} labels, "
                              f"expected ({len(labels)}, {NUM_CLASSES})")
        return logits, labels
