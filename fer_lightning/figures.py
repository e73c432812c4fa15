"""Figures drawn once: written as a PNG, and TensorBoard given that file's bytes.

TensorBoard's ``add_figure`` draws a figure again and encodes it anew, which took as long as ``savefig``: for the
mistakes' 56 small axes 0.6 s a run (2-core Xeon, 2026-12-07). Given the PNG itself, TensorBoard also shows exactly
the picture in the run dir.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # a PNG's colour type: gray, RGB, gray + alpha, RGBA


def save_png(figure: Figure, path: Path, dpi: float | None = None) -> Path:
    """``figure`` written to ``path`` (at ``dpi``; None: its own) and closed."""
    figure.savefig(path, dpi=dpi or "figure")
    plt.close(figure)
    return path


def face_grid(rows: Sequence[tuple[str, Sequence[tuple[np.ndarray, str]]]], per_row: int, title: str) -> Figure:
    """Rows of 48x48 gray faces, each row named at its left and each face captioned above it; a row may be short.

    Laid out by fixed margins in inches: matplotlib's constrained layout measured the text of every axis, half a
    second of a training run's end for the mistakes' 56 (docs/results.md, "The test suite"). 80 dpi: each face still
    at twice its size, in 3/4 of the bytes 100 took (GPU sessions bring these figures back).
    """
    width, height = 1.3 * per_row + 1.2, 1.55 * len(rows)
    grid = {"left": 0.45 / width, "right": 1 - 0.05 / width, "bottom": 0.05 / height, "top": 1 - 0.75 / height,
            "wspace": 0.08, "hspace": 0.28}
    fig, axes = plt.subplots(len(rows), per_row, figsize=(width, height), dpi=80, squeeze=False, gridspec_kw=grid)
    for (name, faces), row_axes in zip(rows, axes, strict=True):
        row_axes[0].set_ylabel(name, fontsize=10)
        for ax in row_axes:
            ax.set(xticks=[], yticks=[])
            ax.spines[:].set_visible(False)
        for ax, (face, caption) in zip(row_axes, faces[:per_row], strict=False):  # a short row leaves axes empty
            ax.imshow(face, cmap="gray", vmin=0, vmax=255)
            ax.set_title(caption, fontsize=8)
    fig.suptitle(title)
    return fig


def log_png(writer: SummaryWriter, tag: str, path: Path, step: int = 0) -> None:
    """The PNG at ``path``, its bytes as they are, as TensorBoard image ``tag``."""
    from tensorboard.compat.proto.summary_pb2 import Summary

    png = path.read_bytes()
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk, first in every PNG
    image = Summary.Image(height=height, width=width, colorspace=CHANNELS[png[25]], encoded_image_string=png)
    # What add_image itself writes through: the file writer, opened again where Lightning's finalize closed it.
    writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=image)]), step)
