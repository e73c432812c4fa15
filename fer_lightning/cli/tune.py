"""fer-tune (and ``python tune.py``): an Optuna study, e.g. ``fer-tune search=leaky_hyperband n_trials=60``."""

from __future__ import annotations

import warnings
from pathlib import Path

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.common import CONF_DIR, exit_on_error
from fer_lightning.tuning.trial_config import checked_base_config


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="tune")
def main(cfg: DictConfig) -> None:
    exit_on_error(lambda: checked_base_config(cfg), also=(ValueError,))  # before torch and Optuna (fer_lightning.cli)
    import optuna

    from fer_lightning.tuning.tune import tune

    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats and plots are "experimental"
    exit_on_error(lambda: tune(cfg, Path(CONF_DIR)), also=(ValueError,))


if __name__ == "__main__":  # python -m fer_lightning.cli.tune, as fer-study starts it
    main()
