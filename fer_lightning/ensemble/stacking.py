"""Stacked ensembles on saved logits: meta-features, a soft-voting baseline, CV-tuned meta-learners.

The meta-learner never sees PrivateTest: its hyperparameters are chosen by stratified k-fold CV on PublicTest
(each run's ``logits_val.npz``), it is refit on all of PublicTest, and PrivateTest (``logits_test.npz``) only
scores it. The Keras study fit and tuned its decision tree on the test labels it then reported.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import joblib
import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict

from fer_lightning.ensemble.stack_inputs import StackingError
from fer_lightning.fer2013 import CLASS_NAMES, NUM_CLASSES
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.training.run_dir import RunDir, RunDirError

log = logging.getLogger(__name__)
FeatureKind = Literal["proba", "logits", "class_ids"]
FEATURE_KINDS = ("proba", "logits", "class_ids")


@dataclass(frozen=True)
class BaseRun:
    """One train.py run as the stacker sees it: PublicTest and PrivateTest logits with their labels."""

    run_dir: RunDir
    val_logits: np.ndarray
    val_labels: np.ndarray
    test_logits: np.ndarray
    test_labels: np.ndarray

    @property
    def name(self) -> str:
        """The run's command-line overrides (model=leaky seed=1), else its directory name."""
        plumbing = ("callbacks.", "hydra.", "paths.")
        chosen = [o for o in self.run_dir.overrides() if not o.startswith(plumbing)]
        return f"{self.run_dir.path.name} ({' '.join(chosen)})" if chosen else self.run_dir.path.name

    @classmethod
    def load(cls, run_dir: RunDir) -> BaseRun:
        try:
            return cls(run_dir, *run_dir.logits("PublicTest"), *run_dir.logits("PrivateTest"))
        except RunDirError as err:
            raise StackingError(str(err)) from None


def check_aligned(runs: Sequence[BaseRun]) -> None:
    """Every run must hold the same rows in the same order, or stacking would pair different faces."""
    first = runs[0]
    for run in runs[1:]:
        for split, mine, theirs in (("PublicTest", run.val_labels, first.val_labels),
                                    ("PrivateTest", run.test_labels, first.test_labels)):
            if len(mine) != len(theirs):
                raise StackingError(f"{run.run_dir.path}: {len(mine)} {split} rows, but {first.run_dir.path} has "
                                    f"{len(theirs)}; every run must use the same CSV and bad_rows policy")
            differ = np.flatnonzero(mine != theirs)
            if differ.size:
                raise StackingError(f"{run.run_dir.path}: {split} labels differ from {first.run_dir.path}'s at "
                                    f"{differ.size} rows (first: row {differ[0]}); the rows are not aligned")


def meta_features(logits: Sequence[np.ndarray], kind: FeatureKind) -> np.ndarray:
    """Per-model blocks side by side: 7 probabilities, 7 logits, or 1 predicted class id per model."""
    if kind == "proba":
        return np.hstack([softmax(lg, axis=1) for lg in logits])
    if kind == "logits":
        return np.hstack(logits)
    if kind == "class_ids":
        return np.column_stack([lg.argmax(axis=1) for lg in logits])
    raise StackingError(f"features must be one of {FEATURE_KINDS}, got {kind!r}")


class SoftVoteClassifier(ClassifierMixin, BaseEstimator):
    """Plain probability averaging over the per-model blocks of ``proba`` features; fit learns nothing.

    The baseline every learned stacker must beat. Written as an estimator so it runs through the same CV,
    report and saved-model path as the others.
    """

    def __init__(self, n_classes: int = NUM_CLASSES) -> None:
        self.n_classes = n_classes

    def fit(self, X: np.ndarray, y: np.ndarray) -> SoftVoteClassifier:
        if X.shape[1] % self.n_classes:
            raise StackingError(f"soft voting needs blocks of {self.n_classes} probabilities per model, "
                                f"got {X.shape[1]} columns (use features=proba)")
        self.classes_ = np.arange(self.n_classes)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return X.reshape(len(X), -1, self.n_classes).mean(axis=1)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1)


@dataclass
class MetaLearner:
    """A meta-learner as configured: an unfitted estimator, its CV grid and the features it reads."""

    name: str
    estimator: BaseEstimator
    features: FeatureKind = "proba"
    grid: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class CVResult:
    estimator: BaseEstimator
    cv_accuracy: float
    best_params: dict[str, Any]
    out_of_fold_proba: np.ndarray  # (N, 7): each PublicTest face's, from the chosen settings fit on the other folds


