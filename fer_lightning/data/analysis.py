"""Look at the data before training on it: faces of each class and the class balance of each split.

``fer-analyze`` writes both as PNGs into its run dir and logs them to TensorBoard there.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from torch.utils.tensorboard import SummaryWriter

from fer_lightning.data.csv_reader import FerArrays, load_fer2013
from fer_lightning.fer2013 import CLASS_NAMES, SPLITS


def samples_figure(data: FerArrays, per_class: int = 1, seed: int = 0) -> Figure:
    """A grid with `per_class` random Training faces for each emotion (one column per class)."""
    rng = np.random.default_rng(seed)
    images, labels = data.split("Training")
    fig, axes = plt.subplots(per_class, len(CLASS_NAMES), figsize=(1.6 * len(CLASS_NAMES), 1.8 * per_class),
                             squeeze=False, layout="constrained")
    for label, name in enumerate(CLASS_NAMES):
        pool = np.flatnonzero(labels == label)
        picks = rng.choice(pool, size=min(per_class, len(pool)), replace=False) if len(pool) else []
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


def analyze(csv_path: str | None, out_dir: Path, cache_dir: Path | None = None, per_class: int = 1) -> list[Path]:
    """Write samples.png and class_distribution.png to out_dir and log both to TensorBoard there."""
    data = load_fer2013(csv_path, cache_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with SummaryWriter(str(out_dir / "tensorboard")) as writer:
        figures = {"samples": samples_figure(data, per_class), "class_distribution": distribution_figure(data)}
        for name, fig in figures.items():
            path = out_dir / f"{name}.png"
            fig.savefig(path, dpi=110)
            writer.add_figure(f"data/{name}", fig)
            plt.close(fig)
            written.append(path)
    return written

