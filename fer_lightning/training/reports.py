"""What a finished run leaves behind: metrics.json, a classification report, confusion matrix, its most confident
mistakes and curve plots; and how far an accuracy on a few thousand faces can be trusted."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from scipy.special import softmax
from scipy.stats import binomtest, norm
from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

from fer_lightning.fer2013 import CLASS_NAMES
from fer_lightning.figures import face_grid, save_png
from fer_lightning.inference.calibration import binned_calibration_error, confidence_bins

LABELS = list(range(len(CLASS_NAMES)))
LABEL_WIDTH = 45  # characters in a line of a bar's name


def accuracy_interval(correct: np.ndarray) -> tuple[float, float]:
    """The 95% (Wilson) interval of the accuracy behind these right/wrong answers.

    On PrivateTest's 3,589 faces an accuracy near 70% is known to about ±1.5 points, more than most gaps between
    two runs' accuracies: those are compared on the same faces, with ``paired_gain``.
    """
    interval = binomtest(int(np.sum(correct)), len(correct)).proportion_ci(0.95, method="wilson")
    return float(interval.low), float(interval.high)


def paired_gain(correct: np.ndarray, reference: np.ndarray) -> tuple[float, float, float]:
    """How much more accurate one model is than a reference on the same faces, with its 95% interval (normal
    approximation over the per-face differences).

    Faces both get right, or both get wrong, carry no doubt about the gap, so the interval is far narrower than the
    two accuracies' own intervals side by side would suggest.
    """
    differences = np.asarray(correct, float) - np.asarray(reference, float)
    gain = float(differences.mean())
    half = norm.ppf(0.975) * float(differences.std(ddof=1)) / np.sqrt(len(differences))
    return gain, gain - half, gain + half


def classification_metrics(labels: np.ndarray, predictions: np.ndarray) -> dict[str, Any]:
    """Accuracy with its 95% interval, macro and weighted precision/recall/F1, and the same per class, as plain
    floats."""
    correct = labels == predictions
    result: dict[str, Any] = {"accuracy": float(np.mean(correct)), "accuracy_ci95": list(accuracy_interval(correct)),
                              "n": len(labels)}
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(labels, predictions, labels=LABELS, average=average,
                                                     zero_division=0)
        result[average] = {"precision": float(p), "recall": float(r), "f1": float(f)}
    p, r, f, support = precision_recall_fscore_support(labels, predictions, labels=LABELS, zero_division=0)
    result["per_class"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(support[i])}
        for i, name in enumerate(CLASS_NAMES)
    }
    return result


def confusion_figure(labels: np.ndarray, predictions: np.ndarray, title: str = "") -> Figure:
    """One matrix: each cell's share of its true class (recall on the diagonal) above its count.

    Sized to stay legible where TensorBoard shows it (about 600 px wide), as well as in confusion_matrix.png.
    """
    counts = confusion_matrix(labels, predictions, labels=LABELS)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100, layout="constrained")
    ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for (i, j), rate in np.ndenumerate(rates):
        ax.text(j, i, f"{rate:.0%}\n{counts[i, j]}", ha="center", va="center", fontsize=9,
                color="white" if rate > 0.5 else "black")
    ax.set(xticks=LABELS, yticks=LABELS, xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES, xlabel="predicted",
           ylabel="true", title=f"{title} confusion matrix: share of each true class, count".strip())
    ax.tick_params(axis="x", rotation=45)
    return fig


def mistakes_figure(images: np.ndarray, scores: np.ndarray, labels: np.ndarray, per_class: int = 8,
                    title: str = "") -> Figure:
    """For each true class (a row), the faces the model got wrong most confidently, each with its predicted class
    and probability. On FER-2013 many of them are faces whose label is doubtful, which no accuracy figure shows."""
    proba = np.exp(scores - scores.max(1, keepdims=True))
    proba /= proba.sum(1, keepdims=True)
    predicted, confidence = proba.argmax(1), proba.max(1)
    rows = []
    for row, name in enumerate(CLASS_NAMES):
        wrong = np.flatnonzero((labels == row) & (predicted != row))
        chosen = wrong[np.argsort(-confidence[wrong], kind="stable")][:per_class]
        captions = [f"{CLASS_NAMES[predicted[face]]} {confidence[face]:.0%}" for face in chosen]
        rows.append((name, list(zip(images[chosen], captions, strict=True))))
    return face_grid(rows, per_class,
                     f"{title} most confident mistakes: true class (rows), predicted class and probability".strip())


def reliability_figure(logits: np.ndarray, labels: np.ndarray, temperature: float, title: str = "",
                       unscaled: str = "as trained") -> Figure:
    """How often answers are right against how sure they say they are, per bin of confidence (a point's area is
    its number of faces): the model's own (legend ``unscaled``), and with the logits divided by ``temperature``.
    On the diagonal, a confidence of 70% is right 70% of the time."""
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=100, layout="constrained")
    ax.plot([0, 1], [0, 1], color="gray", linestyle="--", linewidth=1, label="confidence = accuracy")
    curves = {unscaled: (1.0, "tab:blue"), f"temperature {temperature:.2f}": (temperature, "tab:orange")}
    for name, (scale, color) in curves.items():
        counts, confidence, accuracy = confidence_bins(softmax(logits / scale, axis=1), labels)
        filled = counts > 0
        error = binned_calibration_error(counts, confidence, accuracy)
        ax.scatter(confidence[filled], accuracy[filled], s=600 * counts[filled] / counts.sum(), color=color,
                   alpha=0.8, label=f"{name}: calibration error {error:.1%}")
    ax.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="confidence (top probability)", ylabel="accuracy",
           title=f"{title} confidence against accuracy (area: faces)".strip())
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left")
    return fig


def accuracy_bars(names: Sequence[str], accuracy: np.ndarray, low: np.ndarray, high: np.ndarray,
                  colors: Sequence[str]) -> tuple[Figure, Axes]:
    """One bar per name, the first at the bottom: an accuracy in percent with its 95% interval and its value.

    Names are wrapped and the figure sized to them: a run's name carries its overrides, and a long one left the bars
    no width (matplotlib's constrained layout gave up and cut the names off).
    """
    labels = [textwrap.fill(name, LABEL_WIDTH) for name in names]
    lines = sum(label.count("\n") + 1 for label in labels)
    fig, ax = plt.subplots(figsize=(10, 0.22 * lines + 0.25 * len(labels) + 1.2), layout="constrained")
    ax.barh(range(len(labels)), accuracy, color=colors, xerr=(accuracy - low, high - accuracy), capsize=3,
            error_kw={"elinewidth": 1, "ecolor": "black"}, tick_label=labels)
    for y, (acc, top) in enumerate(zip(accuracy, high, strict=True)):
        ax.text(top + 0.4, y, f"{acc:.2f}", va="center")
    ax.set(xlim=(max(float(low.min()) - 3, 0), float(high.max()) + 4), xlabel="PrivateTest accuracy (%), 95% interval")
    ax.grid(axis="x", alpha=0.3)
    return fig, ax


def curves_figure(metrics_csv: Path) -> Figure:
    """Loss and accuracy per epoch for train and val, read from the CSVLogger's metrics.csv."""
    history = pd.read_csv(metrics_csv)
    per_epoch = history.groupby("epoch").last()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    for ax, metric in zip(axes, ("loss", "acc"), strict=True):
        for stage in ("train", "val"):
            column = f"{stage}/{metric}"
            if column in per_epoch:
                series = per_epoch[column].dropna()
                ax.plot(series.index + 1, series.to_numpy(), marker=".", label=stage)
        ax.set(xlabel="epoch", ylabel=metric, title=f"{metric} per epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def write_report(run_dir: Path, split_name: str, scores: np.ndarray, labels: np.ndarray,
                 unseen: np.ndarray | None = None) -> tuple[dict[str, Any], Path]:
    """Write metrics.json, classification_report.txt and confusion_matrix.png (whose path it returns) from
    per-class scores (logits or probabilities; the argmax is the prediction).

    ``unseen`` marks the faces without a copy in Training: their figures are reported again on their own, as
    ``<split>_unseen``, in the returned metrics too.
    """
    predictions = scores.argmax(axis=1)
    subsets = {split_name: (labels, predictions)}
    if unseen is not None:
        subsets[f"{split_name}_unseen"] = (labels[unseen], predictions[unseen])
    computed = {name: classification_metrics(*pair) for name, pair in subsets.items()}
    (run_dir / "metrics.json").write_text(json.dumps(computed, indent=2))
    metrics = {**computed[split_name], "unseen": computed.get(f"{split_name}_unseen")}
    reports = [f"{name} ({len(truth)} faces)\n\n" + classification_report(
        truth, predicted, labels=LABELS, target_names=list(CLASS_NAMES), digits=4, zero_division=0)
        for name, (truth, predicted) in subsets.items()]
    (run_dir / "classification_report.txt").write_text("\n\n".join(reports))
    return metrics, save_png(confusion_figure(labels, predictions, split_name), run_dir / "confusion_matrix.png")
