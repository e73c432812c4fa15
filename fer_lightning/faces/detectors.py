"""Face detectors behind one interface: a picture in, boxes (with eye positions where the detector gives them) out.

- ``yunet`` (the default): libfacedetection's YuNet CNN, its weights shipped in this package as an ONNX graph
  (``faces.yunet``; nothing is downloaded). It finds turned, tilted, small and partly hidden faces that the
  cascade misses, and gives five landmarks, of which the two eyes level the crop.
- ``haar``: OpenCV's frontal-face Haar cascade, the study's era detector; it needs OpenCV 4 (OpenCV 5 removed
  ``CascadeClassifier``).

docs/results.md compares them on pictures with known boxes (``fer-detection-bench``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np

from fer_lightning.errors import FerError, check_number, check_whole_number
from fer_lightning.faces.yunet import YuNet

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int

    @property
    def centre(self) -> Point:
        return self.x + self.w / 2, self.y + self.h / 2

    def intersection(self, other: Box) -> int:
        width = min(self.x + self.w, other.x + other.w) - max(self.x, other.x)
        height = min(self.y + self.h, other.y + other.h) - max(self.y, other.y)
        return max(width, 0) * max(height, 0)

    def overlap(self, other: Box) -> float:
        """Intersection over union, 0 to 1."""
        inter = self.intersection(other)
        return inter / (self.w * self.h + other.w * other.h - inter) if inter else 0.0

    def covered_by(self, other: Box) -> float:
        """The share of this box's area that lies inside the other box."""
        return self.intersection(other) / (self.w * self.h)


@dataclass(frozen=True)
class Face:
    """One detection. ``eyes`` is (the eye on the image's left, the one on its right), or None."""

    box: Box
    score: float | None = None
    eyes: tuple[Point, Point] | None = None


class Detector(Protocol):
    sees_color: bool  # False: give it the grayscale picture (the caller has it already, so convert once)

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces in a 2-D gray or 3-channel BGR uint8 image, in any order."""
        ...


class HaarDetector:
    """OpenCV's Haar cascade on the grayscale image; no scores, no landmarks."""

    sees_color = False

    def __init__(self, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 40,
                 cascade: str = "haarcascade_frontalface_default.xml") -> None:
        if not hasattr(cv2, "CascadeClassifier"):
            raise FerError(f"detector=haar needs OpenCV 4 (OpenCV {cv2.__version__} has no CascadeClassifier): "
                           "pip install 'opencv-python-headless<5', or use detector=yunet")
        folder = cv2.data.haarcascades  # type: ignore[attr-defined]  # not in OpenCV's stubs
        self.cascade = cv2.CascadeClassifier(folder + cascade)
        if self.cascade.empty():
            raise FerError(f"OpenCV could not load the cascade {cascade!r} from {folder}")
        check_number("detector.scale_factor", scale_factor, above=1, why="each pass enlarges the window by it")
        check_whole_number("detector.min_neighbors", min_neighbors, least=0)
        check_whole_number("detector.min_size", min_size, "pixels")
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size

    def detect(self, image: np.ndarray) -> list[Face]:
        gray = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2GRAY)
        found = self.cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                              minSize=(self.min_size, self.min_size))
        return [Face(Box(int(x), int(y), int(w), int(h))) for x, y, w, h in found]


class YuNetDetector:
    """YuNet (``faces.yunet``), in two passes.

    The first pass sees the picture shrunk to at most ``max_side`` px (libfacedetection, whose net this is, warns
    above 960 px: its anchors are made for faces of pictures that size). The second sees it ``small_face_zoom`` times
    larger and keeps only the faces narrower than ``small_face_side`` px there, which the first pass misses below
    about 50 px. Where two boxes overlap (IoU 0.3) or one lies mostly inside the other (an eye or a mouth taken for a
    face), the higher score wins. ``small_face_zoom: 1`` skips the second pass (a fifth of the time).
    ``min_size`` drops faces narrower than that in the picture, before boxes are merged (so that none hides the
    face it lies in): below ~24 px a 48x48 crop is mostly blur, and on pictures with known boxes most such
    detections were not faces.
    """

    sees_color = True

    def __init__(self, score_threshold: float = 0.5, max_side: int = 960, small_face_zoom: float = 2.0,
                 small_face_side: int = 100, min_size: int = 0) -> None:
        if not 0 < score_threshold < 1:
            raise FerError(f"detector.score_threshold must be between 0 and 1, got {score_threshold}")
        if small_face_zoom < 1:
            raise FerError(f"detector.small_face_zoom must be 1 (no second pass) or more, got {small_face_zoom}")
        self._yunet = YuNet()
        self.score_threshold, self.max_side, self.min_size = score_threshold, max_side, min_size
        self.small_face_zoom, self.small_face_side = small_face_zoom, small_face_side

    def detect(self, image: np.ndarray) -> list[Face]:
        bgr = as_bgr(image)
        faces = self.first_pass(bgr)
        return self.with_small_faces(bgr, faces) if self.small_face_zoom > 1 else faces

    def first_pass(self, bgr: np.ndarray) -> list[Face]:
        """The faces found in the picture shrunk to at most ``max_side`` px (``as_bgr``'s picture)."""
        return self._pass(bgr, self._scale(bgr), max_side=None)

    def with_small_faces(self, bgr: np.ndarray, found: list[Face]) -> list[Face]:
        """``first_pass``'s faces and the zoomed pass's; where two overlap, the one with the higher score."""
        small = self._pass(bgr, self._scale(bgr) * self.small_face_zoom, max_side=self.small_face_side)
        kept: list[Face] = []
        for face in sorted(found + small, key=lambda face: -(face.score or 0)):
            if all(face.box.overlap(other.box) < 0.3 and face.box.covered_by(other.box) < 0.5
                   and other.box.covered_by(face.box) < 0.5 for other in kept):
                kept.append(face)
        return kept

    def _scale(self, bgr: np.ndarray) -> float:
        return min(1.0, self.max_side / max(bgr.shape[:2]))

    def _pass(self, bgr: np.ndarray, scale: float, max_side: int | None) -> list[Face]:
        """Faces found at ``scale``, in the picture's own coordinates, at least ``min_size`` px wide; with
        ``max_side``, only faces narrower than that at this scale."""
        if scale != 1:
            bgr = cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else
                             cv2.INTER_CUBIC)
        scores, boxes, landmarks = self._yunet.detect(bgr, self.score_threshold)
        faces = []
        for score, box, marks in zip(scores, boxes, landmarks, strict=True):
            if max_side is not None and box[2] >= max_side:
                continue
            box, marks = box / scale, marks / scale
            left, right = sorted([(float(marks[0]), float(marks[1])), (float(marks[2]), float(marks[3]))])
            faces.append(Face(Box(*(round(v) for v in box)), float(score), (left, right)))
        return [face for face in faces if min(face.box.w, face.box.h) >= self.min_size]


def as_bgr(image: np.ndarray) -> np.ndarray:
    """A 2-D gray, BGR or BGRA uint8 picture as the contiguous 3-channel BGR that YuNet takes."""
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else np.ascontiguousarray(image[..., :3])


DETECTORS: dict[str, type] = {"haar": HaarDetector, "yunet": YuNetDetector}


def make_detector(name: str, **settings: Any) -> Detector:
    """The detector ``detector=<name>`` selects, with the settings of its config file."""
    if name not in DETECTORS:
        raise FerError(f"detector must be one of {', '.join(DETECTORS)}, got {name!r}")
    return DETECTORS[name](**settings)
