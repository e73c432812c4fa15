"""How far an accuracy can be trusted: its own interval, and the paired interval of a gap between two models;
the figure of a run's most confident mistakes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fer_lightning.fer2013 import CLASS_NAMES
from fer_lightning.training.reports import accuracy_interval, mistakes_figure, paired_gain
from fer_lightning.training.run_dir import RunDir

REPO = Path(__file__).resolve().parents[1]


def _answers(right: int, n: int) -> np.ndarray:
    return np.arange(n) < right


def test_accuracy_interval_is_wilsons() -> None:
    n, p, z = 3589, 2500 / 3589, 1.959963984540054  # PrivateTest's size, about 70% right
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    low, high = accuracy_interval(_answers(2500, n))
    assert (low, high) == pytest.approx((centre - half, centre + half), abs=1e-9)
    assert high - low == pytest.approx(0.030, abs=0.001)  # the ±1.5 points the docs quote


def test_accuracy_interval_stays_within_zero_and_one() -> None:
    low, high = accuracy_interval(_answers(100, 100))
    assert high == pytest.approx(1.0) and 0.95 < low < 1.0  # a perfect score is not a certain one


def test_paired_gain_counts_only_the_faces_the_two_models_disagree_on() -> None:
    reference = _answers(700, 1000)
    better = reference.copy()
    better[700:760] = True  # fixes 60 of the reference's mistakes
    better[:20] = False  # and breaks 20 of its right answers
    gain, low, high = paired_gain(better, reference)
    differences = better.astype(float) - reference
    half = 1.959963984540054 * differences.std(ddof=1) / np.sqrt(1000)
    assert gain == pytest.approx(0.04) and (low, high) == pytest.approx((0.04 - half, 0.04 + half))
    assert low > 0  # a gain the faces support
    separate = [accuracy_interval(answers) for answers in (better, reference)]
    assert separate[0][0] < separate[1][1]  # which the two accuracies' own intervals, overlapping, would hide
    assert paired_gain(reference, better) == pytest.approx((-gain, -high, -low))
    assert paired_gain(reference, reference) == (0.0, 0.0, 0.0)


def test_paired_gains_script_compares_runs_face_by_face(tmp_path: Path) -> None:
    labels = np.arange(700) % 7
    runs = []
    for name, wrong in (("plain", 300), ("better", 260)):  # the better run fixes 40 of the plain run's mistakes
        predictions = labels.copy()
        predictions[:wrong] = (labels[:wrong] + 1) % 7
        (tmp_path / name).mkdir()
        RunDir(tmp_path / name).save_logits("PublicTest", np.eye(7)[predictions], labels)
        RunDir(tmp_path / name).save_logits("PrivateTest", np.eye(7)[predictions], labels)
        runs.append(tmp_path / name)
    result = subprocess.run([sys.executable, str(REPO / "docs" / "scripts" / "paired_gains.py"), *map(str, runs)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    gain, low, high = paired_gain(_answers(440, 700), _answers(400, 700))  # the same counts in another order
    low_acc, high_acc = accuracy_interval(_answers(440, 700))
    line = (f"better: 62.86% ({low_acc:.2%}-{high_acc:.2%}), gain {gain * 100:+.2f} points "
            f"({low * 100:+.2f} to {high * 100:+.2f})")
    assert "gain +5.71 points" in line  # 40 faces of 700
    assert result.stdout.count(line) == 2, result.stdout  # PublicTest and PrivateTest


def test_mistakes_show_each_true_class_wrong_answers_most_confident_first() -> None:
    labels = np.repeat(np.arange(7), 5)  # five faces of each class
    scores = np.zeros((35, 7))
    scores[np.arange(35), labels] = 5.0  # right, confidently ...
    for face, margin in {0: 4.0, 1: 9.0, 2: 6.0}.items():  # ... but Angry faces 0-2 are called Happy (3)
        scores[face] = 0.0
        scores[face, 3] = margin  # softmax: e^m / (e^m + 6) = 90%, 100%, 99%
    images = np.arange(35, dtype=np.uint8)[:, None, None].repeat(48, 1).repeat(48, 2)  # face i is all grey level i
    figure = mistakes_figure(images, scores, labels, per_class=4)
    angry = figure.axes[:4]
    shown = [int(ax.get_images()[0].get_array()[0, 0]) for ax in angry if ax.get_images()]
    assert shown == [1, 2, 0]  # the three wrong answers, most confident first; nothing else in the row
    assert [ax.get_title() for ax in angry[:3]] == ["Happy 100%", "Happy 99%", "Happy 90%"]
    assert angry[0].get_ylabel() == CLASS_NAMES[0]
    assert not any(ax.get_images() for ax in figure.axes[4:])  # every other class was answered right
