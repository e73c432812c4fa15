"""Read the FER-2013 CSV (``emotion,pixels,Usage``) into uint8 arrays, strictly, with an on-disk cache.

The Keras study zero-padded short pixel rows without a word; here every malformed row is an error that names its
line, unless the caller asks to drop bad rows, in which case the dropped lines are reported.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

CLASS_NAMES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
SPLITS = ("Training", "PublicTest", "PrivateTest")
IMAGE_SIDE = 48
PIXELS_PER_IMAGE = IMAGE_SIDE * IMAGE_SIDE
REQUIRED_COLUMNS = ("emotion", "pixels", "Usage")
BadRows = Literal["raise", "drop"]
_CACHE_VERSION = 1


class FerDataError(ValueError):
    """A problem with the FER-2013 CSV that the user has to fix (or choose to drop)."""


@dataclass
class FerArrays:
    """The whole data set as arrays: images (N, 48, 48) uint8, labels (N,) int64, usage (N,) index into SPLITS."""

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    dropped_lines: list[int] = field(default_factory=list)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        mask = self.usage == SPLITS.index(name)
        return self.images[mask], self.labels[mask]


def missing_file_message(path: str | os.PathLike | None) -> str:
    return (
        f"FER-2013 CSV not found at {str(path)!r}. Get fer2013.csv(.gz) (Kaggle 'Challenges in Representation "
        "Learning: Facial Expression Recognition', columns emotion,pixels,Usage) and point to it with "
        "FER2013_CSV=/path/to/fer2013.csv.gz or data.csv_path=/path/to/fer2013.csv.gz"
    )


def _lines(rows: np.ndarray) -> list[int]:
    """Data-frame row positions to 1-based file line numbers (line 1 is the header)."""
    return [int(r) + 2 for r in rows]


def _describe(lines: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(n) for n in lines[:limit])
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def _find_problems(df: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    """Each kind of bad row with the row positions that have it; empty when the file is clean."""
    pixels = df["pixels"].str.strip()
    numeric = pixels.str.fullmatch(r"\d+(?:\s+\d+)*")
    counts = pixels.str.count(r"\s+") + 1
    problems = [
        ("emotion is not a whole number 0-6 (0 Angry ... 6 Neutral)", ~df["emotion"].str.fullmatch(r"\s*[0-6]\s*")),
        (f"Usage is not one of {', '.join(SPLITS)}", ~df["Usage"].isin(SPLITS)),
        ("pixels holds something other than space-separated whole numbers", ~numeric),
        (f"pixels does not hold {PIXELS_PER_IMAGE} values (48x48)", numeric & (counts != PIXELS_PER_IMAGE)),
    ]
    found = [(what, np.flatnonzero(mask.to_numpy())) for what, mask in problems]
    return [(what, rows) for what, rows in found if len(rows)]


def _parse_pixels(pixels: pd.Series, path: Path, row_offset: np.ndarray) -> np.ndarray:
    flat = np.fromstring(" ".join(pixels.str.strip().tolist()), dtype=np.int64, sep=" ")
    images = flat.reshape(-1, IMAGE_SIDE, IMAGE_SIDE)
    too_big = np.flatnonzero(images.reshape(len(images), -1).max(axis=1) > 255)
    if len(too_big):
        raise FerDataError(f"{path}: {_describe(_lines(row_offset[too_big]))}: pixels has a value above 255")
    return images.astype(np.uint8)


def parse_csv(path: str | os.PathLike, bad_rows: BadRows = "raise") -> FerArrays:
    """Parse and validate the CSV; raises FerDataError naming the lines at fault unless bad_rows='drop'."""
    path = Path(path)
    if not path.is_file():
        raise FerDataError(missing_file_message(path))
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as err:
        raise FerDataError(f"{path}: cannot be read as a CSV ({err})") from err
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise FerDataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected header emotion,pixels,Usage "
            f"but found {','.join(df.columns)}"
        )
    if df.empty:
        raise FerDataError(f"{path}: has a header but no rows")
    problems = _find_problems(df)
    bad = np.unique(np.concatenate([rows for _, rows in problems])) if problems else np.array([], dtype=int)
    if problems and bad_rows == "raise":
        detail = "; ".join(f"{_describe(_lines(rows))}: {what}" for what, rows in problems)
        raise FerDataError(f"{path}: {detail} (set data.bad_rows=drop to skip such rows)")
    keep = np.setdiff1d(np.arange(len(df)), bad)
    if len(keep) == 0:
        raise FerDataError(f"{path}: every row is malformed, nothing left to use")
    good = df.iloc[keep]
    images = _parse_pixels(good["pixels"], path, keep)
    return FerArrays(
        images=images,
        labels=good["emotion"].astype(np.int64).to_numpy(),
        usage=good["Usage"].map(SPLITS.index).to_numpy(np.int8),
        dropped_lines=_lines(bad),
    )


def _cache_file(path: Path, cache_dir: Path, bad_rows: BadRows) -> Path:
    stat = path.stat()
    stem = path.name.split(".")[0]
    return cache_dir / f"{stem}-v{_CACHE_VERSION}-{stat.st_size}-{stat.st_mtime_ns}-{bad_rows}.npz"


def load_fer2013(
    path: str | os.PathLike | None, cache_dir: str | os.PathLike | None = None, bad_rows: BadRows = "raise"
) -> FerArrays:
    """Load the CSV through a cache keyed by the file's size and mtime, so later runs skip the 10 s parse."""
    if not path:
        raise FerDataError(missing_file_message(path))
    path = Path(path).expanduser()
    if not path.is_file():
        raise FerDataError(missing_file_message(path))
    if bad_rows not in ("raise", "drop"):
        raise FerDataError(f"data.bad_rows must be 'raise' or 'drop', got {bad_rows!r}")
    start = time.perf_counter()
    cache = _cache_file(path, Path(cache_dir), bad_rows) if cache_dir else None
    if cache is not None and cache.is_file():
        with np.load(cache) as npz:
            data = FerArrays(npz["images"], npz["labels"], npz["usage"], npz["dropped_lines"].tolist())
        log.info("Loaded %d faces from cache %s in %.2f s", len(data.labels), cache, time.perf_counter() - start)
    else:
        data = parse_csv(path, bad_rows)
        log.info("Parsed %d faces from %s in %.1f s", len(data.labels), path, time.perf_counter() - start)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(".tmp.npz")
            np.savez(partial, images=data.images, labels=data.labels, usage=data.usage,
                     dropped_lines=np.asarray(data.dropped_lines, dtype=np.int64))
            partial.replace(cache)  # atomic: a killed run never leaves a half-written cache behind
            log.info("Wrote cache %s", cache)
    if data.dropped_lines:
        log.warning("Dropped %d malformed row(s) of %s: %s", len(data.dropped_lines), path,
                    _describe(data.dropped_lines, limit=20))
    return data
