"""Shared fixtures: a synthetic FER-format CSV and the train config shrunk to run in seconds."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

# Before torch, numpy or OpenCV start their thread pools. The suite's two xdist workers (pyproject.toml) share the
# cores, and a pool of one thread per core in each made them fight over those (bash .ci/run's pytest on a 2-core Zen 3
# EPYC, 2026-12-04: 689 s, and 609 s with one thread each); the commands that tests start inherit it.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2
import matplotlib
import numpy as np
import pandas as pd
import pytest
from filelock import FileLock
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from scipy.special import softmax

from fer_lightning.fer2013 import NUM_CLASSES

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")
REAL_CSV = os.environ.get("FER2013_CSV")
SPLIT_SIZES = {"Training": 140, "PublicTest": 42, "PrivateTest": 42}

# A colour photo that ships with matplotlib, and its head: a real face about 190 px across, in a 260 px square.
PHOTO = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
PORTRAIT = cv2.imread(PHOTO, cv2.IMREAD_GRAYSCALE)[90:350, 140:400]
FACE_SIDE = 190


def scene_with_faces(places: list[tuple[int, int, float]], size: tuple[int, int] = (480, 640)) -> np.ndarray:
    """A plain gray scene with the portrait pasted at each (x, y, scale)."""
    scene = np.full(size, 120, np.uint8)
    for x, y, scale in places:
        face = cv2.resize(PORTRAIT, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        h, w = face.shape
        scene[y:y + h, x:x + w] = face
    return scene


def load_script(name: str) -> ModuleType:
    """docs/scripts/<name>.py imported into the test's process, its functions and constants to call."""
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "docs" / "scripts"
                                                  / f"{name}.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def console_script(name: str) -> str:
    """A command as a user runs it: pip installs the console scripts beside the interpreter."""
    return str(Path(sys.executable).parent / name)


def synthetic_frame(seed: int = 0, sizes: dict[str, int] | None = None) -> pd.DataFrame:
    """Rows in FER-2013's format; each class has its own brightness so a model can learn something."""
    rng = np.random.default_rng(seed)
    rows = []
    for usage, n in (sizes or SPLIT_SIZES).items():
        for i in range(n):
            label = i % 7
            pixels = np.clip(rng.normal(40 + 25 * label, 30, 48 * 48), 0, 255).astype(int)
            rows.append({"emotion": label, "pixels": " ".join(map(str, pixels)), "Usage": usage})
    return pd.DataFrame(rows)


def teacher_file(csv: Path, path: Path, seed: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    """Random teacher probabilities for the CSV's Training rows, written in shuffled order."""
    from fer_lightning.data.csv_reader import load_fer2013
    from fer_lightning.data.teacher import write_teacher
    from fer_lightning.fer2013 import SPLITS

    data = load_fer2013(csv)
    lines = data.lines[data.usage == SPLITS.index("Training")]
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.ones(7), len(lines)).astype(np.float32)
    order = rng.permutation(len(lines))
    write_teacher(path, lines[order], probabilities[order])
    return path, lines, probabilities


@contextmanager
def built_once(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str) -> Iterator[tuple[Path, bool]]:
    """A folder of this session's that every xdist worker shares, and whether it still needs building: the first
    worker to ask builds it while the others wait, instead of each building its own (seconds each on CI)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base if worker_id == "master" else base.parent) / name  # pytest-N/: the workers' common parent
    with FileLock(f"{folder}.lock"):
        yield folder, not (folder / "built").exists()
        (folder / "built").touch()


@pytest.fixture(scope="session")
def real_cache_dir(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """One cache dir for every test on the real FER-2013, so its CSV is parsed once a session, by the first worker
    that needs it (6-20 s on CI)."""
    if not REAL_CSV:
        pytest.skip("set FER2013_CSV to run on the real FER-2013")
    from fer_lightning.data.csv_reader import load_fer2013

    with built_once(tmp_path_factory, worker_id, "real_cache") as (folder, needed):
        if needed:
            load_fer2013(REAL_CSV, folder)
    return folder


@pytest.fixture(scope="session")
def real_public_test(real_cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The real FER-2013's PublicTest faces and labels, for the tests that paste them into pictures."""
    from fer_lightning.data.csv_reader import load_fer2013

    return load_fer2013(REAL_CSV, real_cache_dir).split("PublicTest")


@pytest.fixture
def fer_csv(tmp_path: Path) -> Path:
    path = tmp_path / "fer_synthetic.csv"
    synthetic_frame().to_csv(path, index=False)
    return path


def compose_config(name: str, overrides: list[str] | None = None) -> DictConfig:
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(name, overrides=overrides or [])


def compose_train(overrides: list[str] | None = None) -> DictConfig:
    return compose_config("train", overrides)


def tiny_run_overrides(csv: Path | str, output_dir: Path, cache_dir: Path) -> list[str]:
    """CPU, fp32, 1 epoch of 2 batches, no progress bar, no compiled block tails (compiling them takes longer than
    such a run): a full train.py run in seconds."""
    return [
        f"data.csv_path={csv}",
        f"paths.output_dir={output_dir}",
        f"paths.cache_dir={cache_dir}",
        "data.batch_size=32",
        "data.eval_batch_size=64",
        "trainer.accelerator=cpu",
        "trainer.precision=32-true",
        "fuse_tails=false",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "callbacks.model_summary=null",
        "callbacks.progress_bar=null",
    ]


@pytest.fixture
def train_cfg(tmp_path: Path, fer_csv: Path) -> Callable[..., DictConfig]:
    """The real train config on the synthetic CSV, shrunk by tiny_run_overrides, outputs under tmp_path."""

    def make(*overrides: str, csv: Path | str = fer_csv) -> DictConfig:
        return compose_train([*tiny_run_overrides(csv, tmp_path / "run", tmp_path / "cache"), *overrides])

    return make


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> list[Path]:
    """Two finished tiny runs on the synthetic CSV (relu, leaky): checkpoints, logits, reports. Read-only."""
    from fer_lightning.training.train import train

    with built_once(tmp_path_factory, worker_id, "trained") as (root, needed):
        if needed:
            root.mkdir()
            csv = root / "fer_synthetic.csv"
            synthetic_frame().to_csv(csv, index=False)
            for model in ("relu", "leaky"):
                train(compose_train([*tiny_run_overrides(csv, root / model, root / "cache"), f"model={model}"]))
    return [root / model for model in ("relu", "leaky")]


def best_checkpoint(run_dir: Path) -> Path:
    """A finished run's best checkpoint (the one that is not last.ckpt)."""
    return next(p for p in (run_dir / "checkpoints").glob("*.ckpt") if p.name != "last.ckpt")


ONLY_SOFT_VOTE = [f"~meta@compare.{name}" for name in
                  ("decision_tree", "logistic_regression", "random_forest", "gradient_boosting", "bagged_trees")]


def labels_drawn_at(temperature: float, faces: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Logits, and labels drawn from ``softmax(logits / temperature)``: that temperature is the right one."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (faces, NUM_CLASSES))
    proba = softmax(logits / temperature, axis=1)
    labels = (proba.cumsum(1) < rng.random((faces, 1))).sum(1)
    return logits, labels


def stack_cfg(runs: list[Path], out: Path, *overrides: str) -> DictConfig:
    """stack.py's config over the given runs, comparing soft voting only (fast)."""
    return compose_config("stack", [f"runs=[{','.join(map(str, runs))}]", f"paths.output_dir={out}",
                                    *ONLY_SOFT_VOTE, *overrides])
