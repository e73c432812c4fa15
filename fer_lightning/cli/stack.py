"""fer-stack (and ``python stack.py``): ``fer-stack runs='[outputs/train/runs/A,outputs/train/runs/B]'``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.common import CONF_DIR, exit_on_error
from fer_lightning.ensemble.stack_inputs import checked_run_dirs


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="stack")
def main(cfg: DictConfig) -> float:
    exit_on_error(lambda: checked_run_dirs(cfg))  # before the stacking stack's imports (fer_lightning.cli)
    from fer_lightning.ensemble.stack import stack

    return exit_on_error(lambda: stack(cfg)["test/acc"])


if __name__ == "__main__":  # python -m fer_lightning.cli.stack, as fer-study starts it
    main()
