"""From a picture to 48x48 face crops: detect, square the box, level the eyes, cut out and scale.

FER-2013's faces are square gray crops with the eyes roughly level. A detected box is squared around its centre
(side = its longer side, widened by ``margin`` of it on each side). With a detector that gives the eyes, a face
whose eyes tilt by more than ``level_above`` degrees is turned about the box centre so that they are level;
smaller tilts are left as they are, as FER-2013's own faces are not levelled either. Parts of the square
outside the picture are filled by repeating its edge. docs/results.md has the measurements behind the defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from fer_lightning.errors import ConfigError
from fer_lightning.faces.detectors import Box, Detector, Face
from fer_lightning.fer2013 import IMAGE_SIDE

DetectMode = Literal["auto", "always", "never"]
# The square is first scaled with area averaging to this many times the crop, then turned: no aliasing from a
# large face, and room for the corners a turn brings in.
_ROOM = 1.5


@dataclass
class FaceFinder:
    """Faces of a picture, largest first, and their 48x48 uint8 crops.

    ``detect``: 'auto' takes a picture that is already 48x48 as one face and searches all others; 'always'
    searches every picture; 'never' takes every whole picture as one face.
    """

    detector: Detector
    detect: DetectMode
    margin: float  # share of the box side added on each side before squaring
    level_above: float | None  # degrees; None: never turn

    def __post_init__(self) -> None:
        if self.detect not in ("auto", "always", "never"):
            raise ConfigError(f"detect must be auto, always or never, got {self.detect!r}")

    def faces(self, image: np.ndarray, gray: np.ndarray | None = None) -> list[Face]:
        """``gray``: the picture already converted by ``to_gray``, given to detectors that need no colour."""
        height, width = image.shape[:2]
        if self.detect == "never" or (self.detect == "auto" and (height, width) == (IMAGE_SIDE, IMAGE_SIDE)):
            return [Face(Box(0, 0, width, height))]
        seen = image if self.detector.sees_color or gray is None else gray
        return sorted(self.detector.detect(seen), key=lambda face: -face.box.w * face.box.h)

    def cut_out(self, image: np.ndarray) -> tuple[list[Face], list[Box], list[np.ndarray]]:
        """The picture's faces, largest first, the squares their crops were cut from, and the 48x48 crops."""
        gray = to_gray(image)
        faces = self.faces(image, gray)
        return faces, [self.crop_box(face, gray.shape) for face in faces], [self.crop(gray, face) for face in faces]

    def crop_box(self, face: Face, shape: tuple[int, ...]) -> Box:
        """The square the crop is cut from, clipped to the picture: what the results report as the face's box."""
        if _is_whole(face, shape):
            return face.box
        (cx, cy), side = face.box.centre, self._side(face)
        x0, y0 = max(round(cx - side / 2), 0), max(round(cy - side / 2), 0)
        x1, y1 = min(round(cx + side / 2), shape[1]), min(round(cy + side / 2), shape[0])
        return Box(x0, y0, x1 - x0, y1 - y0)

    def crop(self, gray: np.ndarray, face: Face) -> np.ndarray:
        if _is_whole(face, gray.shape):
            return gray if gray.shape == (IMAGE_SIDE, IMAGE_SIDE) else \
                cv2.resize(gray, (IMAGE_SIDE, IMAGE_SIDE), interpolation=cv2.INTER_AREA)
        angle = self.eye_angle(face)
        turn = self.level_above is not None and abs(angle) > self.level_above
        return square_crop(gray, face.box.centre, self._side(face), angle if turn else 0.0)

    def _side(self, face: Face) -> float:
        return max(face.box.w, face.box.h) * (1 + 2 * self.margin)

    @staticmethod
    def eye_angle(face: Face) -> float:
        """How many degrees the face is turned clockwise on screen, read from its eyes (positive when the eye on
        the image's right is lower); 0 without eyes."""
        if face.eyes is None:
            return 0.0
        (lx, ly), (rx, ry) = face.eyes
        return math.degrees(math.atan2(ry - ly, rx - lx))


def _is_whole(face: Face, shape: tuple[int, ...]) -> bool:
    return face.box == Box(0, 0, shape[1], shape[0])


def square_crop(gray: np.ndarray, centre: tuple[float, float], side: float, angle: float) -> np.ndarray:
    """The ``side`` x ``side`` square around ``centre``, turned by ``angle`` degrees, as a 48x48 crop."""
    room = max(round(side * _ROOM), 1)
    cx, cy = centre
    x0, y0 = round(cx - room / 2), round(cy - room / 2)
    pad = max(0, -x0, -y0, x0 + room - gray.shape[1], y0 + room - gray.shape[0])
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
    region = padded[y0 + pad:y0 + pad + room, x0 + pad:x0 + pad + room]
    out = round(IMAGE_SIDE * _ROOM)
    region = cv2.resize(region, (out, out), interpolation=cv2.INTER_AREA if room > out else cv2.INTER_CUBIC)
    turn = np.asarray(cv2.getRotationMatrix2D((out / 2, out / 2), angle, 1.0), np.float64)  # stubs: int or float
    turn[:, 2] -= (out - IMAGE_SIDE) / 2
    return cv2.warpAffine(region, turn, (IMAGE_SIDE, IMAGE_SIDE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any 8-bit image OpenCV or Pillow gives (gray, BGR, BGRA) -> 2-D uint8 grayscale."""
    if image.ndim == 2:
        return image
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)
