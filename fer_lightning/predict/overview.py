"""faces.png: what fer-predict called the faces of its photos, at a glance.

A row per emotion, with how many photo faces got it and the ones it was surest of, each captioned with its file and
confidence. Looking down the rows answers what a table of rows cannot quickly: whether the happy ones look happy, and
which calls look wrong. Video frames are left out (one person would fill a row), as they are from ``explain``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fer_lightning.fer2013 import CLASS_NAMES
from fer_lightning.figures import face_grid


@dataclass
class Overview:
    """Each emotion's surest photo faces, kept as batches are predicted (never more than ``per_emotion`` each)."""

    per_emotion: int = 8
    counts: Counter[int] = field(default_factory=Counter)
    _surest: dict[int, list[tuple[float, str, np.ndarray]]] = field(default_factory=dict)

    def add(self, path: Path, crops: list[np.ndarray], proba: np.ndarray) -> None:
        """One photo's face crops and their probabilities."""
        for crop, p in zip(crops, proba, strict=True):
            emotion, confidence = int(p.argmax()), float(p.max())
            self.counts[emotion] += 1
            kept = self._surest.setdefault(emotion, [])
            kept.append((confidence, f"{path.name[:14]} {confidence:.0%}", crop))
            kept.sort(key=lambda face: -face[0])
            del kept[self.per_emotion:]

    def figure(self) -> Figure:
        """A row per emotion, named with its count, its surest faces first."""
        rows = []
        for emotion, name in enumerate(CLASS_NAMES):
            faces = [(crop, caption) for _, caption, crop in self._surest.get(emotion, [])]
            rows.append((f"{name}\n{self.counts[emotion]}", faces))
        title = f"{sum(self.counts.values())} photo faces: each emotion's count and the faces it was surest of"
        return face_grid(rows, self.per_emotion, title)
