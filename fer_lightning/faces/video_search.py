"""A video's faces from one sampled frame to the next: each face's id (tracking.py) and, where ``video.zoom_every``
is above 1, YuNet's zoomed pass for small faces only on the frames where it can add one.

On a photo YuNet looks twice (detectors.py): at the picture shrunk to 960 px, then at it zoomed twice, for the faces
under about 50 px that the first look misses. The zoomed look has four times the pixels and takes four fifths of the
time (docs/results.md, "Face detectors"). A video's sampled frames follow each other closely, so with ``every`` above
1 it runs only
- on every ``every``-th sampled frame, the first one included: a small face that comes into view is found within
  that many sampled frames;
- on the ``every - 1`` frames after one where it found a face the first look did not: a small face, once found, is
  followed, through the frames where YuNet misses it now and then;
- where the first look finds fewer faces than the frame before had: a face that walked away or turned is looked
  for at once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from fer_lightning.faces.detectors import Box, Detector, Face, YuNetDetector, as_bgr
from fer_lightning.faces.finder import FaceFinder
from fer_lightning.faces.tracking import FaceTracker


@dataclass
class VideoFaceSearch:
    """A ``Detector`` for one video's sampled frames, given in order; ``zoomed_frames`` counts the zoomed looks."""

    detector: YuNetDetector
    every: int
    sees_color = True  # unannotated: a class attribute, as on the other detectors, not a field
    zoomed_frames: int = 0
    _frames: int = 0
    _following: int = 0  # frames left to zoom on for a small face found lately
    _faces_before: int = 0

    def detect(self, image: np.ndarray) -> list[Face]:
        bgr = as_bgr(image)
        faces = self.detector.first_pass(bgr)
        if self._frames % self.every == 0 or self._following or len(faces) < self._faces_before:
            with_small = self.detector.with_small_faces(bgr, faces)
            self._following = self.every - 1 if len(with_small) > len(faces) else max(self._following - 1, 0)
            faces = with_small
            self.zoomed_frames += 1
        self._frames += 1
        self._faces_before = len(faces)
        return faces


def video_detector(detector: Detector, zoom_every: int) -> Detector:
    """The detector for one video: YuNet's zoomed pass on some frames only (``VideoFaceSearch``) where it has one
    and ``zoom_every`` is above 1; otherwise ``detector`` itself, as on photos."""
    if isinstance(detector, YuNetDetector) and detector.small_face_zoom > 1 and zoom_every > 1:
        return VideoFaceSearch(detector, zoom_every)
    return detector


@dataclass
class VideoFaces:
    """One video's (or camera's) frames, given in order: each one's faces, cut out by a finder whose YuNet takes the
    zoomed look on some frames only, and their ids across the frames. fer-predict and ``EmotionReader.video`` both
    read a video through it."""

    finder: FaceFinder
    tracker: FaceTracker

    @classmethod
    def start(cls, finder: FaceFinder, zoom_every: int, tracking: dict[str, Any]) -> VideoFaces:
        """``finder`` as photos use it; ``zoom_every`` and ``tracking``: conf/predict.yaml's ``video`` settings."""
        return cls(replace(finder, detector=video_detector(finder.detector, zoom_every)), FaceTracker(**tracking))

    def cut_out(self, frame: np.ndarray) -> tuple[list[Face], list[Box], list[np.ndarray], list[int]]:
        """``FaceFinder.cut_out``'s faces, squares and crops for the next frame, and each face's id."""
        faces, boxes, crops = self.finder.cut_out(frame)
        return faces, boxes, crops, self.tracker.assign([face.box for face in faces])
