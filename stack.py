"""Entry point: ``python stack.py runs='[outputs/train/runs/A,outputs/train/runs/B]' meta=decision_tree``."""

import hydra
from omegaconf import DictConfig

from fer_lightning.cli import exit_on_error
from fer_lightning.ensemble import stack


@hydra.main(version_base="1.3", config_path="conf", config_name="stack")
def main(cfg: DictConfig) -> float:
    return exit_on_error(lambda: stack(cfg)["test/acc"])


if __name__ == "__main__":
    main()
