"""YuNet on a video's sampled frames: the zoomed pass for small faces only on the frames where it can add one.

On a photo YuNet looks twice (detectors.py): at the picture shrunk to 960 px, then at it zoomed twice, for the faces
under about 50 px that the first look misses. The zoomed look has four times the pixels and takes most of the time
(441 of 520 ms on a 720p frame, docs/results.md). A video's sampled frames follow each other closely, so on a video it
runs only
- on every ``every``-th sampled frame, the first one included: a small face that comes into view is found within
  that many sampled frames;
- on the ``every - 1`` frames after one where it found a face the first look did not: a small face, once found, is
  followed, through the frames where YuNet misses it now and then;
- where the first look finds fewer faces than the frame before had: a face that walked away or turned is looked
  for at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_lightning.faces.detectors import Detector, Face, YuNetDetector, as_bgr


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
