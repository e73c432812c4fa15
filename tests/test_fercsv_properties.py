"""Property tests of the CSV parser: a malformed row raises an error naming its line, or is dropped and
counted with data.bad_rows=drop, and the good rows come through untouched, never padded or shifted."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fer_lightning.data.csv_reader import FerDataError, parse_csv
from fer_lightning.fer2013 import PIXELS_PER_IMAGE, SPLITS

JUNK_TOKENS = ["x", "1.5", "-3", "+4", "nan", "1e3", "0x1f", "\u0663", "1\xa02", "12,"]


@dataclass
class Row:
    emotion: int
    pixels: np.ndarray
    usage: str


def good_row(i: int) -> Row:
    return Row(i % 7, (np.arange(PIXELS_PER_IMAGE) * (i + 1) + i) % 256, SPLITS[i % 3])


@st.composite
def faulty_line(draw: st.DrawFn, row: Row) -> str:
    """The row's CSV line with one kind of damage."""
    tokens = [str(v) for v in row.pixels]
    emotion, usage = str(row.emotion), row.usage
    fault = draw(st.sampled_from(["short", "long", "junk", "too_big", "emotion", "usage", "extra_field",
                                  "missing_field"]))
    if fault == "short":
        tokens = tokens[: draw(st.integers(0, PIXELS_PER_IMAGE - 1))]
    elif fault == "long":
        tokens += ["7"] * draw(st.integers(1, 60))
    elif fault in ("junk", "too_big"):
        bad = draw(st.sampled_from(JUNK_TOKENS)) if fault == "junk" else str(draw(st.integers(256, 10**30)))
        tokens[draw(st.integers(0, PIXELS_PER_IMAGE - 1))] = bad
    elif fault == "emotion":
        emotion = draw(st.sampled_from(["7", "-1", "x", "", "3.0", "\u0663", "1 2"]))
    elif fault == "usage":
        usage = draw(st.sampled_from(["training", "Test", "", "Validation", "Public Test"]))
    pixels = " ".join(tokens)
    if '"' not in pixels and "," in pixels:
        pixels = f'"{pixels}"'  # a quoted field is still one field; the junk inside it is the fault
    if fault == "extra_field":
        return f"{emotion},{pixels},{usage},extra"
    if fault == "missing_field":
        return f"{emotion},{pixels}"
    return f"{emotion},{pixels},{usage}"


@st.composite
def damaged_files(draw: st.DrawFn) -> tuple[str, list[Row], list[int]]:
    """CSV text, the rows that are intact (in order) and the 1-based line numbers of the damaged ones."""
    lines, intact, damaged = ["emotion,pixels,Usage"], [], []
    for i in range(draw(st.integers(1, 10))):
        while draw(st.booleans()) and draw(st.booleans()):
            lines.append("")  # blank lines are skipped but still count as file lines
        row = good_row(i)
        if draw(st.booleans()):
            lines.append(draw(faulty_line(row)))
            damaged.append(len(lines))
        else:
            lines.append(f"{row.emotion},{' '.join(map(str, row.pixels))},{row.usage}")
            intact.append(row)
    return "\n".join(lines) + "\n", intact, damaged


def named_lines(message: str) -> set[int]:
    return {int(n) for group in re.findall(r"lines? ([\d, ]+)", message) for n in re.findall(r"\d+", group)}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_files())
def test_malformed_rows_raise_naming_their_lines_or_are_dropped_and_counted(
    case: tuple[str, list[Row], list[int]],
) -> None:
    text, intact, damaged = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fer.csv"
        path.write_text(text)
        if damaged:
            with pytest.raises(FerDataError) as raised:
                parse_csv(path)
            shown = named_lines(str(raised.value))
            assert shown and shown <= set(damaged) and min(damaged) in shown, str(raised.value)[:300]
        if not intact:
            with pytest.raises(FerDataError, match="every row is malformed"):
                parse_csv(path, bad_rows="drop")
            return
        data = parse_csv(path, bad_rows="drop")
    assert data.dropped_lines == damaged
    np.testing.assert_array_equal(data.images.reshape(len(intact), -1), np.stack([r.pixels for r in intact]))
    assert data.labels.tolist() == [r.emotion for r in intact]
    assert [SPLITS[u] for u in data.usage] == [r.usage for r in intact]
