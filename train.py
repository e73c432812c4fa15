"""Entry point: ``python train.py model=leaky trainer.max_epochs=40`` (see conf/train.yaml).

``python train.py resume=outputs/train/runs/<date>`` continues a stopped run in its own dir from last.ckpt.
"""

import sys

import hydra
from omegaconf import DictConfig

from fer_lightning.cli import exit_on_error
from fer_lightning.rundir import resume_overrides
from fer_lightning.training import train


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    return exit_on_error(lambda: train(cfg)["val/acc_best"])


if __name__ == "__main__":
    sys.argv[1:] = exit_on_error(lambda: resume_overrides(sys.argv[1:]))
    main()
