"""Entry point: ``python stack.py runs='[outputs/train/runs/A,outputs/train/runs/B]' meta=decision_tree``."""

import sys

import hydra
from omegaconf import DictConfig

from fer_lightning.ensemble import stack
from fer_lightning.errors import FerError


@hydra.main(version_base="1.3", config_path="conf", config_name="stack")
def main(cfg: DictConfig) -> float:
    try:
        return stack(cfg)["test/acc"]
    except FerError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
