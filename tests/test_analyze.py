"""fer-analyze: sample faces and class balance, as PNGs and TensorBoard images."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fer_lightning.data.analysis import analyze
from fer_lightning.errors import ConfigError


def test_analyze_writes_pngs_and_tensorboard_images(fer_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    written = analyze(str(fer_csv), out, tmp_path / "cache", per_class=2, audit=False)
    assert written == [out / "samples.png", out / "class_distribution.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    images = EventAccumulator(str(out / "tensorboard")).Reload().Tags()["images"]
    assert {"data/samples", "data/class_distribution"} <= set(images)



def test_a_sample_count_below_one_or_a_switch_that_is_no_switch_is_refused_before_the_csv_is_read(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="per_class must be a whole number of faces, at least 1; got 0"):
        analyze(str(tmp_path / "never_read.csv"), tmp_path / "analysis", per_class=0)
    with pytest.raises(ConfigError, match="near_duplicate_check must be true or false, got 'maybe'"):
        analyze(str(tmp_path / "never_read.csv"), tmp_path / "analysis", near_duplicate_check="maybe")
