"""Where a face's emotion comes from: occlusion maps, for ``fer-predict explain=true``.

Each 48x48 crop goes through the model again with one square of it hidden at a time (filled with the face's own
mean grey, so that no black square draws the model's attention); where hiding a square lowers the predicted
emotion's probability most, the model was relying on it (Zeiler & Fergus, 2014). It needs nothing from the model
but its probabilities, so it explains a checkpoint, an ONNX file and a stack alike, with their test-time
augmentation, where gradient maps would need a differentiable torch model and a choice of layer (the study's
nets end in a 2x2 map, too coarse for Grad-CAM).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from fer_lightning.fer2013 import IMAGE_SIDE

PATCH = 8  # side of the hidden square in crop pixels: about an eye, or a corner of the mouth
STRIDE = 4  # 11 x 11 = 121 positions on a 48x48 crop, each pixel under 1 to 4 of them
SCALE = 4  # the saved picture's pixels per crop pixel


def occlusion_maps(predict_proba: Callable[[np.ndarray], np.ndarray], faces: np.ndarray, targets: np.ndarray,
                   batch_size: int = 256, patch: int = PATCH, stride: int = STRIDE) -> np.ndarray:
    """(N, 48, 48): for each face, each pixel's mean drop in the probability of class ``targets[i]`` (as
    ``predict_proba`` gives it for uint8 faces) over the hidden squares that cover it. Positive where the answer
    needs that part of the face, negative where hiding it made the model surer."""
    count, side = len(faces), faces.shape[-1]
    starts = range(0, side - patch + 1, stride)
    corners = [(y, x) for y in starts for x in starts]
    rows = np.arange(count)
    fill = faces.reshape(count, -1).mean(1).round().astype(faces.dtype)[:, None, None]
    hidden = np.repeat(faces[:, None], len(corners), axis=1)  # (N, K, H, W)
    for k, (y, x) in enumerate(corners):
        hidden[:, k, y:y + patch, x:x + patch] = fill
    flat = hidden.reshape(-1, side, side)
    proba = np.concatenate([predict_proba(flat[i:i + batch_size]) for i in range(0, len(flat), batch_size)])
    base = predict_proba(faces)[rows, targets]
    drops = base[:, None] - proba.reshape(count, len(corners), -1)[rows, :, targets]  # (N, K)
    total, covered = np.zeros((count, side, side)), np.zeros((side, side))
    for k, (y, x) in enumerate(corners):
        total[:, y:y + patch, x:x + patch] += drops[:, k, None, None]
        covered[y:y + patch, x:x + patch] += 1
    return (total / covered).astype(np.float32)


def explanation_picture(face: np.ndarray, drops: np.ndarray, label: str) -> np.ndarray:
    """A BGR picture: the crop under ``label`` (the answer), and beside it the crop under its map (red where hiding
    lowered the answer's probability most; no colour where hiding changed nothing or raised it)."""
    size = IMAGE_SIDE * SCALE
    gray = cv2.resize(face, (size, size), interpolation=cv2.INTER_CUBIC)
    plain = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    needed = cv2.GaussianBlur(np.clip(drops, 0, None), (0, 0), STRIDE / 2)  # softens the squares' 4-pixel steps
    strength = needed / needed.max() if needed.max() > 0 else needed
    strength = cv2.resize(strength.astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    heat = cv2.applyColorMap((strength * 255).astype(np.uint8), cv2.COLORMAP_JET)
    weight = 0.6 * strength[..., None]
    overlay = (plain * (1 - weight) + heat * weight).astype(np.uint8)
    title = np.full((28, 2 * size, 3), 255, np.uint8)
    for text, left in ((label, 6), ("red: needed most", size + 6)):
        cv2.putText(title, text, (left, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.vstack([title, np.hstack([plain, overlay])])
