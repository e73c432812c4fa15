"""Entry point: ``python train.py model=leaky trainer.max_epochs=40`` (see conf/train.yaml)."""

import sys

import hydra
from omegaconf import DictConfig

from fer_lightning.fercsv import FerDataError
from fer_lightning.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    try:
        return train(cfg)["val/acc_best"]
    except FerDataError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
