"""A trial's training config, and the search's checks on it, without torch: fer-tune runs the checks before the
training stack's imports (fer_lightning.cli), so a search key that names nothing fails in a second."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose
from omegaconf import DictConfig, OmegaConf

from fer_lightning.data.csv_reader import existing_csv
from fer_lightning.errors import check_number, check_whole_number

# Every trial: no PrivateTest pass, no checkpoints (a killed trial is re-run, not resumed), quiet logs.
TRIAL_RULES = ["test=false", "callbacks.model_checkpoint=null", "callbacks.last_checkpoint=null",
               "callbacks.progress_bar=null", "callbacks.model_summary=null"]


def trial_config(cfg: DictConfig, params: dict[str, Any], output_dir: Path) -> DictConfig:
    """conf/train.yaml + the search's overrides + the trial's values written at their config paths."""
    overrides = [f"model={cfg.model}", *cfg.train_overrides, *cfg.train_args, *TRIAL_RULES,
                 f"paths.output_dir={output_dir}"]
    trial_cfg = compose(config_name="train", overrides=overrides)
    for path, value in params.items():
        OmegaConf.update(trial_cfg, path, value, merge=False)
    return trial_cfg


def checked_base_config(cfg: DictConfig) -> DictConfig:
    """The trials' config before any value is drawn, once the search space names only values it holds, its
    L2 strengths would act, and the CSV exists; ValueError (or FerDataError) otherwise."""
    check_whole_number("n_trials", cfg.n_trials, "trials for the study to hold", least=0)
    check_whole_number("seed", cfg.seed, least=0)
    if cfg.timeout is not None:
        check_number("timeout", cfg.timeout, above=0, why="seconds after which no trial starts; null: none")
    base = trial_config(cfg, {}, Path(cfg.study_dir))
    unknown = [path for path in cfg.space if OmegaConf.select(base, path, default=None) is None]
    if unknown:
        raise ValueError(f"search space keys name no value in the training config: {', '.join(unknown)}")
    if any(path.endswith(".l2") for path in cfg.space) and not base.model.keras_l2:
        raise ValueError("the search tunes L2 strengths but model.keras_l2 is false, so they would do nothing; "
                         "add optimizer=adam (or model.keras_l2=true) to train_overrides")
    existing_csv(base.data.csv_path)
    return base
