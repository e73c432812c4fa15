"""Entry point: ``python train.py model=leaky trainer.max_epochs=40`` (see conf/train.yaml).

``python train.py resume=outputs/train/runs/<date>`` continues a stopped run in its own dir from last.ckpt.
"""

import sys

import hydra
from omegaconf import DictConfig

from fer_lightning.errors import FerError
from fer_lightning.rundir import resume_overrides
from fer_lightning.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    try:
        return train(cfg)["val/acc_best"]
    except FerError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    try:
        sys.argv[1:] = resume_overrides(sys.argv[1:])
    except FerError as err:
        sys.exit(f"error: {err}")
    main()
