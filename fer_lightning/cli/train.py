"""fer-train (and ``python train.py``): train one model, e.g. ``fer-train model=leaky trainer.max_epochs=40``.

``fer-train resume=outputs/train/runs/<date>`` continues a stopped run in its own dir from last.ckpt;
``fer-train model=tuned/<study>`` trains the best model a fer-tune study exported (under outputs/, not conf/).
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.common import CONF_DIR, exit_on_error
from fer_lightning.data.csv_reader import existing_csv
from fer_lightning.errors import FerError
from fer_lightning.models.checkpoints import existing_checkpoint
from fer_lightning.training.run_dir import RunDir
from fer_lightning.tuning.exported_models import STUDIES_DIR, exported_model_roots

RESUME_KEYS = ("resume", "ckpt_path")


def resume_overrides(argv: list[str]) -> list[str]:
    """Expand ``resume=<run dir>`` into that run's own overrides plus its run dir and ``ckpt_path=last``.

    Overrides given next to ``resume=`` come after the run's own, so they win (``trainer.max_epochs=40`` extends a
    run). A finished run is resumed only with ``trainer.max_epochs``: without, there is nothing left to train and
    PrivateTest, which a run reads once, would be read again. Without ``resume=`` the arguments are returned
    unchanged. Expanding twice composes the same config as expanding once: the processes Lightning starts for DDP
    run fer-train again with the expanded arguments.
    """
    given = [arg for arg in argv if arg.startswith("resume=")]
    if not given:
        return argv
    run_dir = RunDir(Path(given[-1].split("=", 1)[1]))
    if not run_dir.overrides_path.is_file():
        raise FerError(f"resume={run_dir.path}: no .hydra/overrides.yaml there; expected a run dir written by "
                       "fer-train")
    if not run_dir.last_checkpoint.is_file():
        raise FerError(f"resume={run_dir.path}: no checkpoints/last.ckpt to continue from; the run ended before "
                       "its first epoch did, so start it again")
    finished = run_dir.summary()
    if finished is not None and not any(arg.startswith("trainer.max_epochs=") for arg in argv):
        raise FerError(f"resume={run_dir.path}: that run finished ({finished.epochs} epochs, reported in "
                       "summary.json), so resuming it would only test PrivateTest again; to train it longer add "
                       f"trainer.max_epochs=<more than {finished.epochs}>")
    original = [o for o in run_dir.overrides() if o.split("=", 1)[0].lstrip("+~") not in RESUME_KEYS]
    others = [arg for arg in argv if not arg.startswith("resume=") and arg not in original]
    return [*original, *others, f"resume={run_dir.path}", "ckpt_path=last", f"hydra.run.dir={run_dir.path}"]


def tuned_model_searchpath(argv: list[str]) -> list[str]:
    """Let ``model=tuned/<study>`` find the configs fer-tune exported into its study dirs under ``paths.log_dir``."""
    if any(arg.startswith("hydra.searchpath=") for arg in argv):
        return argv
    log_dir = next((arg.split("=", 1)[1] for arg in reversed(argv) if arg.startswith("paths.log_dir=")), "outputs")
    roots = exported_model_roots(Path(log_dir) / STUDIES_DIR)
    return [*argv, f"hydra.searchpath=[{','.join(f'file://{root.resolve()}' for root in roots)}]"] if roots else argv


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def _train(cfg: DictConfig) -> float:
    exit_on_error(lambda: existing_csv(cfg.data.csv_path))  # before the training stack's imports (fer_lightning.cli)
    if cfg.ckpt_path not in (None, "last"):  # "last" is resume='s, checked when it expanded
        exit_on_error(lambda: existing_checkpoint(cfg.ckpt_path))
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from fer_lightning.training.train import train

    # Lightning's own verdict on trainer.* (a GPU asked for where there is none, devices=0) is a config mistake too.
    return exit_on_error(lambda: train(cfg).val_acc_best, also=(MisconfigurationException,))


def main() -> None:
    sys.argv[1:] = exit_on_error(lambda: tuned_model_searchpath(resume_overrides(sys.argv[1:])))
    _train()


if __name__ == "__main__":  # python -m fer_lightning.cli.train, as fer-study starts it
    main()
