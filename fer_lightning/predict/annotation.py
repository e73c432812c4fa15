"""Copies of the input pictures and videos with each face's box and label drawn on them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


class AnnotatedVideos:
    """Annotated copies of videos: each one's sampled frames, boxed and labelled, in a WebM file (VP8) played at the
    rate they were sampled at, so that it lasts as long as its source. WebM because browsers play it, and so do
    notebooks and editors that show video through one; of the codecs OpenCV's pip wheels write, the MPEG-4 that
    browsers play (H.264) is not among them. A file is opened on its first frame, whose size it takes (shrunk to
    ``MAX_SIDE``), and closed once its source has ended and its last frame is in: a folder of videos keeps one encoder
    open, not one per video."""

    SUFFIX = ".webm"
    MAX_SIDE = 1280  # px: VP8's time grows with the pixels, and a 4K phone video's copy is for watching, not measuring

    def __init__(self) -> None:
        self._targets: dict[Path, tuple[Path, float]] = {}  # source -> (its copy, frames per second)
        self._writers: dict[Path, tuple[cv2.VideoWriter, tuple[int, int]]] = {}  # source -> (writer, (width, height))
        self._ended: set[Path] = set()

    def start(self, source: Path, where: Path, frames_per_second: float) -> None:
        """Frames of ``source`` will come, sampled at this rate; its copy is ``where`` with ``.webm`` added."""
        self._targets[source] = (where if where.suffix.lower() == self.SUFFIX else
                                 where.with_name(where.name + self.SUFFIX), frames_per_second)

    def target(self, source: Path) -> Path | None:
        """Where the copy of ``source`` is written; None for a video that was not started."""
        return self._targets[source][0] if source in self._targets else None

    def write(self, source: Path, frame: np.ndarray) -> None:
        """The next frame of ``source``'s copy, a BGR picture, resized to the copy's size: the first frame's, at most
        ``MAX_SIDE`` long (a frame of another size, from a stream that changes resolution, would be dropped by the
        encoder with only a warning)."""
        if source not in self._writers:
            target, rate = self._targets[source]
            target.parent.mkdir(parents=True, exist_ok=True)
            shrink = min(1.0, self.MAX_SIDE / max(frame.shape[:2]))
            size = round(frame.shape[1] * shrink), round(frame.shape[0] * shrink)
            with _stderr_muted():
                writer = cv2.VideoWriter(str(target), cv2.VideoWriter.fourcc(*"VP80"), rate, size)
            if not writer.isOpened():
                raise FerError(f"{target}: OpenCV cannot write a WebM video here (annotate=false: no copies)")
            self._writers[source] = writer, size
        writer, size = self._writers[source]
        writer.write(frame if (frame.shape[1], frame.shape[0]) == size else
                     cv2.resize(frame, size, interpolation=cv2.INTER_AREA))

    def end(self, source: Path) -> None:
        """No frame of ``source`` comes after those already added; its file closes at the next ``close_ended``."""
        self._ended.add(source)

    def close_ended(self) -> None:
        """Close the files of the videos that have ended: call it once their pending frames are written."""
        for source in self._ended & self._writers.keys():
            self._writers.pop(source)[0].release()

    def close(self) -> None:
        """Close every file, ended or not (a stopped run's copies then play up to their last frame written)."""
        for writer, _ in self._writers.values():
            writer.release()
        self._writers.clear()


@contextmanager
def _stderr_muted() -> Iterator[None]:
    """The process's standard error (file descriptor 2, which C code writes to) sent to /dev/null for a moment: OpenCV
    prints a line for every WebM file it opens (the container has no codec tags, so it says VP80's is not supported,
    then writes VP8 all the same), which no log level of OpenCV's silences."""
    saved = os.dup(2)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
