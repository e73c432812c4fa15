"""fer-analyze: sample faces and class balance, as PNGs and TensorBoard images."""

from __future__ import annotations

from pathlib import Path

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

