"""Read the FER-2013 CSV (``emotion,pixels,Usage``) into uint8 arrays, strictly, with an on-disk cache.

The Keras study zero-padded short pixel rows without a word; here every malformed row is an error that names its
line, unless the caller asks to drop bad rows, in which case the dropped lines are reported.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import logging
import lzma
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, TypeVar

import numpy as np
import pandas as pd
from filelock import FileLock

from fer_lightning.errors import ConfigError, FerError
from fer_lightning.fer2013 import IMAGE_SIDE, PIXELS_PER_IMAGE, SPLITS

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("emotion", "pixels", "Usage")
BadRows = Literal["raise", "drop"]
T = TypeVar("T")
_CACHE_VERSION = 3


class FerDataError(FerError, ValueError):
    """A problem with the FER-2013 CSV that the user has to fix (or choose to drop)."""


@dataclass
class FerArrays:
    """The whole data set as arrays: images (N, 48, 48) uint8, labels (N,) int64, usage (N,) index into SPLITS,
    and lines (N,), each row's line in the CSV file."""

    images: np.ndarray
    labels: np.ndarray
    usage: np.ndarray
    lines: np.ndarray
    dropped_lines: list[int] = field(default_factory=list)

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """The split's images and labels; ConfigError for a name that is not one of the three (a ``split=`` knob)."""
        if name not in SPLITS:
            raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {name!r}")
        mask = self.usage == SPLITS.index(name)
        return self.images[mask], self.labels[mask]

    def select(self, keep: np.ndarray, labels: np.ndarray | None = None) -> FerArrays:
        """The rows where ``keep`` is true, with ``labels`` (all rows') in place of the CSV's where given."""
        labels = self.labels if labels is None else labels
        return FerArrays(self.images[keep], labels[keep], self.usage[keep], self.lines[keep], self.dropped_lines)


def existing_csv(path: str | os.PathLike | None) -> Path:
    """``path`` as a Path, or FerDataError saying where to get FER-2013 and how to point at it."""
    if not path or not Path(path).expanduser().is_file():
        where = f"not found at {str(path)!r}" if path else "not named (FER2013_CSV is not set)"
        raise FerDataError(
            f"FER-2013 CSV {where}. Get fer2013.csv(.gz) (Kaggle 'Challenges in Representation "
            "Learning: Facial Expression Recognition', columns emotion,pixels,Usage) and point to it with "
            "FER2013_CSV=/path/to/fer2013.csv.gz or data.csv_path=/path/to/fer2013.csv.gz")
    return Path(path).expanduser()


def _describe(lines: list[int] | np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(n) for n in lines[:limit])
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return f"line{'s' if len(lines) > 1 else ''} {shown}{more}"


def _open_text(path: Path) -> IO[str]:
    """The CSV as text, decompressed by suffix as pandas would (.gz, .bz2, .xz)."""
    openers: dict[str, Callable[..., IO[str]]] = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
    return openers.get(path.suffix.lower(), open)(path, "rt", encoding="utf-8-sig", newline="")


def _read_rows(path: Path) -> tuple[list[str], list[list[str]], np.ndarray]:
    """Header, rows and each row's 1-based line number in the file (blank lines are skipped, not counted as rows).

    csv.reader rather than pandas so that every row keeps its true line number and a row with too many or too
    few fields is one bad row, not a parser error for the whole file.
    """
    rows, lines = [], []
    try:
        with _open_text(path) as file:
            reader = csv.reader(file)
            header = next(reader, [])
            for row in reader:
                if row:
                    rows.append(row)
                    lines.append(reader.line_num)
    except (csv.Error, UnicodeDecodeError, OSError, EOFError) as err:
        raise FerDataError(f"{path}: cannot be read as a CSV ({type(err).__name__}: {err})") from err
    return [name.strip() for name in header], rows, np.asarray(lines, dtype=np.int64)


# Deletes what a pixels field may hold, so that whatever is left is what it must not hold.
_PIXEL_CHARACTERS = str.maketrans("", "", "0123456789 \t")


