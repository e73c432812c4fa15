"""fer-predict's answer in the terminal: each photo's faces and each video's people, so that a look at a few photos
needs no spreadsheet. Everything, always, is in predictions.csv and predictions.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table


def show_results(table: pd.DataFrame, videos: list[dict[str, Any]], limit: int, csv_path: Path,
                 console: Console | None = None) -> None:
    """The first ``limit`` photo faces (and pictures without one), then one row per face of each video."""
    console = console or Console()
    photos = table[table.frame.isna()] if len(table) else table
    if len(photos):
        shown = Table("file", "face", "emotion", "confidence", "next", title="Photos")
        for row in photos.head(limit).itertuples():
            shown.add_row(Path(row.file).name, *_face_cells(row))
        console.print(shown)
    video_faces = [(video["file"], face) for video in videos for face in video["per_face"]]
    if video_faces:
        shown = Table("file", "face id", "frames", "mostly", "share", title="Videos")
        for file, face in video_faces[:limit]:
            dominant = face["dominant_emotion"]
            shown.add_row(Path(file).name, str(face["face_id"]), str(face["frames"]), dominant,
                          f"{face['emotion_share'][dominant]:.0%}")
        console.print(shown)
    left = max(len(photos) - limit, 0) + max(len(video_faces) - limit, 0)
    if left:
        console.print(f"{left} more rows in {csv_path}", soft_wrap=True)  # the path unbroken, to copy


def _face_cells(row: Any) -> tuple[str, str, str, str]:
    """Face number, emotion, its probability and the runner-up, or the reason there is no face."""
    if row.status != "ok":
        return "-", "(no face found)", "", ""
    proba = {name.removeprefix("p_"): value for name, value in row._asdict().items() if name.startswith("p_")}
    runner_up = sorted(proba, key=proba.__getitem__)[-2]
    return str(int(row.face)), row.emotion, f"{row.confidence:.0%}", f"{runner_up} {proba[runner_up]:.0%}"
