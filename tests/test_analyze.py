from __future__ import annotations

from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fer_lightning.analyze import main


def test_analyze_writes_pngs_and_tensorboard_images(fer_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    main(["--csv", str(fer_csv), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--per-class", "2"])
    for name in ("samples.png", "class_distribution.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    images = EventAccumulator(str(out / "tensorboard")).Reload().Tags()["images"]
    assert {"data/samples", "data/class_distribution"} <= set(images)


def test_analyze_missing_csv_exits_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="error: FER-2013 CSV not found"):
        main(["--csv", str(tmp_path / "missing.csv"), "--out", str(tmp_path)])
