"""Entry point: ``python tune.py search=leaky_hyperband n_trials=60`` (see conf/tune.yaml, conf/search/)."""

import warnings
from pathlib import Path

import hydra
import optuna
from omegaconf import DictConfig

from fer_lightning.cli import CONF_DIR, exit_on_error
from fer_lightning.tuning import tune


@hydra.main(version_base="1.3", config_path="conf", config_name="tune")
def main(cfg: DictConfig) -> None:
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats and plots are "experimental"
    exit_on_error(lambda: tune(cfg, Path(CONF_DIR)), also=(ValueError,))


if __name__ == "__main__":
    main()
