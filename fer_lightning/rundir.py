"""A run dir: checked before any training starts, continued in place after a kill, and read once finished."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from fer_lightning.checkpoints import read_checkpoint
from fer_lightning.errors import FerError

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
RESUME_KEYS = ("resume", "ckpt_path")


def check_output_dir(run_dir: Path, min_free_mb: float) -> None:
    """Fail now, not hours later at the first checkpoint, when the run dir is unwritable or the disk is full."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=run_dir):
            pass
    except OSError as err:
        raise FerError(f"{run_dir}: cannot write the run's outputs there ({err.strerror or err}); "
                       "point paths.log_dir (or hydra.run.dir) at a writable folder") from None
    free_mb = shutil.disk_usage(run_dir).free / 2**20
    if free_mb < min_free_mb:
        raise FerError(f"{run_dir}: only {free_mb:.0f} MB free on its disk, below min_free_disk_mb={min_free_mb:g}; "
                       "free some space or point paths.log_dir elsewhere")


class OutputDirCheck(Callback):
    """Hydra creates the run dir before any of our code runs; try first, so a bad path is one line, not a traceback."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_unless_creatable(Path(config.hydra.run.dir))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _exit_unless_creatable(Path(config.hydra.sweep.dir))


def _exit_unless_creatable(path: Path) -> None:
    """Probe the nearest existing folder on the way to ``path`` with a throw-away subfolder."""
    existing = next(parent for parent in (path.absolute(), *path.absolute().parents) if parent.exists())
    try:
        Path(tempfile.mkdtemp(dir=existing)).rmdir()
    except OSError as err:
        sys.exit(f"error: cannot create the output dir {path}: {existing} does not take new folders "
                 f"({err.strerror or err}); point hydra.run.dir or paths.log_dir at a writable folder")


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    """The checkpoint to resume from, checked readable before training: a path, or 'last' of this run dir."""
    if not ckpt_path:
        return None
    path = run_dir / LAST_CHECKPOINT if ckpt_path == "last" else Path(ckpt_path)
    if ckpt_path == "last" and not path.is_file():
        raise FerError(f"ckpt_path=last: {path} does not exist. To continue an earlier run, name its run dir: "
                       "python train.py resume=outputs/train/runs/<date>")
    read_checkpoint(path)  # a truncated or foreign file fails here with its name, not deep inside Lightning
    return str(path)


def resume_overrides(argv: list[str]) -> list[str]:
    """Expand ``resume=<run dir>`` into that run's own overrides plus its run dir and ``ckpt_path=last``.

    Overrides given next to ``resume=`` come after the run's own, so they win (``trainer.max_epochs=40`` extends a
    run). Without ``resume=`` the arguments are returned unchanged.
    """
    given = [arg for arg in argv if arg.startswith("resume=")]
    if not given:
        return argv
    run_dir = Path(given[-1].split("=", 1)[1])
    saved = run_dir / ".hydra" / "overrides.yaml"
    if not saved.is_file():
        raise FerError(f"resume={run_dir}: no .hydra/overrides.yaml there; expected a run dir written by train.py")
    if not (run_dir / LAST_CHECKPOINT).is_file():
        raise FerError(f"resume={run_dir}: no {LAST_CHECKPOINT} to continue from; the run ended before its first "
                       "epoch did, so start it again")
    original = [o for o in OmegaConf.load(saved) if o.split("=", 1)[0].lstrip("+~") not in RESUME_KEYS]
    others = [arg for arg in argv if not arg.startswith("resume=")]
    return [*original, *others, f"resume={run_dir}", "ckpt_path=last", f"hydra.run.dir={run_dir}"]


def run_summary(run_dir: Path) -> dict[str, Any]:
    """The summary.json train.py writes when a run finishes, or {} where there is none."""
    path = run_dir / "summary.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def run_tta(run_dir: Path) -> str:
    """The TTA the run chose on PublicTest; 'none' for an unfinished run or one from before TTA."""
    return run_summary(run_dir).get("tta", "none")


def checkpoint_tta(ckpt: str | Path) -> str:
    """The TTA the checkpoint's run chose; 'none' for a checkpoint outside a finished run dir."""
    return run_tta(Path(ckpt).parent.parent)  # <run dir>/checkpoints/<file>.ckpt
