"""Where a study's best trial is exported, and how fer-train finds it: ``model=tuned/<study>`` (the net alone)
and ``experiment=tuned/<study>`` (everything the search tuned, on top of its base recipe).

Each study dir (``<paths.log_dir>/optuna/<study>/``) holds its exports as ``model/tuned/<study>.yaml`` and
``experiment/tuned/<study>.yaml``, laid out like the config groups, so the study dir itself is a Hydra search
path root. Nothing is written into ``conf/``.
"""

from __future__ import annotations

from pathlib import Path

STUDIES_DIR = "optuna"  # under paths.log_dir: the study database and one dir per study (conf/tune.yaml)
EXPORTED_MODEL_DIR = Path("model") / "tuned"
EXPORTED_EXPERIMENT_DIR = Path("experiment") / "tuned"


def exported_model_roots(studies_dir: Path) -> list[Path]:
    """Study dirs holding an exported ``model/tuned/<study>.yaml``: each is a search path root for it."""
    return sorted(path.parents[2] for path in studies_dir.glob(f"*/{EXPORTED_MODEL_DIR}/*.yaml"))
