"""Look at the data before training on it: faces of each class, the class balance of each split, and the
audit (blank faces, copies, copies across splits, disagreeing labels: ``data.audit``).

``fer-analyze`` writes them into its run dir and logs them to TensorBoard there.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.data.audit import DataAudit, audit_summary, audit_table, csv_audit
from fer_lightning.data.csv_reader import FerArrays, load_fer2013
from fer_lightning.data.duplicate_check import compare_copy_finders
from fer_lightning.errors import check_switch, check_whole_number
from fer_lightning.fer2013 import CLASS_NAMES, SPLITS
from fer_lightning.figures import log_png, save_png

log = logging.getLogger(__name__)


def samples_figure(data: FerArrays, per_class: int = 1, seed: int = 0) -> Figure:
    """A grid with `per_class` random Training faces for each emotion (one column per class)."""
    rng = np.random.default_rng(seed)
    images, labels = data.split("Training")
    fig, axes = plt.subplots(per_class, len(CLASS_NAMES), figsize=(1.6 * len(CLASS_NAMES), 1.8 * per_class),
                             squeeze=False, layout="constrained")
    for label, name in enumerate(CLASS_NAMES):
        pool = np.flatnonzero(labels == label)
        picks = rng.choice(pool, size=min(per_class, len(pool)), replace=False)
        for row in range(per_class):
            ax = axes[row, label]
            ax.axis("off")
            if row < len(picks):
                ax.imshow(images[picks[row]], cmap="gray", vmin=0, vmax=255)
            if row == 0:
                ax.set_title(name)
    return fig


def distribution_figure(data: FerArrays) -> Figure:
    """Faces per class for each split, side by side, with counts on the bars."""
    fig, ax = plt.subplots(figsize=(10, 4.5), layout="constrained")
    width = 0.8 / len(SPLITS)
    x = np.arange(len(CLASS_NAMES))
    for i, split in enumerate(SPLITS):
        counts = np.bincount(data.split(split)[1], minlength=len(CLASS_NAMES))
        bars = ax.bar(x + (i - 1) * width, counts, width, label=f"{split} ({counts.sum():,})")
        ax.bar_label(bars, fontsize=7)
    ax.set(xticks=x, xticklabels=CLASS_NAMES, ylabel="faces", title="FER-2013 class distribution")
    ax.legend()
    return fig


def copies_figure(data: FerArrays, audit: DataAudit, pairs_per_row: int = 6, seed: int = 0) -> Figure:
    """Sample near copies, each pair side by side: the least alike that still count (where a wrong match would
    show), pairs across Training and PrivateTest, and pairs whose labels disagree."""
    rng = np.random.default_rng(seed)
    pairs, scores = audit.near_pairs, audit.near_scores
    usage, labels = data.usage[pairs], data.labels[pairs]  # (P, 2) each
    rows = {
        "least alike": np.argsort(scores)[:pairs_per_row],
        "Training and PrivateTest": _sample(np.flatnonzero(
            (usage == SPLITS.index("Training")).any(1) & (usage == SPLITS.index("PrivateTest")).any(1)),
            pairs_per_row, rng),
        "labels disagree": _sample(np.flatnonzero(labels[:, 0] != labels[:, 1]), pairs_per_row, rng),
    }
    fig, axes = plt.subplots(len(rows), 2 * pairs_per_row, figsize=(1.3 * 2 * pairs_per_row, 1.9 * len(rows)),
                             squeeze=False, layout="constrained")
    for r, (title, chosen) in enumerate(rows.items()):
        for ax in axes[r]:
            ax.axis("off")
        for c, k in enumerate(chosen):
            for side, row in enumerate(pairs[k]):
                ax = axes[r, 2 * c + side]
                ax.imshow(data.images[row], cmap="gray", vmin=0, vmax=255)
                ax.set_title(f"{CLASS_NAMES[data.labels[row]]}, line {data.lines[row]}\n{SPLITS[data.usage[row]]}",
                             fontsize=6)
            axes[r, 2 * c].text(0, -14, f"{title}: {scores[k]:.3f}" if c == 0 else f"{scores[k]:.3f}", fontsize=7)
    return fig


def _sample(candidates: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    return rng.choice(candidates, min(count, len(candidates)), replace=False) if len(candidates) else candidates


def analyze(csv_path: str | None, out_dir: Path, cache_dir: Path | None = None, per_class: int = 1,
            audit: bool = True, near_duplicate_check: bool = False) -> list[Path]:
    """Write samples.png and class_distribution.png to out_dir and log both to TensorBoard there.

    ``audit``: also the data audit: audit.csv (every flagged row), audit.json (the counts, also logged and
    in TensorBoard) and near_duplicates.png. ``near_duplicate_check``: near_duplicate_methods.csv, the copy
    finders measured on synthetic copies (``data.duplicate_check``).
    """
    check_whole_number("per_class", per_class, "faces")
    check_switch("audit", audit)
    check_switch("near_duplicate_check", near_duplicate_check)
    data = load_fer2013(csv_path, cache_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with SummaryWriter(str(out_dir / "tensorboard")) as writer:
        figures = {"samples": samples_figure(data, per_class), "class_distribution": distribution_figure(data)}
        if audit:
            found = csv_audit(data, csv_path, cache_dir, progress=True)
            written += _write_audit(data, found, out_dir, writer)
            figures["near_duplicates"] = copies_figure(data, found)
        for name, fig in figures.items():
            path = save_png(fig, out_dir / f"{name}.png", 110)
            log_png(writer, f"data/{name}", path)
            written.append(path)
    if near_duplicate_check:
        table = compare_copy_finders(data.images)
        table.to_csv(out_dir / "near_duplicate_methods.csv", index=False)
        log.info("Copy finders on synthetic copies (recall) and real faces (pairs found):\n%s",
                 table.to_string(index=False, float_format="{:.3f}".format))
        written.append(out_dir / "near_duplicate_methods.csv")
    return written


def _write_audit(data: FerArrays, audit: DataAudit, out_dir: Path, writer: SummaryWriter) -> list[Path]:
    table = audit_table(data, audit)
    table.to_csv(out_dir / "audit.csv", index=False)
    summary = audit_summary(data, audit)
    (out_dir / "audit.json").write_text(json.dumps(summary, indent=2))
    text = json.dumps(summary, indent=2)
    log.info("Data audit (%d flagged rows in %s):\n%s", len(table), out_dir / "audit.csv", text)
    writer.add_text("data/audit", "\n".join("    " + line for line in text.splitlines()))
    for key, value in _flatten(summary).items():
        writer.add_scalar(f"audit/{key}", value)
    return [out_dir / "audit.csv", out_dir / "audit.json"]


def _flatten(summary: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in summary.items():
        if isinstance(value, dict):
            flat |= _flatten(value, f"{prefix}{key}/")
        else:
            flat[f"{prefix}{key}"] = float(value)
    return flat
