"""fer-stack (and ``python stack.py``): ``fer-stack runs='[outputs/train/runs/A,outputs/train/runs/B]'``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.common import CONF_DIR, exit_on_error


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="stack")
def main(cfg: DictConfig) -> float:
    from fer_lightning.ensemble.stack import stack  # after Hydra's checks (fer_lightning.cli)

    return exit_on_error(lambda: stack(cfg)["test/acc"])


if __name__ == "__main__":  # python -m fer_lightning.cli.stack, as fer-study starts it
    main()
