"""Copies of the input pictures with each face's box and label drawn on them."""

from __future__ import annotations

import cv2
import numpy as np

from fer_lightning.faces.detectors import Box


def annotate(image: np.ndarray, labelled: list[tuple[Box, str]]) -> np.ndarray:
    """A BGR copy of the image with each box drawn and its label written above it."""
    canvas = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image[..., :3].copy()
    thickness = max(1, round(max(canvas.shape[:2]) / 400))
    for box, label in labelled:
        cv2.rectangle(canvas, (box.x, box.y), (box.x + box.w, box.y + box.h), (0, 200, 0), thickness)
        scale = max(0.4, box.w / 200)
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(box.y - th - 6, 0)
        cv2.rectangle(canvas, (box.x, top), (box.x + tw + 4, top + th + 6), (0, 200, 0), -1)
        cv2.putText(canvas, label, (box.x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness)
    return canvas
