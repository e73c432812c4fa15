"""YuNet, libfacedetection's face detector, as an ONNX graph that onnxruntime runs.

``yunet.onnx`` beside this file holds libfacedetection's own weights (BSD 3-clause, ``LICENSE.libfacedetection``),
read out of the compiled library that the ``yuface`` package ships and laid out as a graph by
``docs/scripts/yunet_onnx.py``, which also checks it box for box against that library. Run so, the detector needs
nothing beyond onnxruntime: any Python, any platform, and five times the speed of the library's own loops
(docs/results.md, "Face detectors").

The graph takes a BGR picture as float32 (1, 3, H, W), H and W multiples of 32, and gives for each of its three
strides (8, 16, 32 px) four maps: the face score, the box, the objectness and the five landmarks, per cell. The
decoding and the non-maximum suppression below are the library's: a face's score is the geometric mean of its
two sigmoids, a box is its cell's corner plus an offset and an exponential size in stride units, and a box that
overlaps a better one by more than 0.45 IoU (the shipped library's setting) is dropped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

GRAPH = Path(__file__).with_name("yunet.onnx")
STRIDES = (8, 16, 32)
PADDING = 32  # the coarsest stride: the graph's input sides are multiples of it
OVERLAP = 0.45
CANDIDATES = 1000  # the best this many boxes go into the suppression, as in the library


class YuNet:
    """The graph (``graph``: another build of it) in one onnxruntime session; ``detect`` gives a picture's faces,
    best first."""

    def __init__(self, graph: Path = GRAPH) -> None:
        import onnxruntime  # here, not at the top: the commands that never detect a face start without it

        self.session = onnxruntime.InferenceSession(str(graph), providers=["CPUExecutionProvider"])

    def detect(self, bgr: np.ndarray, score_threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scores (N,), boxes (N, 4) as x, y, width, height, and landmarks (N, 10) as the two eyes, the nose tip
        and the two mouth corners (x, y each), in ``bgr``'s pixels, for the faces scoring at least
        ``score_threshold``."""
        height, width = bgr.shape[:2]
        padded = np.zeros((1, 3, -(-height // PADDING) * PADDING, -(-width // PADDING) * PADDING), np.float32)
        padded[0, :, :height, :width] = bgr.transpose(2, 0, 1)
        maps = self.session.run(None, {"image": padded})
        scores, boxes, marks = [], [], []
        for level, stride in enumerate(STRIDES):
            score, box, objectness, landmarks = (_cells(m) for m in maps[4 * level:4 * level + 4])
            score = np.sqrt(_sigmoid(score[:, 0]) * _sigmoid(objectness[:, 0]))
            kept = score >= score_threshold
            rows, cols = maps[4 * level].shape[2:]
            corners = np.stack(np.meshgrid(np.arange(cols), np.arange(rows)), -1).reshape(-1, 2)[kept] * stride
            size = np.exp(box[kept, 2:]) * stride
            boxes.append(np.hstack([box[kept, :2] * stride + corners - size / 2, size]))
            marks.append((landmarks[kept].reshape(-1, 5, 2) * stride + corners[:, None]).reshape(-1, 10))
            scores.append(score[kept])
        score, box, landmarks = np.concatenate(scores), np.concatenate(boxes), np.concatenate(marks)
        best = _suppress_overlaps(score, box)
        return score[best], box[best], landmarks[best]


def _cells(feature_map: np.ndarray) -> np.ndarray:
    """(1, C, rows, cols) as (rows * cols, C), row by row."""
    return feature_map[0].reshape(feature_map.shape[1], -1).T


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(x, -88, 88)))


def _suppress_overlaps(scores: np.ndarray, boxes: np.ndarray) -> list[int]:
    """Indices of the boxes kept, best first: each one overlapping none kept before it by more than OVERLAP."""
    corners = np.hstack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]])
    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable")[:CANDIDATES]:
        if not kept or np.all(_overlaps(corners[i], corners[kept]) <= OVERLAP):
            kept.append(int(i))
    return kept


def _overlaps(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one box with each of ``others``, all as (x0, y0, x1, y1)."""
    width = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    height = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = width * height
    area = (box[2] - box[0]) * (box[3] - box[1])
    return inter / (area + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1]) - inter)
