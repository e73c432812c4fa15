"""fer-study: the study's two searches, their best nets trained to the end and stacked: ``fer-study workers=4``."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from fer_lightning.cli.common import CONF_DIR, exit_on_error


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="study")
def main(cfg: DictConfig) -> None:
    from fer_lightning.tuning.full_study import full_study  # after Hydra's checks (fer_lightning.cli)

    exit_on_error(lambda: full_study(cfg))


if __name__ == "__main__":
    main()
