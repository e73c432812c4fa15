"""Several processes through Lightning's DDP (gloo on the CPU): one run dir with one of everything, written by
rank 0, and a DDP run resumes like any other.

What two processes cannot share with one: each sees half of every epoch's batches and its own BatchNorm
statistics, so the trained weights (and every metric) differ from a one-process run of the same seed. What is
the same: the report and the saved logits are the best checkpoint's predictions on every face, exactly.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
from conftest import console_script

from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.inference.face_classifier import FaceClassifier

TINY = ["data.batch_size=32", "data.eval_batch_size=64", "trainer.accelerator=cpu", "trainer.precision=32-true",
        "fuse_tails=false", "+trainer.limit_train_batches=2", "callbacks.model_summary=null",
        "callbacks.progress_bar=null"]


def fer_train(*overrides: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([console_script("fer-train"), *overrides], capture_output=True, text=True, timeout=300,
                            cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_two_cpu_processes_write_one_run_dir_and_resume(fer_csv: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = fer_train(f"data.csv_path={fer_csv}", f"hydra.run.dir={run}", f"paths.cache_dir={tmp_path / 'cache'}",
                       "trainer.max_epochs=1", "trainer.devices=2", "trainer.strategy=ddp", *TINY, cwd=tmp_path)
    assert "Starting with 2 processes" in result.stderr + result.stdout
    assert (result.stderr + result.stdout).count("PrivateTest accuracy") == 1
    names = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file() and "tensorboard" not in p.parts)
    assert [n for n in names if not n.startswith((".hydra", "checkpoints"))] == [
        "classification_report.txt", "confusion_matrix.png", "csv/metrics.csv", "curves.png", "logits_test.npz",
        "logits_val.npz", "metrics.json", "mistakes.png", "reliability.png", "summary.json", "train.log",
        "train_ddp_process_1.log"]
    summary = json.loads((run / "summary.json").read_text())
    saved = np.load(run / "logits_test.npz")
    faces = load_fer2013(fer_csv).split("PrivateTest")[0]
    expected = FaceClassifier.from_checkpoint(summary["best_checkpoint"], tta=summary["tta"]).logits(faces)
    np.testing.assert_allclose(saved["logits"], expected, atol=1e-4)
    assert summary["test/acc"] == float(np.mean(saved["logits"].argmax(1) == saved["labels"]))

    # With a time budget too: the processes must agree on its plan (rank 0's), or one would wait for the other.
    resumed = fer_train(f"resume={run}", "trainer.max_epochs=2", "fit_minutes=60", cwd=tmp_path)
    assert "Starting with 2 processes" in resumed.stderr + resumed.stdout
    assert json.loads((run / "summary.json").read_text())["epochs"] == 2
    assert len(list((run / "checkpoints").glob("last.ckpt"))) == 1