def fit_by_cv(learner: MetaLearner, features: np.ndarray, labels: np.ndarray, folds: int, seed: int,
              threads: int = 1) -> CVResult:
    """Grid search by stratified k-fold CV, then refit on all the rows given (PublicTest, never PrivateTest).

    The chosen settings are also fit once more per fold, for each row's probabilities from a fit that did not see it:
    the refit's own probabilities on the rows it learned are surer than it will be on new faces, and the stack's
    temperature is fitted on these instead.

    The grid's fits run on ``threads`` threads: scikit-learn's trees let go of the GIL while they grow, and threads
    start no processes. The same scores and choices on any number (each fit has its own seed); on two threads the
    study's decision-tree grid took 13 s instead of 24 on the 2-core Zen 4 EPYC (docs/results.md), and gradient
    boosting, which holds the GIL between its small steps, 4 s instead of 2.
    """
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    search = GridSearchCV(learner.estimator, [learner.grid or {}], cv=cv, scoring="accuracy", refit=True,
                          error_score="raise", n_jobs=threads)
    with joblib.parallel_backend("threading"):
        search.fit(features, labels)
        present = cross_val_predict(clone(search.best_estimator_), features, labels, cv=cv, n_jobs=threads,
                                    method="predict_proba")
    out_of_fold = np.zeros((len(labels), NUM_CLASSES))
    out_of_fold[:, np.unique(labels)] = present  # its columns are the classes PublicTest holds
    return CVResult(search.best_estimator_, float(search.best_score_), dict(search.best_params_), out_of_fold)


@dataclass
class Stacker:
    """A fitted meta-model plus what it expects: the base runs (in feature order) and their checkpoints."""

    name: str
    features: FeatureKind
    estimator: BaseEstimator
    run_dirs: list[str]
    checkpoints: list[Path | None]
    tta: list[str]  # each base run's TTA, so new faces get what the saved logits got
    temperature: float = 1.0  # fer-predict's confidences: fitted on the out-of-fold PublicTest probabilities
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))

    def predict_proba(self, logits: Sequence[np.ndarray]) -> np.ndarray:
        """Base-model logits, one (N, 7) array per run in ``run_dirs`` order -> (N, 7) class probabilities."""
        if len(logits) != len(self.run_dirs):
            raise StackingError(f"meta-model {self.name} expects logits of {len(self.run_dirs)} runs "
                                f"({', '.join(self.run_dirs)}), got {len(logits)}")
        proba = self.estimator.predict_proba(meta_features(logits, self.features))
        full = np.zeros((len(proba), NUM_CLASSES))
        full[:, self.estimator.classes_] = proba  # a class absent when fitting keeps probability 0
        return full

    def base_classifiers(self, bf16: bool = False, runtime: str = "torch") -> list[FaceClassifier]:
        """Every base run's best checkpoint, loaded once, in feature order."""
        missing = [run for run, path in zip(self.run_dirs, self.checkpoints, strict=True) if path is None]
        if missing:
            raise StackingError(f"no best checkpoint recorded for run(s) {', '.join(missing)}; "
                                "stacked predictions on new faces need every base model's weights")
        return [FaceClassifier.from_checkpoint(cast(Path, path), bf16, tta, runtime)
                for path, tta in zip(self.checkpoints, self.tta, strict=True)]

    def predict_images(self, images: np.ndarray, bases: Sequence[FaceClassifier] | None = None) -> np.ndarray:
        """(N, 48, 48) uint8 faces -> (N, 7) stacked probabilities, through every base checkpoint.

        Pass ``base_classifiers()`` as ``bases`` when predicting many batches, so checkpoints load once.
        """
        bases = bases if bases is not None else self.base_classifiers()
        return self.predict_proba([base.logits(images) for base in bases])

    def save(self, path: Path) -> None:
        joblib.dump(self, path)

    @staticmethod
    def load(path: str | Path) -> Stacker:
        path = Path(path)
        if not path.is_file():
            raise StackingError(f"{path}: no such meta-model file")
        try:
            stacker = joblib.load(path)
        except (ModuleNotFoundError, AttributeError) as err:  # pickled by a fer-lightning with other module paths
            raise StackingError(f"{path}: written by another version of fer-lightning ({err}); run stack.py "
                                "again on the same runs") from None
        if not isinstance(stacker, Stacker):
            raise StackingError(f"{path}: holds a {type(stacker).__name__}, not a meta-model written by stack.py")
        return stacker
