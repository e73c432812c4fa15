"""Test photos with known answers: FER-2013 faces upscaled and pasted, several per picture, onto noisy canvases.

``fer-photo-sheets out=photos/`` writes the pictures and truth.csv (box and label of every pasted face, its CSV line,
and whether it is unseen: no copy of it among the Training faces); after ``fer-predict ... inputs=photos/``,
``fer-score-sheets`` matches predicted boxes to the truth and reports the detection rate and the accuracy on detected
faces, all and unseen. A net does far better on faces it has seen a copy of in training, and a copy framed anew by a
detector loses much of that (docs/results.md): the unseen faces' accuracy is the one a stranger's photo gets.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from fer_lightning.fer2013 import CLASS_NAMES


def make_sheets(faces: np.ndarray, labels: np.ndarray, out_dir: Path, pictures: int, per_picture: int,
                seed: int = 0, max_tilt: float = 0.0, about: pd.DataFrame | None = None) -> pd.DataFrame:
    """Write ``pictures`` JPEGs of ``per_picture`` faces each (96-160 px, random places, turned by up to
    ``max_tilt`` degrees either way, noise); return the truth, with ``about``'s columns (a row per face) for each
    face pasted."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    cell, truth = 220, []
    order = rng.permutation(len(faces))[: pictures * per_picture]
    for p in range(pictures):
        height, width = cell + 40, cell * per_picture + 40
        gradient = np.linspace(rng.uniform(60, 140), rng.uniform(100, 200), width)[None, :]
        canvas = np.repeat(gradient, height, axis=0)
        name = f"sheet_{p:04d}.jpg"
        for slot, index in enumerate(order[p * per_picture:(p + 1) * per_picture]):
            side = int(rng.integers(96, 161))
            x = 20 + slot * cell + int(rng.integers(0, cell - side + 1))
            y = 20 + int(rng.integers(0, cell - side + 1))
            face = cv2.resize(faces[index], (side, side), interpolation=cv2.INTER_CUBIC)
            if max_tilt:
                turn = cv2.getRotationMatrix2D((side / 2, side / 2), float(rng.uniform(-max_tilt, max_tilt)), 1.0)
                face = cv2.warpAffine(face, turn, (side, side), borderMode=cv2.BORDER_REPLICATE)
            canvas[y:y + side, x:x + side] = face
            truth.append({"file": name, "x": x, "y": y, "w": side, "h": side, "label": CLASS_NAMES[labels[index]],
                          **({} if about is None else about.iloc[index].to_dict())})
        canvas = np.clip(canvas + rng.normal(0, 6, canvas.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(out_dir / name), canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])
    table = pd.DataFrame(truth)
    table.to_csv(out_dir / "truth.csv", index=False)
    return table


def score(predictions: pd.DataFrame, truth: pd.DataFrame) -> dict[str, float]:
    """A pasted face counts as detected when a predicted box's centre lies inside it; accuracy is on those, and on
    those of them that are unseen where the truth says which."""
    found = predictions[predictions.status == "ok"].assign(file=lambda t: t.file.map(lambda f: Path(f).name))
    found = found.assign(cx=found.x + found.w / 2, cy=found.y + found.h / 2)
    right: dict[int, bool] = {}  # per detected face (its truth row)
    matched = set()
    for face in truth.itertuples():
        hits = found[(found.file == face.file) & found.cx.between(face.x, face.x + face.w)
                     & found.cy.between(face.y, face.y + face.h)]
        if len(hits):
            right[face.Index] = hits.iloc[0].emotion == face.label
            matched.add(hits.index[0])
    detected = pd.Series(right, dtype=bool)
    figures = {"faces": len(truth), "detected": len(detected), "detection_rate": len(detected) / max(len(truth), 1),
               "accuracy_on_detected": detected.mean() if len(detected) else 0.0,
               "false_detections": len(found) - len(matched)}
    if "unseen" in truth.columns:
        unseen = detected[truth.unseen.loc[detected.index].to_numpy(bool)]
        figures |= {"detected_unseen": len(unseen),
                    "accuracy_on_detected_unseen": unseen.mean() if len(unseen) else 0.0}
    return figures

