"""What a stack is built from, checked without torch: the finished runs ``runs=`` names and, for a teacher file,
the CSV. fer-stack checks them before the stacking stack's imports (fer_lightning.cli), so a mistyped run dir
fails in a second, and ``teacher=true`` without a CSV fails before the meta-learners are fitted, not after."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from fer_lightning.data.csv_reader import existing_csv
from fer_lightning.errors import FerError, as_list, check_distinct, check_switch, check_whole_number
from fer_lightning.training.run_dir import RunDir


class StackingError(FerError, ValueError):
    """Runs that cannot be stacked: missing logits, misaligned rows, a meta-model that does not fit its inputs."""


def expand_run_dirs(paths: str | Sequence[str]) -> list[RunDir]:
    """Each path is a finished run dir (it holds its logits), a multirun root whose job dirs are runs, or a folder of
    runs (``outputs/best/runs``: its finished ones, in name order, which is the order they started); at least two
    runs in all."""
    run_dirs: list[RunDir] = []
    for entry in [paths] if isinstance(paths, str) else paths:
        path = Path(entry)
        if RunDir(path).has_logits():
            run_dirs.append(RunDir(path))
            continue
        if not path.is_dir():
            raise StackingError(f"{path}: no such run directory")
        inside = RunDir.jobs(path) or [RunDir(folder) for folder in sorted(path.iterdir()) if folder.is_dir()]
        jobs = [job for job in inside if job.has_logits()]
        if not jobs:
            raise StackingError(f"{path}: neither a finished run (no logits_val.npz) nor a folder of finished runs "
                                "(a multirun root, or a recipe's runs/)")
        run_dirs += jobs
    check_distinct("runs", [run_dir.path for run_dir in run_dirs])
    if len(run_dirs) < 2:
        raise StackingError(f"stacking needs at least two runs, got {len(run_dirs)}")
    return run_dirs


def checked_run_dirs(cfg: DictConfig) -> list[RunDir]:
    """fer-stack's runs, once they and (with ``teacher=true``) the CSV exist, ``cv_folds`` can split and the seed and
    switches are what they must be."""
    check_whole_number("cv_folds", cfg.cv_folds, "folds", least=2)
    check_whole_number("seed", cfg.seed, least=0)
    for switch in ("teacher", "keep_freed_memory"):
        check_switch(switch, cfg[switch])
    run_dirs = expand_run_dirs(as_list("runs", cfg.runs, "run dirs"))
    if cfg.teacher:
        existing_csv(cfg.csv_path)
    return run_dirs
