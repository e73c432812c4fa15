"""fer-detection-bench: each face detector on the same pictures with known boxes, side by side.

Prints recall per case, false detections per 100 pictures, milliseconds per megapixel (median over pictures,
after one untimed call) and, where the Haar cascade is among them, the share of its misses each other detector
finds. Writes detection_bench.json and examples.png (one picture per case, true squares in green, each
detector's boxes in red) to its run dir.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import cv2
import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from fer_lightning.cli.common import CONF_DIR, exit_on_error
from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.errors import FerError, as_list, check_switch, check_whole_number
from fer_lightning.faces.detection_set import CASES, DetectionSet, DetectorScore, make_detection_set, score_detector
from fer_lightning.faces.detectors import make_detector
from fer_lightning.machine import cpu_name


def examples(data: DetectionSet, scores: dict[str, DetectorScore]) -> np.ndarray:
    """One picture per case (columns), one row per detector; truth in green, detections in red."""
    first = [data.cases.index(case) for case in CASES]
    rows = []
    for name, result in scores.items():
        tiles = []
        for index in first:
            tile = cv2.cvtColor(data.pictures[index], cv2.COLOR_GRAY2BGR)
            for face in data.truth[data.truth.file == data.names[index]].itertuples():
                cv2.rectangle(tile, (face.x, face.y), (face.x + face.side, face.y + face.side), (0, 200, 0), 2)
            for found in result.detections[index]:
                box = found.box
                cv2.rectangle(tile, (box.x, box.y), (box.x + box.w, box.y + box.h), (0, 0, 230), 2)
            cv2.putText(tile, f"{name}: {data.cases[index]}", (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 4)
            cv2.putText(tile, f"{name}: {data.cases[index]}", (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.9,
                        (255, 255, 255), 2)
            tiles.append(cv2.resize(tile, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
        rows.append(np.hstack(tiles))
    return np.vstack(rows)


def bench(cfg: DictConfig) -> dict[str, Any]:
    cfg.detectors = as_list("detectors", cfg.detectors, "detector settings")
    unknown = [name for name in cfg.detectors if name not in cfg.settings]
    if unknown:
        raise FerError(f"no settings for detector(s) {', '.join(unknown)}; known: {', '.join(cfg.settings)}")
    check_whole_number("pictures_per_case", cfg.pictures_per_case, "pictures")
    check_whole_number("per_picture", cfg.per_picture, "faces")
    check_whole_number("seed", cfg.seed, least=0)
    check_switch("save_pictures", cfg.save_pictures)
    faces, _ = load_fer2013(cfg.csv_path, cfg.cache_dir).split(cfg.split)
    data = make_detection_set(faces, cfg.pictures_per_case, cfg.per_picture, cfg.seed)
    settings = {name: cast(dict[str, Any], OmegaConf.to_container(cfg.settings[name])) for name in cfg.detectors}
    scores = {name: score_detector(make_detector(**settings[name]), data) for name in cfg.detectors}
    results: dict[str, Any] = {name: result.summary(data.truth) for name, result in scores.items()}
    if "haar" in scores:
        missed = ~scores["haar"].found
        for name, result in scores.items():
            if name != "haar":
                results[name]["haar_misses_found"] = round(float(result.found[missed].mean()), 4)
    out = Path(cfg.paths.output_dir)
    if cfg.save_pictures:
        (out / "pictures").mkdir(parents=True, exist_ok=True)
        for picture, name in zip(data.pictures, data.names, strict=True):
            cv2.imwrite(str(out / "pictures" / name), picture)
        data.truth.to_csv(out / "pictures" / "truth.csv", index=False)
    cv2.imwrite(str(out / "examples.png"), examples(data, scores))
    report = {"split": cfg.split, "seed": cfg.seed, "pictures": len(data.pictures), "faces": len(data.truth),
              "cpu": cpu_name(), "date": datetime.now(timezone.utc).isoformat(),
              "detectors": results}
    (out / "detection_bench.json").write_text(json.dumps(report, indent=2))
    return report


def table(report: dict[str, Any]) -> str:
    """The figures as a Markdown table, one column per detector."""
    names = list(report["detectors"])
    keys = list(dict.fromkeys(key for figures in report["detectors"].values() for key in figures))
    lines = ["| | " + " | ".join(names) + " |", "| --- |" + " --- |" * len(names)]
    for key in keys:
        lines.append(f"| {key} | " + " | ".join(str(report["detectors"][n].get(key, "")) for n in names) + " |")
    return "\n".join(lines)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="detection_bench")
def main(cfg: DictConfig) -> None:
    report = exit_on_error(lambda: bench(cfg))
    print(f"{report['pictures']} pictures, {report['faces']} faces from {report['split']} (seed {report['seed']})")
    print(table(report))
