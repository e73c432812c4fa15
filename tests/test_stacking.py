"""Stacking on saved logits: learns across models, never fits on PrivateTest, refuses misaligned runs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import compose_config, labels_drawn_at, stack_cfg
from omegaconf import OmegaConf
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.neighbors import KNeighborsClassifier

from fer_lightning import precision
from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.data.teacher import TEACHER_FILE
from fer_lightning.ensemble.stack import comparison_figure, configured_learners, stack, teacher_runtime
from fer_lightning.ensemble.stack_inputs import StackingError, checked_run_dirs, expand_run_dirs
from fer_lightning.ensemble.stacking import MetaLearner, SoftVoteClassifier, Stacker, fit_by_cv, meta_features
from fer_lightning.errors import ConfigError
from fer_lightning.fer2013 import CLASS_NAMES, SPLITS
from fer_lightning.training.run_dir import RunDir

REPO = Path(__file__).resolve().parents[1]
SPLIT_NAMES = {"val": "PublicTest", "test": "PrivateTest"}
# The study's decision-tree grid is 270 settings, each fitted once per CV fold: seconds per stack. Its criterion
# and depth axes alone are enough for these tests, whose features separate the classes cleanly.
TREE_DEPTHS_ONLY = ["meta.grid.min_samples_split=[2]", "meta.grid.min_samples_leaf=[1]",
                    "meta.grid.max_features=[null]"]


def _confident(predicted: np.ndarray) -> np.ndarray:
    return np.eye(7, dtype=np.float32)[predicted] * 5.0


def complementary_runs(root: Path, n_val: int = 700, n_test: int = 490, seed: int = 0) -> list[Path]:
    """Two fake runs: A knows classes 0-3, B knows 4-6, each confidently wrong elsewhere in its own way.

    Neither is right more than 4/7 of the time and soft voting cannot break their ties, but the pair of
    predictions identifies every class, so a learned stacker can be right almost always.
    """
    rng = np.random.default_rng(seed)
    runs = {"a": {}, "b": {}}
    for split, n in (("val", n_val), ("test", n_test)):
        labels = rng.integers(0, 7, n)
        pred_a = np.where(labels < 4, labels, labels - 4)
        pred_b = np.where(labels >= 4, labels, 4 + (labels + 1) % 3)
        for name, predicted in (("a", pred_a), ("b", pred_b)):
            logits = _confident(predicted) + rng.normal(0, 0.3, (n, 7)).astype(np.float32)
            runs[name][split] = (logits, labels)
    paths = []
    for name, splits in runs.items():
        run_dir = root / f"run_{name}"
        run_dir.mkdir(parents=True)
        for split, (logits, labels) in splits.items():
            RunDir(run_dir).save_logits(SPLIT_NAMES[split], logits, labels)
        paths.append(run_dir)
    return paths


@pytest.mark.parametrize("features", ["proba", "class_ids"])
def test_stacker_learns_what_no_base_model_knows(tmp_path: Path, features: str) -> None:
    runs = complementary_runs(tmp_path)
    summary = stack(stack_cfg(runs, tmp_path / "stack", f"features={features}", *TREE_DEPTHS_ONLY))
    table = pd.read_csv(tmp_path / "stack" / "stack_table.csv").set_index("name")
    best_base = table.loc[table["kind"] == "base", "privatetest_acc"].max()
    assert best_base < 0.65
    assert table.loc["decision_tree", "privatetest_acc"] > best_base + 0.3
    assert table.loc["decision_tree", "privatetest_acc"] > table.loc["soft_vote", "privatetest_acc"] + 0.2
    assert table.loc["decision_tree", "features"] == features
    assert table.loc["soft_vote", "features"] == "proba"  # soft voting always averages probabilities
    assert summary["meta"] == "decision_tree" and summary["test/acc"] == table.loc["decision_tree", "privatetest_acc"]
    # Each accuracy within its interval; gains over run A, which is right more often on PublicTest (4 classes of 7).
    assert (table["privatetest_acc_low"] < table["privatetest_acc"]).all()
    assert (table["privatetest_acc"] <= table["privatetest_acc_high"]).all()  # the tree can be right on all
    assert summary["reference_run"] == str(runs[0])
    assert table.loc["run_a", ["gain", "gain_low", "gain_high"]].eq(0).all()
    tree = table.loc["decision_tree"]
    assert summary["test/gain"] == pytest.approx(tree["gain"]) and 0 < tree["gain_low"] < tree["gain"]
    assert summary["test/gain_ci95"] == pytest.approx([tree["gain_low"], tree["gain_high"]])
    assert summary["test/acc_ci95"] == pytest.approx([tree["privatetest_acc_low"], tree["privatetest_acc_high"]])
    for name in ("meta_model.joblib", "comparison.png", "confusion_matrix.png", "classification_report.txt",
                 "metrics.json", "stack.json"):
        assert (tmp_path / "stack" / name).is_file(), name
    assert list((tmp_path / "stack" / "tensorboard").glob("events.out.tfevents.*"))


def test_comparison_keeps_room_for_its_bars_beside_long_run_names(tmp_path: Path) -> None:
    """A run's name carries its overrides (sota_recipes.txt's are 150 characters): unwrapped, they left the bars no
    width and matplotlib's constrained layout gave up, warning, with the names cut off at the figure's edge."""
    long = "2026-12-06_00-19-15_6140 (experiment=sota_short seed=96 " + "data.batch_mix.cutmix_alpha=1.0 " * 4 + ")"
    table = pd.DataFrame({"name": [long, long.replace("96", "97"), "soft_vote"], "kind": ["base", "base", "stacker"],
                          "privatetest_acc": [0.70, 0.71, 0.72], "privatetest_acc_low": [0.68, 0.69, 0.70],
                          "privatetest_acc_high": [0.72, 0.73, 0.74]})
    figure = comparison_figure(table)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "constrained_layout not applied because axes sizes collapsed to zero"
        figure.savefig(tmp_path / "comparison.png")
    labels = [tick.get_text() for tick in figure.axes[0].get_yticklabels()]
    assert len(labels) == 3 and all(len(line) <= 45 for label in labels for line in label.splitlines())
    assert [" ".join(label.splitlines()) for label in labels] == [long, long.replace("96", "97"), "soft_vote"]


def test_unseen_faces_are_those_no_base_run_saw_in_training(tmp_path: Path) -> None:
    runs = complementary_runs(tmp_path)
    masks = []
    for n, run in enumerate(runs):
        saved = np.load(run / "logits_test.npz")
        unseen = np.ones(len(saved["labels"]), bool)
        unseen[n * 10:(n + 1) * 10] = False  # each run had its own ten PrivateTest faces' copies in Training
        RunDir(run).save_logits("PrivateTest", saved["logits"], saved["labels"], unseen)
        masks.append(unseen)
    summary = stack(stack_cfg(runs, tmp_path / "stack", *TREE_DEPTHS_ONLY))
    both = masks[0] & masks[1]
    assert summary["test_unseen_faces"] == both.sum() == len(both) - 20
    table = pd.read_csv(tmp_path / "stack" / "stack_table.csv").set_index("name")
    saved = np.load(runs[0] / "logits_test.npz")
    expected = np.mean(saved["logits"].argmax(1)[both] == saved["labels"][both])
    assert table.loc[table.index[0], "privatetest_acc_unseen"] == pytest.approx(expected)
    metrics = json.loads((tmp_path / "stack" / "metrics.json").read_text())
    assert metrics["PrivateTest_unseen"]["n"] == both.sum()


class RecordingClassifier(ClassifierMixin, BaseEstimator):
    """Remembers every (features, labels) pair it is fit on; predicts the majority class."""

    fits: ClassVar[list[tuple[np.ndarray, np.ndarray]]] = []

    def __init__(self, random_state: int | None = None) -> None:  # takes the decision tree's config
        self.random_state = random_state

    def fit(self, X: np.ndarray, y: np.ndarray) -> RecordingClassifier:
        RecordingClassifier.fits.append((X.copy(), y.copy()))
        self.classes_ = np.unique(y)
        self.majority_ = np.bincount(y).argmax()
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.tile(self.classes_ == self.majority_, (len(X), 1)).astype(float)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.full(len(X), self.majority_)


def test_the_stack_fits_the_temperature_its_confidences_need_on_publictest(tmp_path: Path) -> None:
    """Two runs whose labels were drawn at half their logits' temperature: each of them, and their vote, is not sure
    enough; at the temperature fitted on PublicTest, PrivateTest's confidences match how often they are right."""
    rng = np.random.default_rng(3)
    splits = {"PublicTest": labels_drawn_at(0.5, faces=3000, seed=1), "PrivateTest": labels_drawn_at(0.5, 3000, 2)}
    runs = []
    for name in ("a", "b"):
        runs.append(tmp_path / name)
        runs[-1].mkdir()
        for split, (logits, labels) in splits.items():
            RunDir(runs[-1]).save_logits(split, logits + rng.normal(0, 0.2, logits.shape), labels)
    summary = stack(stack_cfg(runs, tmp_path / "stack", "meta=soft_vote"))
    assert summary["temperature"] == pytest.approx(0.5, rel=0.15)
    assert summary["test/ece"] > 0.1 and summary["test/ece_calibrated"] < 0.03
    table = pd.read_csv(tmp_path / "stack" / "stack_table.csv").set_index("name")
    assert table.loc["soft_vote", ["temperature", "privatetest_ece", "privatetest_ece_calibrated"]].tolist() == \
        pytest.approx([summary["temperature"], summary["test/ece"], summary["test/ece_calibrated"]])
    bases = table[table["kind"] == "base"]
    assert len(bases) == 2 and bases["temperature"].between(0.4, 0.6).all()
    assert (bases["privatetest_ece"] > 0.1).all() and (bases["privatetest_ece_calibrated"] < 0.03).all()
    assert Stacker.load(tmp_path / "stack" / "meta_model.joblib").temperature == summary["temperature"]
    assert (tmp_path / "stack" / "reliability.png").is_file()


