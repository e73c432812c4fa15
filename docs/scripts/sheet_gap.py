"""Where a net's accuracy goes between FER-2013's own faces and the same faces found in pictures.

    fer-photo-sheets out=<sheets> split=PublicTest pictures=1196
    fer-predict ckpt=<run dir> inputs=<sheets> annotate=false
    FER2013_CSV=... python docs/scripts/sheet_gap.py <run dir> <sheets> <that run's predictions.csv>

For the faces pasted into the sheets (truth.csv, which names each face's CSV line and whether it is unseen: no copy
of it among the Training faces), the accuracy of the model fer-predict builds from the run dir (its defaults: the
run's TTA, fer-export's int8 copy where there is one) on three views of each face, all faces and unseen and seen
apart: the 48x48 face as the CSV holds it; the square it was pasted into, cut from the sheet as fer-predict cuts a
detected square (upscaled, JPEG, noise and back); and what fer-predict's run found and named (fer-score-sheets'
matching). The last is on the faces it found.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir

from fer_lightning.cli.common import CONF_DIR
from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.faces.finder import square_crop
from fer_lightning.fer2013 import CLASS_NAMES
from fer_lightning.predict.loading import load_model
from fer_lightning.predict.photo_sheets import score


def gray_picture(path: Path) -> np.ndarray:
    picture = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if picture is None:
        sys.exit(f"error: {path}: not a picture OpenCV reads")
    return picture


def main(run_dir: Path, sheets: Path, predictions: Path) -> None:
    truth = pd.read_csv(sheets / "truth.csv")
    data = load_fer2013(os.environ.get("FER2013_CSV"))
    rows = pd.Series(np.arange(len(data.lines)), index=data.lines)[truth.line].to_numpy()
    labels = data.labels[rows]
    if [CLASS_NAMES[label] for label in labels] != truth.label.tolist():
        sys.exit(f"error: {sheets / 'truth.csv'}: its labels are not this CSV's at its lines")
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        model, description = load_model(compose("predict", overrides=[f"ckpt={run_dir}", "inputs=unused"]))
    squares = np.stack([square_crop(gray_picture(sheets / face.file), (face.x + face.w / 2, face.y + face.h / 2),
                                    face.w, 0.0) for face in truth.itertuples()])
    right = {"the faces as the CSV holds them": model.predict_proba(data.images[rows]).argmax(1) == labels,
             "their squares cut from the sheets": model.predict_proba(squares).argmax(1) == labels}
    found = pd.read_csv(predictions)
    unseen = truth.unseen.to_numpy(bool)
    print(f"{description}\n{len(truth)} faces, {unseen.sum()} unseen, {(~unseen).sum()} seen")
    print(f"{'':40s} {'all':>8s} {'unseen':>8s} {'seen':>8s}")
    for name, correct in right.items():
        print(f"{name:40s} {correct.mean():8.2%} {correct[unseen].mean():8.2%} {correct[~unseen].mean():8.2%}")
    detected = [score(found, truth[mask].reset_index(drop=True)) for mask in (np.ones_like(unseen), unseen, ~unseen)]
    print(f"{'found by fer-predict, on those found':40s} " + " ".join(
        f"{figures['accuracy_on_detected']:8.2%}" for figures in detected)
        + f"   (found: {detected[0]['detection_rate']:.2%})")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1])
    main(*(Path(arg) for arg in sys.argv[1:]))
