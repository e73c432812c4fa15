"""fer-analyze: sample faces and class balance, as PNGs and TensorBoard images."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import console_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fer_lightning.data.analysis import analyze


def test_analyze_writes_pngs_and_tensorboard_images(fer_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    written = analyze(str(fer_csv), out, tmp_path / "cache", per_class=2, audit=False)
    assert written == [out / "samples.png", out / "class_distribution.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    images = EventAccumulator(str(out / "tensorboard")).Reload().Tags()["images"]
    assert {"data/samples", "data/class_distribution"} <= set(images)


def test_analyze_missing_csv_exits_with_one_line(tmp_path: Path) -> None:
    result = subprocess.run([console_script("fer-analyze"), f"csv_path={tmp_path / 'missing.csv'}",
                             f"paths.log_dir={tmp_path / 'outputs'}"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: FER-2013 CSV not found")
    assert "Traceback" not in result.stderr
