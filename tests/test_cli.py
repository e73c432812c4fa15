"""The user's entry point, train.py, run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def run_train(tmp_path: Path, *overrides: str, multirun: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *(["-m"] if multirun else []), f"paths.log_dir={tmp_path / 'outputs'}",
         "callbacks.progress_bar=null", "trainer.precision=32-true", *overrides],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )


def test_missing_csv_is_one_clear_line(tmp_path: Path) -> None:
    result = run_train(tmp_path, f"data.csv_path={tmp_path / 'nowhere.csv'}")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: FER-2013 CSV not found") and "FER2013_CSV" in last
    assert "Traceback" not in result.stderr


def test_uncreatable_output_dir_is_one_clear_line_for_runs_and_sweeps(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    for multirun in (False, True):
        result = run_train(tmp_path, f"paths.log_dir={tmp_path / 'a_file' / 'outputs'}", multirun=multirun)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1].startswith(
            f"error: cannot create the output dir {tmp_path / 'a_file' / 'outputs'}/train/")
        assert "Traceback" not in result.stderr


def test_multirun_over_both_models(tmp_path: Path, fer_csv: Path) -> None:
    result = run_train(tmp_path, "model=relu,leaky", f"data.csv_path={fer_csv}", "data.batch_size=32",
                       "+trainer.fast_dev_run=true", multirun=True)
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = sorted((tmp_path / "outputs" / "train" / "multiruns").glob("*/*/metrics.json"))
    assert [p.parent.name for p in jobs] == ["0", "1"]
    overrides = [(p.parent / ".hydra" / "overrides.yaml").read_text() for p in jobs]
    assert "model=relu" in overrides[0] and "model=leaky" in overrides[1]
    summary = pd.read_csv(jobs[0].parents[1] / "sweep_summary.csv")
    assert summary["job"].tolist() == [0, 1]
    assert summary["overrides"].str.contains("model=relu").tolist() == [True, False]
    assert summary["test/acc"].between(0, 1).all()
