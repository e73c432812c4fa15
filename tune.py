"""Entry point: ``python tune.py search=leaky_hyperband n_trials=60`` (see conf/tune.yaml, conf/search/)."""

import sys
import warnings
from pathlib import Path

import hydra
import optuna
from omegaconf import DictConfig

from fer_lightning.errors import FerError
from fer_lightning.tuning import tune

CONF_DIR = Path(__file__).resolve().parent / "conf"


@hydra.main(version_base="1.3", config_path="conf", config_name="tune")
def main(cfg: DictConfig) -> None:
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats and plots are "experimental"
    try:
        tune(cfg, CONF_DIR)
    except (FerError, ValueError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
