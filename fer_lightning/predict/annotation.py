"""Copies of the input pictures and videos with each face's box and label drawn on them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_lightning.errors import FerError
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


VP8 = {"deadline": "good", "cpu-used": "5", "b": "2M"}  # libvpx's speed (0-16) and target bit rate


class AnnotatedVideos:
    """Annotated copies of videos: each one's sampled frames, boxed and labelled, in a WebM file (VP8) played at the
    rate they were sampled at, so that it lasts as long as its source. WebM because browsers play it, and so do
    notebooks and editors that show video through one, and because a killed run's copy still plays up to its last
    frames written (docs/design.md). A file is opened on its first frame, whose size it takes (shrunk to
    ``MAX_SIDE``, each side even, as VP8's colour planes need), and closed once its source has ended and its last
    frame is in: a folder of videos keeps one encoder open, not one per video.

    The encoding is PyAV's libvpx at its ``good`` deadline, speed 5. OpenCV's ``VideoWriter`` runs libvpx at
    FFmpeg's default speed, with no setting to change it, and a 720p clip's run took 1.4 times as long with it
    (results.md)."""

    SUFFIX = ".webm"
    MAX_SIDE = 1280  # px: VP8's time grows with the pixels, and a 4K phone video's copy is for watching, not measuring

    def __init__(self) -> None:
        self._targets: dict[Path, tuple[Path, float]] = {}  # source -> (its copy, frames per second)
        self._copies: dict[Path, tuple[Any, Any]] = {}  # source -> (PyAV container, its video stream)
        self._ended: set[Path] = set()

    def start(self, source: Path, where: Path, frames_per_second: float) -> None:
        """Frames of ``source`` will come, sampled at this rate; its copy is ``where`` with ``.webm`` added."""
        self._targets[source] = (where if where.suffix.lower() == self.SUFFIX else
                                 where.with_name(where.name + self.SUFFIX), frames_per_second)

    def target(self, source: Path) -> Path | None:
        """Where the copy of ``source`` is written; None for a video that was not started."""
        return self._targets[source][0] if source in self._targets else None

    def write(self, source: Path, frame: np.ndarray) -> None:
        """The next frame of ``source``'s copy, a BGR picture, resized to the copy's size: the first frame's (a frame
        of another size comes from a stream that changes resolution)."""
        import av  # here: only a run that writes a video's copy needs it

        if source not in self._copies:
            self._copies[source] = self._open(source, frame.shape[1], frame.shape[0])
        container, stream = self._copies[source]
        if (frame.shape[1], frame.shape[0]) != (stream.width, stream.height):
            frame = cv2.resize(frame, (stream.width, stream.height), interpolation=cv2.INTER_AREA)
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")):
            container.mux(packet)

    def _open(self, source: Path, width: int, height: int) -> tuple[Any, Any]:
        import av

        target, rate = self._targets[source]
        shrink = min(1.0, self.MAX_SIDE / max(width, height))
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            container = av.open(str(target), "w", format="webm")
            stream = container.add_stream("libvpx", rate=Fraction(rate).limit_denominator(1001), options=dict(VP8))
            stream.width, stream.height = (max(2, round(side * shrink) // 2 * 2) for side in (width, height))
            stream.pix_fmt = "yuv420p"
            container.start_encoding()  # the file is created here, not at the first frame's packet
        except (OSError, av.FFmpegError) as err:
            raise FerError(f"{target}: cannot write a WebM video here ({err}; annotate=false: no copies)") from None
        return container, stream

    def end(self, source: Path) -> None:
        """No frame of ``source`` comes after those already added; its file closes at the next ``close_ended``."""
        self._ended.add(source)

    def close_ended(self) -> None:
        """Close the files of the videos that have ended: call it once their pending frames are written."""
        for source in self._ended & self._copies.keys():
            _finish(*self._copies.pop(source))

    def close(self) -> None:
        """Close every file, ended or not (a stopped run's copies then play up to their last frame written)."""
        for container, stream in self._copies.values():
            _finish(container, stream)
        self._copies.clear()


def _finish(container: Any, stream: Any) -> None:
    """The encoder's last frames written, then the file closed."""
    for packet in stream.encode():
        container.mux(packet)
    container.close()