def _parse_pixels(pixels: list[str], width_ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                    np.ndarray]:
    """Per row: whether the (stripped) field is ASCII digits and blanks only, how many values it holds, whether
    one is above 255; and the images, zeros where a row's pixels are not 48x48 values.

    Row by row: a whole-file int64 array (82 M values) and regular expressions over 300 MB of text took most of
    a 30-s parse of FER-2013; one row's 2,304 values stay in cache.
    """
    numeric = np.zeros(len(pixels), dtype=bool)
    counts = np.zeros(len(pixels), dtype=np.int64)
    too_big = np.zeros(len(pixels), dtype=bool)
    images = np.zeros((len(pixels), IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    for row, text in enumerate(pixels):
        # Python's \d and \s would also match other scripts' digits and spaces: ASCII only.
        if not width_ok[row] or not text or text.translate(_PIXEL_CHARACTERS):
            continue
        numeric[row] = True
        values = np.fromstring(text, dtype=np.int64, sep=" ")  # int64 saturates: absurdly long numbers stay > 255
        counts[row] = len(values)
        if len(values) == PIXELS_PER_IMAGE:
            too_big[row] = values.max() > 255
            images[row] = values.clip(0, 255).reshape(IMAGE_SIDE, IMAGE_SIDE)
    return numeric, counts, too_big, images


def _find_problems(df: pd.DataFrame, width_ok: np.ndarray) -> tuple[list[tuple[str, np.ndarray]], np.ndarray]:
    """Each kind of bad row with the row positions that have it, and the images of the rows whose pixels are fine.

    The images array holds zeros for rows with bad pixels; those rows are always among the problems.
    """
    numeric, counts, too_big, images = _parse_pixels(df["pixels"].str.strip().tolist(), width_ok)
    problems = [
        (f"does not have {len(df.columns)} fields ({','.join(df.columns)})", ~width_ok),
        ("emotion is not a whole number 0-6 (0 Angry ... 6 Neutral)",
         width_ok & ~df["emotion"].str.strip().str.fullmatch("[0-6]").to_numpy(bool)),
        (f"Usage is not one of {', '.join(SPLITS)}", width_ok & ~df["Usage"].str.strip().isin(SPLITS).to_numpy()),
        ("pixels holds something other than space-separated whole numbers", width_ok & ~numeric),
        (f"pixels does not hold {PIXELS_PER_IMAGE} values (48x48)", numeric & (counts != PIXELS_PER_IMAGE)),
        ("pixels has a value above 255", too_big),
    ]
    found = [(what, np.flatnonzero(mask)) for what, mask in problems]
    return [(what, rows) for what, rows in found if len(rows)], images


def parse_csv(path: str | os.PathLike, bad_rows: BadRows = "raise") -> FerArrays:
    """Parse and validate the CSV; raises FerDataError naming the lines at fault unless bad_rows='drop'.

    With 'drop', each malformed row is left out whole and its line reported in ``dropped_lines``; no row is
    ever padded, truncated or shifted into its neighbour's place.
    """
    path = existing_csv(path)
    header, rows, lines = _read_rows(path)
    if not header:
        raise FerDataError(f"{path}: is empty; expected a header emotion,pixels,Usage and one row per face")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise FerDataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected header emotion,pixels,Usage "
            f"but found {','.join(header)}"
        )
    if not rows:
        raise FerDataError(f"{path}: has a header but no rows")
    width_ok = np.array([len(row) == len(header) for row in rows])
    df = pd.DataFrame([row if ok else [""] * len(header) for row, ok in zip(rows, width_ok, strict=True)],
                      columns=header)
    problems, images = _find_problems(df, width_ok)
    bad = np.unique(np.concatenate([rows for _, rows in problems])) if problems else np.array([], dtype=int)
    if problems and bad_rows == "raise":
        detail = "; ".join(f"{_describe(lines[rows])}: {what}" for what, rows in problems)
        raise FerDataError(f"{path}: {detail} (set data.bad_rows=drop to skip such rows)")
    keep = np.setdiff1d(np.arange(len(df)), bad)
    if len(keep) == 0:
        raise FerDataError(f"{path}: every row is malformed, nothing left to use")
    good = df.iloc[keep]
    return FerArrays(
        images=images[keep],
        labels=good["emotion"].str.strip().astype(np.int64).to_numpy(),
        usage=good["Usage"].str.strip().map(SPLITS.index).to_numpy(np.int8),
        lines=lines[keep],
        dropped_lines=lines[bad].tolist(),
    )


def cache_file(path: str | os.PathLike, cache_dir: str | os.PathLike, bad_rows: BadRows) -> Path:
    """Where the parsed arrays of this CSV (its size and modification time) are cached."""
    path = Path(path).expanduser()
    stat = path.stat()
    stem = path.name.split(".")[0]
    return Path(cache_dir) / f"{stem}-v{_CACHE_VERSION}-{stat.st_size}-{stat.st_mtime_ns}-{bad_rows}.npz"


def save_npz_atomically(path: Path, **arrays: np.ndarray) -> None:
    """Write ``path`` through a temporary file of its own, renamed into place: a killed run never leaves a
    half-written file, and processes that write the same cache at once (parallel sweep jobs) do not collide."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".npz")
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)  # type: ignore[arg-type]  # numpy's stubs read **arrays as allow_pickle
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


def computed_once(cache: Path, compute: Callable[[], T], load: Callable[[Path], T | None],
                  save: Callable[[Path, T], None]) -> T:
    """What ``cache`` holds, computed only where ``load`` finds nothing there (it may refuse a stale file: None).

    Processes that need it at the same moment (runs started side by side, fer-analyze auditing beside them, a
    study's workers) take turns on a lock beside the cache: the first computes and saves it, the others wait for it
    and load it instead of each computing it again.
    """
    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(cache.with_suffix(".lock")):
        if cache.is_file() and (found := load(cache)) is not None:
            return found
        value = compute()
        save(cache, value)
        return value


def load_fer2013(
    path: str | os.PathLike | None, cache_dir: str | os.PathLike | None = None, bad_rows: BadRows = "raise"
) -> FerArrays:
    """Load the CSV through a cache keyed by the file's size and mtime, so later runs skip the 10 s parse (and
    processes started together on a CSV no cache holds yet parse it once: ``computed_once``)."""
    path = existing_csv(path)
    if bad_rows not in ("raise", "drop"):
        raise FerDataError(f"data.bad_rows must be 'raise' or 'drop', got {bad_rows!r}")
    if cache_dir:
        data = computed_once(cache_file(path, cache_dir, bad_rows), lambda: _parse_timed(path, bad_rows), _load_cache,
                             _save_cache)
    else:
        data = _parse_timed(path, bad_rows)
    if data.dropped_lines:
        log.warning("Dropped %d malformed row(s) of %s: %s", len(data.dropped_lines), path,
                    _describe(data.dropped_lines, limit=20))
    return data


def _parse_timed(path: Path, bad_rows: BadRows) -> FerArrays:
    start = time.perf_counter()
    data = parse_csv(path, bad_rows)
    log.info("Parsed %d faces from %s in %.1f s", len(data.labels), path, time.perf_counter() - start)
    return data


def _load_cache(cache: Path) -> FerArrays:
    start = time.perf_counter()
    with np.load(cache) as npz:
        data = FerArrays(npz["images"], npz["labels"], npz["usage"], npz["lines"], npz["dropped_lines"].tolist())
    log.info("Loaded %d faces from cache %s in %.2f s", len(data.labels), cache, time.perf_counter() - start)
    return data


def _save_cache(cache: Path, data: FerArrays) -> None:
    save_npz_atomically(cache, images=data.images, labels=data.labels, usage=data.usage, lines=data.lines,
                        dropped_lines=np.asarray(data.dropped_lines, dtype=np.int64))
    log.info("Wrote cache %s", cache)
