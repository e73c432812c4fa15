"""Nothing lost, nothing silent: a killed run resumes to the same numbers, checkpoints are never torn, and bad
checkpoints, NaN losses and unusable output dirs stop with one line that says what happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REAL_CSV, compose_train, synthetic_frame, tiny_run_overrides

from fer_lightning.cli.train import resume_overrides
from fer_lightning.errors import FerError
from fer_lightning.models.checkpoints import CheckpointError, read_checkpoint
from fer_lightning.training.callbacks import NonFiniteLossError, StopOnNonFiniteLoss
from fer_lightning.training.checkpoint_io import AtomicCheckpointIO
from fer_lightning.training.run_dir import RunDir, RunSummary
from fer_lightning.training.train import train

REPO = Path(__file__).resolve().parents[1]
# Long enough epochs (43 batches) that a kill lands inside one; fp32 and one thread so runs compare exactly.
RESUME_SIZES = {"Training": 700, "PublicTest": 56, "PrivateTest": 56}


def run_command(csv: Path, run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, str(REPO / "train.py"), f"hydra.run.dir={run_dir}", f"data.csv_path={csv}",
            f"paths.cache_dir={run_dir.parent / 'cache'}", "data.batch_size=16", "data.eval_batch_size=64",
            "trainer.accelerator=cpu", "trainer.precision=32-true", "trainer.max_epochs=2",
            "fuse_tails=false", "callbacks.model_summary=null", "callbacks.progress_bar=null",
            *extra]


def one_thread_env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def train_py(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*args], cwd=cwd, capture_output=True, text=True, timeout=300, env=one_thread_env())


def start_train_py(*args: str, cwd: Path) -> subprocess.Popen:
    """A one-thread train.py in the background, its output discarded (a pipe nobody reads could fill and stall it)."""
    return subprocess.Popen([*args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=one_thread_env())


def checkpoint_epoch(path: Path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["epoch"]


@pytest.fixture(scope="module")
def resume_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("resume") / "fer_resume.csv"
    synthetic_frame(sizes=RESUME_SIZES).to_csv(path, index=False)
    return path


def test_sigkilled_run_resumes_to_the_metrics_of_an_uninterrupted_one(tmp_path: Path, resume_csv: Path) -> None:
    # The uninterrupted run and the one to be killed run side by side, one thread each (one core each on CI).
    whole = start_train_py(*run_command(resume_csv, tmp_path / "whole"), cwd=tmp_path)
    killed_dir = tmp_path / "killed"
    process = start_train_py(*run_command(resume_csv, killed_dir), cwd=tmp_path)
    last = killed_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # into the second epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint_epoch(last) == 0, "the kill came too late to land inside the second epoch"
    assert not (killed_dir / "summary.json").exists()

    resumed = train_py(sys.executable, str(REPO / "train.py"), f"resume={killed_dir}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "exists and is not empty" not in resumed.stderr  # Lightning's warnings about the run's own files
    assert whole.wait(timeout=300) == 0, f"the uninterrupted run failed: see {tmp_path / 'whole' / 'train.log'}"
    assert f"Resuming from {last}" in (killed_dir / "train.log").read_text()
    assert (killed_dir / "metrics.json").read_text() == (tmp_path / "whole" / "metrics.json").read_text()
    for split in ("val", "test"):
        np.testing.assert_array_equal(np.load(killed_dir / f"logits_{split}.npz")["logits"],
                                      np.load(tmp_path / "whole" / f"logits_{split}.npz")["logits"])
    summaries = [json.loads((d / "summary.json").read_text()) for d in (killed_dir, tmp_path / "whole")]
    assert summaries[0]["epochs"] == summaries[1]["epochs"] == 2
    assert summaries[0]["val/acc_best"] == summaries[1]["val/acc_best"]
    # the history (metrics.csv, and curves.png drawn from it) holds the epoch before the kill as well as the one after
    columns = ["train/loss", "train/acc", "val/loss", "val/acc"]
    killed_history, whole_history = (pd.read_csv(d / "csv" / "metrics.csv").groupby("epoch").last()[columns]
                                     for d in (killed_dir, tmp_path / "whole"))
    assert killed_history.loc[[0, 1]].notna().all().all()
    pd.testing.assert_frame_equal(killed_history, whole_history)
    for ckpt in (killed_dir / "checkpoints").glob("*.ckpt"):
        read_checkpoint(ckpt)


class KilledAtEpoch(L.Callback):
    """Raises at the start of epoch ``epoch`` (0-based), after the previous epoch's checkpoints were written."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, *args) -> None:
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def test_last_checkpoint_is_every_epochs_end_not_only_the_best(train_cfg, tmp_path: Path) -> None:
    """Lightning 2.6's save_last writes only on epochs that improve val/acc; ours is each epoch's end."""
    with pytest.raises(SystemExit):  # Lightning's answer to a KeyboardInterrupt
        train(train_cfg("trainer.max_epochs=8", "+trainer.limit_val_batches=1", "test=false",
                        "model.optimizer.lr=0.3", "scheduler=none"), extra_callbacks=[KilledAtEpoch(5)])
    checkpoints = tmp_path / "run" / "checkpoints"
    best = [p for p in checkpoints.glob("*.ckpt") if p.name != "last.ckpt"]
    assert checkpoint_epoch(checkpoints / "last.ckpt") == 4
    assert [checkpoint_epoch(p) for p in best] != [4]  # some epochs did not improve: the case that lost epochs


