"""Photos read and their faces cut out on a thread of their own, a few ahead of the model.

A phone's photo costs fer-predict most of a second on a 2-core machine, nearly all of it reading the file and YuNet's
two looks; the main thread meanwhile runs the model and writes annotated copies. Pillow's decoder and OpenCV let go of
Python's lock, so on a thread the next photos are read and searched while the main thread works on the last ones
(docs/results.md has the gain). YuNet itself holds the lock, so a second such thread would wait on the first, and two
worker processes gained nothing more on two cores. The thread has its own face finder, so no detector is used from
two threads at once.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from fer_lightning.faces.detectors import Box, Face
from fer_lightning.faces.finder import FaceFinder
from fer_lightning.predict.media import is_video, read_image


@dataclass(frozen=True)
class CutOut:
    """A photo's faces, largest first, the squares their crops were cut from, the crops, and the picture itself where
    it was asked for."""

    image: np.ndarray | None
    faces: list[Face]
    boxes: list[Box]
    crops: list[np.ndarray]


class PhotosAhead:
    """Photos cut out on a thread, at most ``AHEAD`` ahead of the caller, so that few pictures wait in memory. A
    context manager: leaving it drops the photos not taken and waits for the one being read."""

    AHEAD = 1

    def __init__(self, finder_settings: dict[str, Any], keep_images: bool) -> None:
        """``finder_settings``: as ``FaceFinder.from_settings`` takes them (loading.py's ``finder_settings``);
        ``keep_images``: keep each picture too, for its annotated copy."""
        self.finder, self.keep_images = FaceFinder.from_settings(**finder_settings), keep_images
        self._thread = ThreadPoolExecutor(1, "photos")

    def ahead(self, files: list[Path]) -> Iterator[tuple[Path, Future[CutOut] | None]]:
        """Each file in order, with its photo's cut-out to come (its ``result()`` raises the photo's MediaError), or
        None for a video, which the caller reads itself: a video's frames are searched in order."""
        photos = (path for path in files if not is_video(path))
        waiting: deque[Future[CutOut]] = deque()

        def submit_next() -> None:
            path = next(photos, None)
            if path is not None:
                waiting.append(self._thread.submit(self._cut_out, path))

        for _ in range(self.AHEAD):
            submit_next()
        for path in files:
            if is_video(path):
                yield path, None
            else:
                submit_next()
                yield path, waiting.popleft()

    def _cut_out(self, path: Path) -> CutOut:
        image = read_image(path)
        faces, boxes, crops = self.finder.cut_out(image)
        return CutOut(image if self.keep_images else None, faces, boxes, crops)

    def __enter__(self) -> PhotosAhead:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._thread.shutdown(wait=True, cancel_futures=True)
