"""The kit for a device machine: FER-2013 packed here and unpacked there into the same rows; the commands a GPU
session runs importable with what the device's image lacks."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import compose_config, compose_train

from fer_lightning.data.csv_reader import parse_csv

DEVICE_KIT = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "device"
PACKER = DEVICE_KIT / "fer_pack.py"


def test_packed_data_unpacks_into_the_same_faces(fer_csv: Path, tmp_path: Path) -> None:
    packed, unpacked = tmp_path / "fer.med.xz", tmp_path / "fer.csv"
    for command, source, target in (("pack", fer_csv, packed), ("unpack", packed, unpacked)):
        done = subprocess.run([sys.executable, str(PACKER), command, str(source), str(target)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    original, copy = parse_csv(fer_csv), parse_csv(unpacked)
    for field in ("images", "labels", "usage", "lines"):
        np.testing.assert_array_equal(getattr(copy, field), getattr(original, field))
    assert packed.stat().st_size < 0.95 * original.images.nbytes  # the synthetic noise barely compresses


def _import_as_on_the_device(modules: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(DEVICE_KIT / "absent"), os.environ.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", f"import {modules}"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": path})


def test_the_gpu_commands_import_without_what_the_device_lacks() -> None:
    """Albumentations and OpenVINO are for the CPU's per-face augmentation and inference: a top-level import of
    either on the training, tuning or benchmark path would fail every GPU session."""
    assert "absent on the device" in _import_as_on_the_device("albumentations").stderr  # the check itself works
    done = _import_as_on_the_device("fer_lightning.training.train, fer_lightning.tuning.tune, "
                                    "fer_lightning.tuning.full_study, fer_lightning.ensemble.stack, "
                                    "fer_lightning.bench.speed, fer_lightning.data.analysis")  # what the commands run
    assert done.returncode == 0, done.stderr


def test_the_sota_sessions_recipes_compose_into_time_budgeted_runs() -> None:
    """sota_session.sh trains each line of sota_recipes.txt on the GPU: a typo there would cost a session (Hydra
    refuses an unknown key or a malformed value when composing)."""
    recipes = (DEVICE_KIT / "sota_recipes.txt").read_text().splitlines()
    assert len(recipes) >= 2
    for line in recipes:
        name, *overrides = line.split()
        cfg = compose_train([*overrides, "trainer.max_epochs=300", "fit_minutes=6"])
        assert cfg.model.scheduler._target_.endswith("OneCycleLR"), name  # what fit_minutes can resize


def test_the_gpu_checks_rows_compose() -> None:
    """Each `bench NAME overrides...` row of gpu_checks.sh is a fer-bench run on the GPU: a typo in one would cost
    that row's minutes."""
    script = (DEVICE_KIT / "gpu_checks.sh").read_text().replace("\\\n", " ")
    rows = [shlex.split(line)[1:] for line in script.splitlines() if line.startswith("bench ")]
    assert len(rows) >= 5
    for name, *overrides in rows:
        cfg = compose_config("bench", overrides)
        assert cfg.epochs >= 1 and cfg.data.loader in ("resident", "dataloader"), name


def test_the_student_sessions_run_composes() -> None:
    """student_session.sh's fer-train command, with the values it fills in at run time: a typo in its overrides
    would cost the session's last device minutes."""
    script = (DEVICE_KIT / "student_session.sh").read_text().replace("\\\n", " ")
    command = next(shlex.split(line) for line in script.splitlines() if "fer-train experiment=distill" in line)
    fixed = [arg for arg in command[command.index("fer-train") + 1:] if "$" not in arg and "=" in arg]
    cfg = compose_train([*fixed, "data.teacher=/device/teacher_train.npz", "fit_minutes=2.6"])
    assert cfg.data.teacher_weight > 0 and cfg.data.batch_size == 512 and cfg.trainer.max_epochs == 100
    assert cfg.model.scheduler._target_.endswith("OneCycleLR")  # what fit_minutes can resize