def test_the_out_of_fold_probabilities_come_from_fits_that_did_not_see_the_face(tmp_path: Path) -> None:
    """One nearest neighbour on noise: right on every face it was fit on, and at chance on the others. The
    temperature is fitted on the second kind."""
    rng = np.random.default_rng(5)
    labels, features = rng.integers(0, len(CLASS_NAMES), 700), rng.normal(size=(700, 14))
    fitted = fit_by_cv(MetaLearner("nearest", KNeighborsClassifier(n_neighbors=1)), features, labels, 5, seed=0)
    assert fitted.estimator.score(features, labels) == 1.0
    assert np.mean(fitted.out_of_fold_proba.argmax(1) == labels) < 0.25
    assert fitted.out_of_fold_proba.shape == (700, len(CLASS_NAMES))


def test_meta_learner_is_fit_on_publictest_rows_only(tmp_path: Path) -> None:
    runs = complementary_runs(tmp_path)
    RecordingClassifier.fits.clear()
    stack(stack_cfg(runs, tmp_path / "stack", "meta.estimator._target_=test_stacking.RecordingClassifier",
                    "meta.grid=null", "cv_folds=3"))
    logits = {split: [np.load(run / f"logits_{split}.npz")["logits"] for run in runs] for split in ("val", "test")}
    val_rows = {row.tobytes() for row in meta_features(logits["val"], "proba")}
    test_rows = {row.tobytes() for row in meta_features(logits["test"], "proba")}
    # One per fold, the refit on all of PublicTest, then one per fold again for out-of-fold probabilities.
    assert len(RecordingClassifier.fits) == 3 + 1 + 3
    for features, _ in RecordingClassifier.fits:
        rows = {row.tobytes() for row in features}
        assert rows <= val_rows and not rows & test_rows
    refit_features, refit_labels = RecordingClassifier.fits[3]
    assert len(refit_features) == 700
    np.testing.assert_array_equal(refit_labels, np.load(runs[0] / "logits_val.npz")["labels"])


