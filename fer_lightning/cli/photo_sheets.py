"""fer-photo-sheets and fer-score-sheets: test pictures with known faces, and fer-predict's score on them.

``fer-photo-sheets out=photos/ split=PublicTest`` pastes FER-2013 faces into pictures and writes truth.csv;
``fer-score-sheets predictions=<fer-predict run>/predictions.csv truth=photos/truth.csv`` prints the detection
rate and the accuracy on detected faces (all, and the unseen ones: no copy in Training), and keeps them in its run
dir as score.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import hydra
import pandas as pd
from omegaconf import DictConfig

from fer_lightning.cli.common import CONF_DIR, exit_on_error
from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.errors import FerError, check_number, check_whole_number
from fer_lightning.fer2013 import SPLITS
from fer_lightning.predict.photo_sheets import make_sheets, score

SPLITS_FOR_SHEETS = ("PublicTest", "PrivateTest")
PREDICTION_COLUMNS = {"file", "status", "x", "y", "w", "h", "emotion"}  # what score() reads of each
TRUTH_COLUMNS = {"file", "x", "y", "w", "h", "label"}


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="photo_sheets")
def make_main(cfg: DictConfig) -> None:
    def make() -> int:
        if cfg.split not in SPLITS_FOR_SHEETS:
            raise FerError(f"split must be PublicTest (to choose settings) or PrivateTest (to report), "
                           f"got {cfg.split!r}")
        check_whole_number("pictures", cfg.pictures)
        check_whole_number("per_picture", cfg.per_picture, "faces")
        check_number("max_tilt", cfg.max_tilt, least=0, why="degrees")
        check_whole_number("seed", cfg.seed, least=0)
        from fer_lightning.data.audit import csv_audit  # torch, for the copy finder: not at this module's import

        data = load_fer2013(cfg.csv_path, cfg.cache_dir)
        audit = csv_audit(data, cfg.csv_path, cfg.cache_dir)  # which faces have a copy in Training
        in_split = data.usage == SPLITS.index(cfg.split)
        about = pd.DataFrame({"line": data.lines[in_split],
                              "unseen": ~audit.copies_in(data.usage == SPLITS.index("Training"))[in_split]})
        faces, labels = data.split(cfg.split)
        return len(make_sheets(faces, labels, Path(cfg.out), cfg.pictures, cfg.per_picture, cfg.seed,
                               cfg.max_tilt, about))

    faces = exit_on_error(make)
    print(f"wrote {cfg.pictures} pictures with {faces} faces and truth.csv to {cfg.out}")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="score_sheets")
def score_main(cfg: DictConfig) -> None:
    def read(path: str, columns: set[str], written_by: str) -> pd.DataFrame:
        if not Path(path).is_file():
            raise FerError(f"{path}: no such file")
        table = pd.read_csv(path)
        if missing := columns - set(table.columns):
            raise FerError(f"{path}: not {written_by} (no column {', '.join(sorted(missing))})")
        return table

    figures = exit_on_error(lambda: score(
        read(cfg.predictions, PREDICTION_COLUMNS, "a fer-predict predictions.csv"),
        read(cfg.truth, TRUTH_COLUMNS, "a fer-photo-sheets truth.csv")))
    (Path(cfg.paths.output_dir) / "score.json").write_text(json.dumps(figures, indent=2))
    for key, value in figures.items():
        print(f"{key}={value:.4g}")
