"""What a video's rows say: per face (a tracker id) and per video, the share of time in each emotion, the
dominant one, when it changed, and an emotion-over-time plot.

A face-frame is one face in one sampled frame. Shares are over face-frames and add up to 1. Changes are read
from the probabilities averaged over ``smooth`` sampled frames around each one, so a single odd frame does not
count as a change of mood.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from fer_lightning.fer2013 import CLASS_NAMES

PROBA = [f"p_{name}" for name in CLASS_NAMES]
COLOURS = ["#d62728", "#8c564b", "#9467bd", "#2ca02c", "#1f77b4", "#ff7f0e", "#7f7f7f"]


def shares(rows: pd.DataFrame) -> dict[str, float]:
    counts = rows.emotion.value_counts()
    return {name: round(float(counts.get(name, 0)) / len(rows), 4) for name in CLASS_NAMES} if len(rows) else {}


def smoothed(face_rows: pd.DataFrame, smooth: int) -> pd.DataFrame:
    return face_rows[PROBA].rolling(smooth, center=True, min_periods=1).mean()


def changes(face_rows: pd.DataFrame, smooth: int) -> list[dict[str, Any]]:
    """Each frame where the smoothed leading emotion differs from the one before it."""
    labels = smoothed(face_rows, smooth).to_numpy().argmax(1)
    return [{"frame": int(face_rows.frame.iloc[i]), "time_s": _seconds(face_rows.time_s.iloc[i]),
             "from": CLASS_NAMES[labels[i - 1]], "to": CLASS_NAMES[labels[i]]}
            for i in range(1, len(labels)) if labels[i] != labels[i - 1]]


def _seconds(value: Any) -> float | None:
    return None if pd.isna(value) else round(float(value), 3)


def summarise_video(rows: pd.DataFrame, smooth: int) -> dict[str, Any]:
    """The summary of one video's rows (every sampled frame, with or without faces)."""
    found = rows[rows.status == "ok"]
    per_face = []
    for face_id, face_rows in found.groupby("face_id") if len(found) else []:
        face_rows = face_rows.sort_values("frame")
        face_shares = shares(face_rows)
        per_face.append({"face_id": int(face_id), "frames": len(face_rows),
                         "first_s": _seconds(face_rows.time_s.iloc[0]), "last_s": _seconds(face_rows.time_s.iloc[-1]),
                         "dominant_emotion": max(face_shares, key=face_shares.__getitem__),
                         "emotion_share": face_shares,
                         "changes": changes(face_rows, smooth)})
    video_shares = shares(found)
    return {"file": str(rows.file.iloc[0]), "frames": int(rows.frame.nunique()),
            "frames_with_faces": int(found.frame.nunique()), "faces": len(per_face),
            "dominant_emotion": max(video_shares, key=video_shares.__getitem__) if video_shares else None,
            "emotion_share": video_shares, "per_face": per_face}


def plot_timeline(face_rows: pd.DataFrame, smooth: int, title: str, path: Path) -> None:
    """Smoothed probability of each emotion over time, with the leading one as a colour band on top."""
    face_rows = face_rows.sort_values("frame")
    seconds = face_rows.time_s.notna().all()
    x = (face_rows.time_s if seconds else face_rows.frame).to_numpy(float)
    curves = smoothed(face_rows, smooth).to_numpy()
    figure, (band, axes) = plt.subplots(2, 1, figsize=(8, 3.6), sharex=True, height_ratios=[1, 6])
    for k, name in enumerate(CLASS_NAMES):
        axes.plot(x, curves[:, k], color=COLOURS[k], label=name, linewidth=1.6)
    leading = curves.argmax(1)
    edges = [*((x[1:] + x[:-1]) / 2), x[-1]]
    starts = [x[0], *edges[:-1]]
    for start, end, k in zip(starts, edges, leading, strict=True):
        band.axvspan(start, end if end > start else start + 1e-3, color=COLOURS[k], linewidth=0)
    band.set_yticks([])
    band.set_title(title, fontsize=10)
    axes.set_ylim(0, 1)
    axes.set_ylabel("probability")
    axes.set_xlabel("seconds" if seconds else "frame")
    axes.legend(ncol=7, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