def test_misaligned_labels_are_refused(tmp_path: Path) -> None:
    runs = complementary_runs(tmp_path)
    saved = np.load(runs[1] / "logits_test.npz")
    labels = saved["labels"].copy()
    labels[[3, 7]] = (labels[[3, 7]] + 1) % 7
    RunDir(runs[1]).save_logits("PrivateTest", saved["logits"], labels)
    expected = r"run_b: PrivateTest labels differ from .*run_a's at 2 rows \(first: row 3\)"
    with pytest.raises(StackingError, match=expected):
        stack(stack_cfg(runs, tmp_path / "stack"))


def test_runs_of_different_lengths_are_refused_on_the_command_line(tmp_path: Path) -> None:
    runs = complementary_runs(tmp_path)
    saved = np.load(runs[1] / "logits_val.npz")
    RunDir(runs[1]).save_logits("PublicTest", saved["logits"][:-5], saved["labels"][:-5])
    result = subprocess.run([sys.executable, "stack.py", f"runs=[{runs[0]},{runs[1]}]",
                             f"hydra.run.dir={tmp_path / 'stack'}"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 1
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and "run_b: 695 PublicTest rows, but" in last_line


def test_a_multirun_root_or_a_folder_of_runs_expands_to_its_finished_runs(tmp_path: Path) -> None:
    for number, run in enumerate(complementary_runs(tmp_path)):
        run.rename(tmp_path / str(number + 9))  # 9 and 10: numeric, not string, order
    (tmp_path / "multirun.yaml").write_text("")
    assert expand_run_dirs(str(tmp_path)) == [RunDir(tmp_path / "9"), RunDir(tmp_path / "10")]
    (tmp_path / "empty").mkdir()
    with pytest.raises(StackingError, match="neither a finished run"):
        expand_run_dirs([str(tmp_path / "empty")])
    runs = tmp_path / "best" / "runs"  # single runs of one recipe, named by their start
    for name, job in zip(["2026-12-07_10-00-00_2", "2026-12-07_09-00-00_1"], ["9", "10"], strict=True):
        shutil.copytree(tmp_path / job, runs / name)
    (runs / "2026-12-07_11-00-00_3").mkdir()  # a run killed before its test: left out
    assert expand_run_dirs(str(runs)) == [RunDir(runs / "2026-12-07_09-00-00_1"),
                                          RunDir(runs / "2026-12-07_10-00-00_2")]
    with pytest.raises(StackingError, match="no such run directory"):
        expand_run_dirs([str(tmp_path / "missing")])
    with pytest.raises(ConfigError, match=rf"runs names {tmp_path / '9'} twice"):
        expand_run_dirs([str(tmp_path), str(tmp_path / "9")])  # the root's job, and the job again


def test_fer_stack_takes_one_multirun_root_as_runs(tmp_path: Path) -> None:
    """``runs=<multirun root>`` is a string, not a list, on fer-stack's command line."""
    for number, run in enumerate(complementary_runs(tmp_path / "multirun")):
        run.rename(tmp_path / "multirun" / str(number))
    cfg = OmegaConf.create({"runs": str(tmp_path / "multirun"), "cv_folds": 5, "teacher": False, "seed": 90,
                            "keep_freed_memory": True})
    assert checked_run_dirs(cfg) == [RunDir(tmp_path / "multirun" / "0"), RunDir(tmp_path / "multirun" / "1")]
    with pytest.raises(ConfigError, match=r"runs must be a list of run dirs \(runs=.\[A,B\].\) or one alone, got None"):
        checked_run_dirs(OmegaConf.merge(cfg, {"runs": None}))


def test_meta_features_and_soft_vote() -> None:
    rng = np.random.default_rng(1)
    logits = [rng.normal(size=(5, 7)).astype(np.float32) for _ in range(3)]
    assert meta_features(logits, "proba").shape == (5, 21)
    assert meta_features(logits, "logits").shape == (5, 21)
    np.testing.assert_array_equal(meta_features(logits, "class_ids"), np.column_stack([x.argmax(1) for x in logits]))
    mean_proba = np.mean([softmax(x, axis=1) for x in logits], axis=0)
    vote = SoftVoteClassifier().fit(meta_features(logits, "proba"), np.arange(5))
    np.testing.assert_allclose(vote.predict_proba(meta_features(logits, "proba")), mean_proba, rtol=1e-6)
    with pytest.raises(StackingError, match="blocks of 7 probabilities"):
        SoftVoteClassifier().fit(meta_features(logits, "class_ids"), np.arange(5))
    with pytest.raises(StackingError, match="features must be one of"):
        meta_features(logits, "votes")


def test_saved_meta_model_predicts_new_faces_through_the_checkpoints(trained_runs: list[Path],
                                                                     tmp_path: Path) -> None:
    csv = trained_runs[0].parent / "fer_synthetic.csv"
    stack(stack_cfg(trained_runs, tmp_path / "stack", "meta=logistic_regression", "teacher=true", f"csv_path={csv}",
                    f"cache_dir={tmp_path / 'cache'}"))
    stacker = Stacker.load(tmp_path / "stack" / "meta_model.joblib")
    assert stacker.run_dirs == [str(run) for run in trained_runs]
    data = load_fer2013(csv)
    training = data.usage == SPLITS.index("Training")  # the teacher file: every Training face, keyed by CSV line
    with np.load(tmp_path / "stack" / TEACHER_FILE) as teacher:
        np.testing.assert_array_equal(teacher["lines"], data.lines[training])
        np.testing.assert_allclose(teacher["probabilities"], stacker.predict_images(data.images[training]), atol=1e-5)
        probabilities = teacher["probabilities"]
    summary = json.loads((tmp_path / "stack" / "stack.json").read_text())
    assert summary["teacher_train/acc"] == pytest.approx(np.mean(probabilities.argmax(1) == data.labels[training]))
    assert summary["teacher_train/confidence"] == pytest.approx(probabilities.max(1).mean())
    images, _ = data.split("PrivateTest")
    from_saved_logits = stacker.predict_proba([np.load(run / "logits_test.npz")["logits"] for run in trained_runs])
    np.testing.assert_allclose(stacker.predict_images(images), from_saved_logits, atol=1e-4)
    assert summary["meta"] == "logistic_regression"
    with pytest.raises(StackingError, match="expects logits of 2 runs"):
        stacker.predict_proba(from_saved_logits[None])


def test_the_teachers_runtime_is_fer_predicts_on_a_cpu_unless_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for bf16, runtime in ((True, "openvino"), (False, "onnxruntime")):
        monkeypatch.setattr(precision, "cpu_supports_bf16", lambda bf16=bf16: bf16)
        assert teacher_runtime("auto") == runtime and teacher_runtime("torch") == "torch"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert teacher_runtime("auto") == "torch"
    with pytest.raises(ConfigError, match="teacher_runtime must be auto or one of torch, "):
        teacher_runtime("tensorrt")


def test_cv_on_threads_chooses_and_scores_as_on_one(tmp_path: Path) -> None:
    """The decision tree's criterion and depth axes and the bagged trees (each fit seeded), on one thread and on
    three."""
    rng = np.random.default_rng(4)
    labels = rng.integers(0, len(CLASS_NAMES), 400)
    features = np.eye(len(CLASS_NAMES))[labels].repeat(2, axis=1) + rng.normal(0, 0.8, (400, 2 * len(CLASS_NAMES)))
    for meta in ("decision_tree", "bagged_trees"):
        narrowed = TREE_DEPTHS_ONLY if meta == "decision_tree" else []
        learner = configured_learners(stack_cfg([tmp_path, tmp_path], tmp_path, f"meta={meta}", *narrowed))[0]
        one, three = (fit_by_cv(learner, features, labels, folds=3, seed=0, threads=n) for n in (1, 3))
        assert (one.best_params, one.cv_accuracy) == (three.best_params, three.cv_accuracy)
        assert one.cv_accuracy > 0.3  # the features carry the labels: a fit that learned nothing would not pass


@pytest.mark.filterwarnings("ignore:The least populated class")  # a small PublicTest is the point here
def test_a_compared_learner_that_cannot_fit_a_small_publictest_is_left_out(tmp_path: Path, caplog) -> None:
    """42 PublicTest faces: gradient boosting's 10% hold-out inside each CV fold has fewer faces than classes."""
    caplog.set_level("WARNING", logger="fer_lightning")
    runs = complementary_runs(tmp_path, n_val=42, n_test=42)
    slow = [f"~meta@compare.{name}" for name in ("logistic_regression", "random_forest", "bagged_trees")]
    stack(compose_config("stack", [f"runs=[{runs[0]},{runs[1]}]", f"paths.output_dir={tmp_path / 'stack'}",
                                   *slow, *TREE_DEPTHS_ONLY]))
    table = pd.read_csv(tmp_path / "stack" / "stack_table.csv")
    assert "gradient_boosting" not in set(table["name"]) and {"decision_tree", "soft_vote"} <= set(table["name"])
    assert "Left out of the comparison: gradient_boosting cannot be fitted on these 42 PublicTest faces" in caplog.text
    with pytest.raises(StackingError, match=r"^meta=gradient_boosting cannot be fitted on these 42 PublicTest faces"):
        stack(stack_cfg(runs, tmp_path / "chosen", "meta=gradient_boosting"))