def test_resume_needs_a_run_dir_with_a_last_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(FerError, match=r"resume=.*nowhere: no \.hydra/overrides\.yaml there"):
        resume_overrides([f"resume={tmp_path / 'nowhere'}"])
    (tmp_path / "run" / ".hydra").mkdir(parents=True)
    (tmp_path / "run" / ".hydra" / "overrides.yaml").write_text("- model=leaky\n- ckpt_path=last\n- seed=3\n")
    with pytest.raises(FerError, match=r"no checkpoints/last\.ckpt to continue from"):
        resume_overrides([f"resume={tmp_path / 'run'}"])
    (tmp_path / "run" / "checkpoints").mkdir()
    (tmp_path / "run" / "checkpoints" / "last.ckpt").touch()
    expanded = resume_overrides([f"resume={tmp_path / 'run'}", "trainer.max_epochs=40"])
    assert expanded == ["model=leaky", "seed=3", "trainer.max_epochs=40", f"resume={tmp_path / 'run'}",
                        "ckpt_path=last", f"hydra.run.dir={tmp_path / 'run'}"]
    twice = resume_overrides(expanded)  # what each DDP process does with the arguments it is started with
    assert [arg for arg in twice if arg.startswith(("model=", "seed=", "+", "trainer."))] == \
        ["model=leaky", "seed=3", "trainer.max_epochs=40"]
    assert resume_overrides(["model=relu"]) == ["model=relu"]

    # a finished run: resuming it as it is would only read PrivateTest again; a longer run is asked for explicitly
    RunDir(tmp_path / "run").write_summary(RunSummary(val_acc_best=0.6, epochs=20, fit_seconds=60.0,
                                                      precision="32-true"))
    with pytest.raises(FerError, match=r"that run finished \(20 epochs.*add trainer\.max_epochs=<more than 20>"):
        resume_overrides([f"resume={tmp_path / 'run'}"])
    assert resume_overrides(expanded) == twice


def test_ckpt_path_last_without_a_last_checkpoint_says_how_to_resume(train_cfg) -> None:
    with pytest.raises(FerError, match=r"ckpt_path=last: .*last\.ckpt does not exist.*resume=outputs/train/runs"):
        train(train_cfg("ckpt_path=last"))


