"""Confidences: the temperature fitted on PublicTest, the calibration error, and fer-predict using the run's or the
stack's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import best_checkpoint, compose_config, labels_drawn_at, stack_cfg
from scipy.special import softmax

from fer_lightning.ensemble.stack import stack
from fer_lightning.ensemble.stacking import Stacker
from fer_lightning.fer2013 import NUM_CLASSES
from fer_lightning.inference.calibration import (
    TEMPERATURE_RANGE,
    errors_before_and_after,
    expected_calibration_error,
    fit_temperature,
    log_probabilities,
    probability_temperature,
)
from fer_lightning.inference.onnx_file import export_onnx
from fer_lightning.predict.loading import StackedFaceClassifier, load_model
from fer_lightning.training.reports import reliability_figure
from fer_lightning.training.run_dir import RunDir


@pytest.mark.parametrize("temperature", [0.5, 1.0, 2.0])
def test_the_fitted_temperature_is_the_one_the_labels_were_drawn_at(temperature: float) -> None:
    logits, labels = labels_drawn_at(temperature)
    fitted = fit_temperature(logits, labels)
    assert fitted == pytest.approx(temperature, rel=0.05)
    assert expected_calibration_error(softmax(logits / fitted, axis=1), labels) < 0.015
    if temperature != 1.0:  # the net's own probabilities were too sure (0.5) or not sure enough (2.0)
        assert expected_calibration_error(softmax(logits, axis=1), labels) > 0.1


def test_the_reliability_figure_names_both_curves_with_their_calibration_errors() -> None:
    logits, labels = labels_drawn_at(2.0)
    figure = reliability_figure(logits, labels, 2.0, unscaled="soft_vote's own")
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    errors = (expected_calibration_error(softmax(logits / scale, axis=1), labels) for scale in (1.0, 2.0))
    assert legend[1:] == [f"{name}: calibration error {error:.1%}"
                          for name, error in zip(("soft_vote's own", "temperature 2.00"), errors, strict=True)]


def test_faces_all_right_by_a_margin_stop_at_the_sharpest_temperature() -> None:
    labels = np.arange(70) % NUM_CLASSES
    assert fit_temperature(5 * np.eye(NUM_CLASSES)[labels], labels) == TEMPERATURE_RANGE[0]
    assert fit_temperature(5 * np.eye(NUM_CLASSES)[(labels + 1) % NUM_CLASSES], labels) == TEMPERATURE_RANGE[1]


def test_a_meta_learners_temperature_is_kept_only_where_it_brings_confidence_nearer_accuracy() -> None:
    """Probabilities from labels drawn at half their temperature take the fitted one. A tree's leaves do not: half
    the faces in pure leaves, right 85% of the time, half in leaves of 50/30/20% whose labels are drawn from them.
    The fit that spares the pure leaves' 0s flattens the others' answers further from their accuracy."""
    logits, labels = labels_drawn_at(0.5, faces=5000)
    assert probability_temperature(softmax(logits, axis=1), labels) == pytest.approx(0.5, rel=0.1)
    rng = np.random.default_rng(0)
    leaf_class, pure = rng.integers(0, NUM_CLASSES, 6000), np.arange(6000) < 3000
    offset = np.where(pure, np.where(rng.random(6000) < 0.85, 0, 1), rng.choice(3, 6000, p=[0.5, 0.3, 0.2]))
    labels = (leaf_class + offset) % NUM_CLASSES
    leaves = np.zeros((6000, NUM_CLASSES))
    for step, share in enumerate([0.5, 0.3, 0.2]):
        leaves[~pure, (leaf_class[~pure] + step) % NUM_CLASSES] = share
    leaves[pure, leaf_class[pure]] = 1.0
    fitted = fit_temperature(log_probabilities(leaves), labels)
    before, after = errors_before_and_after(log_probabilities(leaves), labels, fitted)
    assert fitted > 2 and after > before
    assert probability_temperature(leaves, labels) == 1.0


def test_calibration_error_by_hand() -> None:
    """Two faces said 90% sure, one right (a gap of 40 points); two said 40% sure, both wrong (40): 0.4 on average.
    Four said 90% sure and right 90% of the time would have none; here 10 faces at 0.9 with 9 right."""
    sure, unsure = [0.9] + [0.1 / 6] * 6, [0.4, 0.3] + [0.3 / 5] * 5
    proba = np.array([sure, sure, unsure, unsure])
    assert expected_calibration_error(proba, np.array([0, 1, 1, 1])) == pytest.approx(0.4)
    assert expected_calibration_error(np.array([sure] * 10), np.array([0] * 9 + [1])) == pytest.approx(0.0)


def test_fer_predict_uses_the_temperature_of_the_model_files_run(trained_runs: list[Path], tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    ckpt = run / "checkpoints" / "best.ckpt"
    shutil.copy(best_checkpoint(trained_runs[0]), ckpt)
    rng = np.random.default_rng(1)
    logits, labels = labels_drawn_at(0.6, faces=500)
    for split in ("PublicTest", "PrivateTest"):
        RunDir(run).save_logits(split, logits, labels)

    def temperature(model: str, *overrides: str) -> float:
        cfg = compose_config("predict", [model, "inputs=unused", "precision=32-true", *overrides])
        return load_model(cfg)[0].temperature

    saved = fit_temperature(*RunDir(run).logits("PublicTest"))  # the logits as saved, in float32
    assert temperature(f"ckpt={ckpt}") == saved == pytest.approx(0.6, rel=0.15)
    assert temperature(f"ckpt={ckpt}", "temperature=1") == 1.0
    faces = rng.integers(0, 256, (3, 48, 48), dtype=np.uint8)
    cfg = compose_config("predict", [f"ckpt={ckpt}", "inputs=unused", "precision=32-true", "runtime=torch"])
    classifier = load_model(cfg)[0]
    np.testing.assert_allclose(classifier.predict_proba(faces),
                               softmax(classifier.logits(faces) / classifier.temperature, axis=1), rtol=1e-6)
    onnx = export_onnx(classifier, run / "checkpoints" / "best.onnx")  # where fer-export writes it: the same run
    assert temperature(f"onnx={onnx}") == saved and temperature(f"onnx={onnx}", "temperature=2") == 2.0
    outside = tmp_path / "best.ckpt"  # a checkpoint kept outside a run dir: the net's own probabilities
    shutil.copy(ckpt, outside)
    assert temperature(f"ckpt={outside}") == 1.0


def test_fer_predict_gives_a_stacks_probabilities_at_the_temperature_stack_py_fitted(trained_runs: list[Path],
                                                                                    tmp_path: Path) -> None:
    stack(stack_cfg(trained_runs, tmp_path / "stack", "meta=soft_vote"))
    stacker = Stacker.load(tmp_path / "stack" / "meta_model.joblib")
    stacker.temperature = 0.5  # as fitted where the vote is not sure enough (two tiny runs may need none)
    stacker.save(tmp_path / "stack" / "meta_model.joblib")

    def stacked(*overrides: str) -> StackedFaceClassifier:
        cfg = compose_config("predict", [f"stack={tmp_path / 'stack'}", "inputs=unused", "precision=32-true",
                                         "runtime=torch", *overrides])
        return load_model(cfg)[0]

    fitted, own = stacked(), stacked("temperature=1")
    assert fitted.temperature == 0.5 and own.temperature == 1.0
    faces = np.random.default_rng(2).integers(0, 256, (4, 48, 48), dtype=np.uint8)
    voted = stacker.predict_images(faces)
    np.testing.assert_allclose(own.predict_proba(faces), voted, rtol=1e-4)
    np.testing.assert_allclose(fitted.predict_proba(faces), softmax(np.log(voted) / stacker.temperature, axis=1),
                               rtol=1e-4)


def test_the_script_reports_finished_runs_with_their_bins(tmp_path: Path) -> None:
    """docs/scripts/calibration.py on a run whose logits are twice too sure: the temperature it fits, both errors,
    and with --bins each bin of the run's own confidences; a folder without logits is one error line."""
    logits, labels = labels_drawn_at(0.5)
    run = tmp_path / "run"
    run.mkdir()
    for split in ("PublicTest", "PrivateTest"):
        RunDir(run).save_logits(split, logits, labels)
    script = [sys.executable, str(Path(__file__).resolve().parents[1] / "docs" / "scripts" / "calibration.py")]
    result = subprocess.run([*script, "--bins", str(run)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    fitted = fit_temperature(*RunDir(run).logits("PublicTest"))
    saved, saved_labels = RunDir(run).logits("PrivateTest")
    raw, scaled = (expected_calibration_error(softmax(saved / t, axis=1), saved_labels) for t in (1.0, fitted))
    assert f"{run} | {fitted:.3f} | " in result.stdout and f"| {raw:.1%} -> {scaled:.1%}" in result.stdout
    bins = [line for line in result.stdout.splitlines() if line.startswith("    ")]
    assert bins and sum(int(line.split()[0]) for line in bins) == len(labels)
    missing = subprocess.run([*script, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and missing.stderr.startswith(f"error: {tmp_path / 'logits_val.npz'}: missing")
