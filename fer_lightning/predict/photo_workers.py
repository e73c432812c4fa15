"""Photos read and their faces cut out ahead of the model, in worker processes.

A phone's photo costs fer-predict about 0.9 s on a 2-core machine, nearly all of it reading the file and YuNet's two
looks, and YuNet holds Python's lock while it runs, on about one core: threads cannot share that work, processes can
(docs/results.md). Each worker builds its own face finder from fer-predict's settings, reads a photo and returns its
faces, squares and crops (and the picture, where an annotated copy needs it); the model stays in the main process,
which takes the results in the files' order. With one worker a thread reads one photo ahead instead.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
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


_finder: FaceFinder | None = None  # each worker's own, built by _start
MOST_AUTO_WORKERS = 8  # each holds a photo or three, 36 MB each at 12 megapixels


def worker_count(setting: int | str) -> int:
    """fer-predict's ``workers``: a number, or auto, one for each core (at most 8)."""
    if setting == "auto":
        return min(os.cpu_count() or 1, MOST_AUTO_WORKERS)
    return int(setting)


def _start(settings: dict[str, Any]) -> None:
    global _finder
    _finder = FaceFinder.from_settings(**settings)


def _cut_out(path: Path, keep_image: bool) -> CutOut:
    assert _finder is not None, "a worker reads photos only once _start has built its finder"
    image = read_image(path)
    faces, boxes, crops = _finder.cut_out(image)
    return CutOut(image if keep_image else None, faces, boxes, crops)


class PhotoWorkers:
    """``workers`` processes (one: a thread) that cut photos out ahead of the caller, at most two each ahead, so that
    the pictures waiting stay few. A context manager: leaving it stops the workers, and drops the photos not taken."""

    def __init__(self, finder_settings: dict[str, Any], workers: int, keep_images: bool) -> None:
        """``finder_settings``: as ``FaceFinder.from_settings`` takes them (loading.py's ``finder_settings``);
        ``keep_images``: send each picture back too, for its annotated copy."""
        self.workers, self.keep_images = workers, keep_images
        self._executor: Executor = (
            ProcessPoolExecutor(workers, multiprocessing.get_context("forkserver"), _start, (finder_settings,))
            if workers > 1 else ThreadPoolExecutor(1, "photo", _start, (finder_settings,)))

    def ahead(self, files: list[Path]) -> Iterator[tuple[Path, Future[CutOut] | None]]:
        """Each file in order, with its photo's cut-out to come (its ``result()`` raises the photo's MediaError), or
        None for a video, which the caller reads itself: a video's frames are searched in order."""
        photos = (path for path in files if not is_video(path))
        waiting: deque[Future[CutOut]] = deque()

        def submit_next() -> None:
            path = next(photos, None)
            if path is not None:
                waiting.append(self._executor.submit(_cut_out, path, self.keep_images))

        for _ in range(2 * self.workers):
            submit_next()
        for path in files:
            if is_video(path):
                yield path, None
            else:
                submit_next()
                yield path, waiting.popleft()

    def __enter__(self) -> PhotoWorkers:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