def test_foreign_and_torn_checkpoints_are_refused_before_training(train_cfg, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match=r"foreign\.ckpt: lacks state_dict, FerDataModule"):
        train(train_cfg(f"ckpt_path={foreign}"))
    torn = tmp_path / "torn.ckpt"  # what a disk filling up mid-write leaves (our own writes are atomic: below)
    torn.write_bytes(foreign.read_bytes()[:200])
    with pytest.raises(CheckpointError, match=r"torn\.ckpt: not a readable checkpoint"):
        train(train_cfg(f"ckpt_path={torn}"))
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_a_crash_while_writing_leaves_the_previous_checkpoint_whole(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(1000)}, "FerDataModule": {}, "epoch": 1}, path)
    before = path.read_bytes()

    def dies_halfway(obj: object, file) -> None:
        file.write(before[: len(before) // 2])
        raise KeyboardInterrupt  # stands in for the kill

    monkeypatch.setattr("fer_lightning.training.checkpoint_io.torch.save", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(1000)}, "FerDataModule": {}, "epoch": 2}, path)
    assert path.read_bytes() == before and read_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.glob("*.ckpt")] == ["last.ckpt"]


def test_non_finite_loss_stops_the_run_naming_the_step(train_cfg) -> None:
    with pytest.raises(FerError, match=r"training loss is nan at step \d+ \(epoch 1, batch \d+\); stopped"):
        train(train_cfg("scheduler=none", "model.optimizer.lr=1e30"))


def test_a_deferred_non_finite_check_still_names_the_first_bad_step() -> None:
    check = StopOnNonFiniteLoss(every_n_steps=4)  # as on a GPU, where each read of the loss is a host sync
    trainer = SimpleNamespace(global_step=0, current_epoch=2, checkpoint_callback=None)

    def step(batch_idx: int, loss: float) -> None:
        trainer.global_step = 10 + batch_idx
        check.on_train_batch_end(trainer, None, torch.tensor(loss), None, batch_idx)

    for batch_idx, loss in enumerate([1.0, 0.9, float("inf")]):
        step(batch_idx, loss)  # three of four: not read yet
    with pytest.raises(NonFiniteLossError, match=r"loss is inf at step 12 \(epoch 3, batch 3\)"):
        step(3, float("nan"))
    step(4, float("nan"))
    with pytest.raises(NonFiniteLossError, match="nan at step 14"):  # read before validation, however few wait
        check.on_validation_start(trainer, None)


def test_unwritable_output_dir_fails_before_training(train_cfg, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(FerError, match=r"a_file/run: cannot write the run's outputs there"):
        train(train_cfg(f"paths.output_dir={tmp_path / 'a_file' / 'run'}"))


def test_full_disk_fails_before_training(train_cfg, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("fer_lightning.training.run_dir.shutil.disk_usage",
                        lambda path: type("Usage", (), {"free": 50 * 2**20})())
    with pytest.raises(FerError, match=r"only 50 MB free on its disk, below min_free_disk_mb=200"):
        train(train_cfg())
    assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.fixture(scope="module")
def real_subset_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first rows of each split of the real FER-2013: small enough to train twice in a test."""
    import pandas as pd

    frame = pd.read_csv(REAL_CSV)
    subset = pd.concat([frame[frame.Usage == usage].head(n) for usage, n in
                        {"Training": 512, "PublicTest": 128, "PrivateTest": 128}.items()])
    path = tmp_path_factory.mktemp("real") / "fer_subset.csv"
    subset.to_csv(path, index=False)
    return path


@pytest.mark.skipif(not REAL_CSV, reason="set FER2013_CSV to run on the real FER-2013")
def test_same_config_twice_gives_the_same_logits_on_real_faces(tmp_path: Path, real_subset_csv: Path) -> None:
    """Two runs of one config agree on every saved logit, not only on the argmax that metrics.json counts."""
    runs = []
    for name in ("first", "second"):
        overrides = tiny_run_overrides(real_subset_csv, tmp_path / name, tmp_path / "cache")
        train(compose_train([*overrides, "trainer.precision=auto", "trainer.max_epochs=2",
                             "trainer.limit_train_batches=8"]))
        runs.append(tmp_path / name)
    for split in ("logits_val.npz", "logits_test.npz"):
        first, second = (np.load(run / split) for run in runs)
        np.testing.assert_array_equal(first["logits"], second["logits"])
    assert (runs[0] / "metrics.json").read_text() == (runs[1] / "metrics.json").read_text()
