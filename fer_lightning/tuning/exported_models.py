"""Where a study's best model is exported, and how fer-train finds it: ``model=tuned/<study>``.

Each study dir (``<paths.log_dir>/optuna/<study>/``) holds its export as ``model/tuned/<study>.yaml``, laid out
like the model config group, so the study dir itself is a Hydra search path root. Nothing is written into
``conf/``.
"""

from __future__ import annotations

from pathlib import Path

STUDIES_DIR = "optuna"  # under paths.log_dir: the study database and one dir per study (conf/tune.yaml)
EXPORTED_MODEL_DIR = Path("model") / "tuned"


def exported_model_roots(studies_dir: Path) -> list[Path]:
    """Study dirs holding an exported ``model/tuned/<study>.yaml``: each is a search path root for it."""
    return sorted(path.parents[2] for path in studies_dir.glob(f"*/{EXPORTED_MODEL_DIR}/*.yaml"))
