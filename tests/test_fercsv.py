from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SPLIT_SIZES, synthetic_frame

from fer_lightning.data import csv_reader
from fer_lightning.data.csv_reader import FerDataError, load_fer2013, parse_csv, save_npz_atomically


def write(tmp_path: Path, frame: pd.DataFrame, name: str = "bad.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def test_parses_images_labels_and_splits(fer_csv: Path) -> None:
    frame = synthetic_frame()
    data = parse_csv(fer_csv)
    assert data.images.shape == (len(frame), 48, 48) and data.images.dtype == np.uint8
    first = np.array(frame.pixels[0].split(), dtype=np.uint8).reshape(48, 48)
    np.testing.assert_array_equal(data.images[0], first)
    np.testing.assert_array_equal(data.labels, frame.emotion.to_numpy())
    for split, n in SPLIT_SIZES.items():
        assert len(data.split(split)[1]) == n


def test_reads_gzip(tmp_path: Path) -> None:
    path = tmp_path / "fer.csv.gz"
    synthetic_frame().to_csv(path, index=False)
    assert len(parse_csv(path).labels) == sum(SPLIT_SIZES.values())


def test_cache_is_written_then_used(fer_csv: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = load_fer2013(fer_csv, cache_dir)
    [cache] = cache_dir.glob("*.npz")
    cache.write_bytes(cache.read_bytes())  # still valid
    second = load_fer2013(fer_csv, cache_dir)
    np.testing.assert_array_equal(first.images, second.images)
    # A changed CSV (size/mtime) must not be served from the old cache.
    frame = synthetic_frame(seed=1)
    frame.to_csv(fer_csv, index=False)
    third = load_fer2013(fer_csv, cache_dir)
    assert not np.array_equal(third.images, first.images)
    assert len(list(cache_dir.glob("*.npz"))) == 2


def test_loads_started_together_parse_once(fer_csv: Path, tmp_path: Path, monkeypatch) -> None:
    """Runs started side by side on a CSV no cache holds yet: one parses it, the others wait on its lock and load
    the cache it wrote."""
    parses: list[int] = []

    def slow_parse(*args, **kwargs):
        parses.append(1)
        time.sleep(1.0)  # long enough for the other loads to arrive while this one parses
        return parse_csv(*args, **kwargs)

    monkeypatch.setattr(csv_reader, "parse_csv", slow_parse)
    with ThreadPoolExecutor(3) as pool:
        loaded = list(pool.map(lambda _: load_fer2013(fer_csv, tmp_path / "cache"), range(3)))
    assert len(parses) == 1
    for data in loaded[1:]:
        np.testing.assert_array_equal(data.images, loaded[0].images)


def test_missing_file_says_how_to_point_at_the_data(tmp_path: Path) -> None:
    with pytest.raises(FerDataError, match=r"not found.*FER2013_CSV.*data\.csv_path"):
        load_fer2013(tmp_path / "nope.csv")
    with pytest.raises(FerDataError, match="FER2013_CSV"):
        load_fer2013(None)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, synthetic_frame().drop(columns="Usage"))
    with pytest.raises(FerDataError, match=r"missing column\(s\) Usage"):
        parse_csv(path)


@pytest.mark.parametrize(
    ("column", "value", "message"),
    [
        ("pixels", "1 2 3", "pixels does not hold 2304 values"),
        ("pixels", "12 x 7", "pixels holds something other than space-separated whole numbers"),
        ("pixels", "", "pixels holds something other than space-separated whole numbers"),
        ("emotion", "7", "emotion is not a whole number 0-6"),
        ("emotion", "-1", "emotion is not a whole number 0-6"),
        ("emotion", "happy", "emotion is not a whole number 0-6"),
        ("Usage", "Validation", "Usage is not one of Training, PublicTest, PrivateTest"),
    ],
)
def test_bad_row_error_names_the_line(tmp_path: Path, column: str, value: str, message: str) -> None:
    frame = synthetic_frame().astype(str)
    frame.loc[4, column] = value  # data row 4 is file line 6 (header is line 1)
    with pytest.raises(FerDataError, match=rf"bad\.csv: line 6: {message}"):
        parse_csv(write(tmp_path, frame))


def test_pixel_above_255_is_an_error(tmp_path: Path) -> None:
    frame = synthetic_frame()
    frame.loc[9, "pixels"] = " ".join(["300"] + ["0"] * 2303)
    with pytest.raises(FerDataError, match=r"line 11: pixels has a value above 255"):
        parse_csv(write(tmp_path, frame))


def test_many_bad_rows_are_summarised(tmp_path: Path) -> None:
    frame = synthetic_frame()
    frame.loc[:9, "pixels"] = "1 2"
    with pytest.raises(FerDataError, match=r"lines 2, 3, 4, 5, 6 and 5 more: pixels does not hold"):
        parse_csv(write(tmp_path, frame))


def test_drop_mode_skips_and_reports_bad_rows(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    frame = synthetic_frame().astype(str)
    frame.loc[0, "emotion"] = "9"
    frame.loc[3, "pixels"] = "5 5"
    data = load_fer2013(write(tmp_path, frame), tmp_path / "cache", bad_rows="drop")
    assert len(data.labels) == len(frame) - 2
    assert data.dropped_lines == [2, 5]
    assert "Dropped 2 malformed row(s)" in caplog.text
    cached = load_fer2013(tmp_path / "bad.csv", tmp_path / "cache", bad_rows="drop")
    assert cached.dropped_lines == [2, 5]


def test_unknown_bad_rows_policy_is_rejected(fer_csv: Path) -> None:
    with pytest.raises(FerDataError, match=r"data\.bad_rows must be 'raise' or 'drop'"):
        load_fer2013(fer_csv, bad_rows="fix")


def test_not_a_csv_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "fer.csv.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(FerDataError, match="cannot be read as a CSV"):
        parse_csv(path)


def test_empty_file_truncated_gzip_and_non_utf8_are_clear_errors(fer_csv: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(FerDataError, match=r"empty\.csv: is empty; expected a header emotion,pixels,Usage"):
        parse_csv(empty)
    truncated = tmp_path / "cut.csv.gz"
    synthetic_frame().to_csv(tmp_path / "whole.csv.gz", index=False)
    truncated.write_bytes((tmp_path / "whole.csv.gz").read_bytes()[:5000])
    with pytest.raises(FerDataError, match=r"cut\.csv\.gz: cannot be read as a CSV \(EOFError"):
        parse_csv(truncated)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(fer_csv.read_bytes().replace(b"Training", b"Entra\xeenement", 1))
    with pytest.raises(FerDataError, match=r"latin1\.csv: cannot be read as a CSV \(UnicodeDecodeError"):
        parse_csv(latin1)


def test_caches_written_by_several_processes_at_once_do_not_collide(tmp_path: Path) -> None:
    target = tmp_path / "cache" / "faces.npz"
    images = np.arange(48 * 48 * 50, dtype=np.int64).astype(np.uint8).reshape(50, 48, 48)
    with ThreadPoolExecutor(4) as pool:  # each write gets its own temporary file; the last rename wins
        list(pool.map(lambda _: save_npz_atomically(target, images=images), range(40)))
    np.testing.assert_array_equal(np.load(target)["images"], images)
    assert [p.name for p in target.parent.iterdir()] == ["faces.npz"]  # no temporary file left behind
