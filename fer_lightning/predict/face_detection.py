"""Faces in photos: OpenCV's Haar cascade finds them, each is cut out and scaled to FER-2013's 48x48.

``margin`` widens (or, negative, narrows) each box by a share of its side before cropping. On pictures made from
PublicTest faces (``photo_sheets``) the cascade's own box classified at least as well as widened ones, so the
default is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from fer_lightning.fer2013 import IMAGE_SIDE

DetectMode = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


class FaceFinder:
    """Boxes the faces of a grayscale image and returns them as 48x48 uint8 crops.

    ``detect``: 'auto' treats an image that is already 48x48 as one face and searches all others; 'always'
    searches every image; 'never' takes every whole image as one face.
    """

    def __init__(self, detect: DetectMode = "auto", margin: float = 0.0, scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_size: int = 40,
                 cascade: str = "haarcascade_frontalface_default.xml") -> None:
        if detect not in ("auto", "always", "never"):
            raise ValueError(f"detect must be auto, always or never, got {detect!r}")
        self.detect, self.margin = detect, margin
        self.scale_factor, self.min_neighbors, self.min_size = scale_factor, min_neighbors, min_size
        self.cascade = cv2.CascadeClassifier(cv2.data.haarcascades + cascade)
        if self.cascade.empty():
            raise ValueError(f"OpenCV could not load the cascade {cascade!r} from {cv2.data.haarcascades}")

    def boxes(self, gray: np.ndarray) -> list[Box]:
        """Face boxes, widened by the margin and clipped to the image, largest first."""
        height, width = gray.shape
        if self.detect == "never" or (self.detect == "auto" and gray.shape == (IMAGE_SIDE, IMAGE_SIDE)):
            return [Box(0, 0, width, height)]
        found = self.cascade.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                              minSize=(self.min_size, self.min_size))
        boxes = []
        for x, y, w, h in sorted(found, key=lambda b: -b[2] * b[3]):
            pad = round(self.margin * int(max(w, h)))
            x0, y0 = max(int(x) - pad, 0), max(int(y) - pad, 0)
            x1, y1 = min(int(x + w) + pad, width), min(int(y + h) + pad, height)
            boxes.append(Box(x0, y0, x1 - x0, y1 - y0))
        return boxes

    @staticmethod
    def crop(gray: np.ndarray, box: Box) -> np.ndarray:
        face = gray[box.y:box.y + box.h, box.x:box.x + box.w]
        if face.shape == (IMAGE_SIDE, IMAGE_SIDE):
            return face
        return cv2.resize(face, (IMAGE_SIDE, IMAGE_SIDE), interpolation=cv2.INTER_AREA)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any 8-bit image OpenCV or Pillow gives (gray, BGR, BGRA) -> 2-D uint8 grayscale."""
    if image.ndim == 2:
        return image
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


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
