"""fer-predict: emotions of the faces in photos, folders, globs and videos, from a checkpoint, ONNX file or stack.

Faces from many files go through the network together in batches. Each face is one row of predictions.csv
(and predictions.json); an image without a face is a row too. In a video each face keeps an id across frames,
and each video gets a summary in predictions.json and an emotion-over-time plot per face under timelines/. A
file that cannot be read is one error line; the rest are still processed, and the exit status says that
something failed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from omegaconf import DictConfig
from rich.progress import Progress

from fer_lightning.faces.detectors import Box, Face
from fer_lightning.faces.finder import FaceFinder
from fer_lightning.faces.video_search import VideoFaces
from fer_lightning.fer2013 import CLASS_NAMES
from fer_lightning.figures import save_png
from fer_lightning.predict.annotation import AnnotatedVideos, annotate
from fer_lightning.predict.console import show_results
from fer_lightning.predict.loading import EmotionModel, face_finder, load_model
from fer_lightning.predict.media import (
    HEIF_SUFFIXES,
    IMAGE_SUFFIXES,
    MediaError,
    is_video,
    read_image,
    video_frames,
    video_info,
)
from fer_lightning.predict.occlusion import explanation_picture, occlusion_maps
from fer_lightning.predict.overview import Overview
from fer_lightning.predict.request import input_files
from fer_lightning.predict.video_summary import plot_timeline, summarise_video

log = logging.getLogger(__name__)
ASSUMED_FPS = 30.0  # a video's frame rate where its container states none: a camera's usual
WRITABLE_SUFFIXES = IMAGE_SUFFIXES - {".gif", ".pgm", ".ppm", *HEIF_SUFFIXES}  # what OpenCV writes
COLUMNS = ["file", "frame", "time_s", "face", "face_id", "status", "x", "y", "w", "h", "detector_score", "emotion",
           "confidence", *(f"p_{name}" for name in CLASS_NAMES)]  # predictions.csv's, whichever row comes first


@dataclass
class Picture:
    """One image or video frame waiting for its faces' predictions."""

    path: Path
    frame: int | None
    time_s: float | None
    faces: list[Face]
    boxes: list[Box]  # the squares the crops were cut from
    crops: list[np.ndarray]
    ids: list[int] | None = None  # video frames: each face's id across the video
    image: np.ndarray | None = None  # kept only when an annotated copy (of the photo, or of the video) is written


@dataclass
class Predictor:
    """Faces gathered across pictures and predicted a batch at a time. Each batch's rows are added to
    predictions.csv as it is predicted, so a run that is stopped (a long video, a large folder) keeps what it
    had done, less one batch at most; predict() writes the whole table again at the end. A batch is also predicted
    early once its first picture has waited ``save_every_s`` (a video with two faces a frame fills a batch of 256 in
    128 sampled frames, which a kill would lose), or once the pictures and frames held for their annotated copies reach
    ``max_kept_bytes``: a phone's photo is 36 MB decoded, and 256 of them (or a folder of pictures without faces,
    which never fill a batch) would all be held."""

    model: EmotionModel
    finder: FaceFinder
    out_dir: Path
    batch_size: int = 256
    annotate: bool = True
    tracking: dict[str, Any] = field(default_factory=dict)
    zoom_every: int = 1  # videos: YuNet's zoomed look on every n-th sampled frame at least (video_search.py)
    explain: bool = False  # an occlusion map per photo face under explained/ (occlusion.py)
    overview: Overview | None = None  # each emotion's surest photo faces, for faces.png (overview.py)
    max_kept_bytes: int = 256 * 2**20
    save_every_s: float = 10.0
    clock: Callable[[], float] = time.monotonic
    rows: list[dict[str, Any]] = field(default_factory=list)
    annotated_videos: AnnotatedVideos = field(default_factory=AnnotatedVideos)
    _pending: list[Picture] = field(default_factory=list)
    _pending_faces: int = 0
    _kept_bytes: int = 0
    _waiting_since: float = 0.0  # when the first pending picture came
    _videos: dict[Path, VideoFaces] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(columns=COLUMNS).to_csv(self.csv_path, index=False)  # a run dir used again starts empty

    @property
    def csv_path(self) -> Path:
        return self.out_dir / "predictions.csv"

    def start_video(self, path: Path, frames_per_second: float) -> None:
        """Frames of the video ``path`` follow, in order, sampled at this rate: its annotated copy's."""
        self._videos[path] = VideoFaces.start(self.finder, self.zoom_every, self.tracking)
        if self.annotate:
            self.annotated_videos.start(path, mirrored(self.out_dir / "annotated", path), frames_per_second)

    def end_video(self, path: Path) -> None:
        """No frame of ``path`` comes after those added: its copy is closed once they are predicted."""
        self._videos.pop(path)
        self.annotated_videos.end(path)

    def add(self, path: Path, frame: int | None, image: np.ndarray, time_s: float | None = None) -> None:
        """A photo (``frame`` None) or a video's frame, which comes between that video's ``start_video`` and
        ``end_video``; its faces are predicted with the batch it falls in."""
        ids = None
        if frame is None:
            faces, boxes, crops = self.finder.cut_out(image)
        else:
            faces, boxes, crops, ids = self._videos[path].cut_out(image)
        keep = image if self.annotate else None
        if not self._pending:
            self._waiting_since = self.clock()
        self._pending.append(Picture(path, frame, time_s, faces, boxes, crops, ids, keep))
        self._pending_faces += len(crops)
        self._kept_bytes += 0 if keep is None else keep.nbytes
        if self._pending_faces >= self.batch_size or self._kept_bytes >= self.max_kept_bytes \
                or self.clock() - self._waiting_since >= self.save_every_s:
            self.flush()

    def flush(self) -> None:
        """Predict every pending face in one batch; add their rows to predictions.csv first, so that a run stopped
        while the slower annotated copies and explanations are written (a video's copy: 70 ms a 720p frame) keeps
        them."""
        crops = [crop for picture in self._pending for crop in picture.crops]
        proba = self.model.predict_proba(np.stack(crops)) if crops else np.zeros((0, len(CLASS_NAMES)))
        ends = np.cumsum([len(picture.crops) for picture in self._pending], dtype=int)
        each = [proba[end - len(picture.crops):end] for picture, end in zip(self._pending, ends, strict=True)]
        rows = [row for picture, mine in zip(self._pending, each, strict=True) for row in _rows(picture, mine)]
        pd.DataFrame(rows, columns=COLUMNS).to_csv(self.csv_path, mode="a", header=False, index=False)
        self.rows += rows
        explained = []
        for picture, mine in zip(self._pending, each, strict=True):
            if picture.image is not None:
                labels = [f"{CLASS_NAMES[p.argmax()]} {p.max():.0%}" for p in mine]
                if picture.ids is not None:  # a video's: which person, as in its rows and timelines
                    labels = [f"{face_id}: {label}" for face_id, label in zip(picture.ids, labels, strict=True)]
                labelled = list(zip(picture.boxes, labels, strict=True))
                if picture.frame is None:
                    self._write_annotated(picture.path, picture.image, labelled)
                else:
                    self.annotated_videos.write(picture.path, annotate(picture.image, labelled))
            if self.explain and picture.frame is None:
                faces = enumerate(zip(picture.crops, mine, strict=True))
                explained += [(picture.path, i, crop, p) for i, (crop, p) in faces]
            if self.overview is not None and picture.frame is None:
                self.overview.add(picture.path, picture.crops, mine)
        if explained:
            self._write_explanations(explained)
        self._pending, self._pending_faces, self._kept_bytes = [], 0, 0
        self.annotated_videos.close_ended()

    def _write_explanations(self, faces: list[tuple[Path, int, np.ndarray, np.ndarray]]) -> None:
        """explained/<the photo's path>/face<i>.png for each (photo, face number, crop, probabilities)."""
        targets = np.array([proba.argmax() for *_, proba in faces])
        crops = np.stack([crop for _, _, crop, _ in faces])
        maps = occlusion_maps(self.model.predict_proba, crops, targets, self.batch_size)
        for (path, i, crop, proba), drops in zip(faces, maps, strict=True):
            target = mirrored(self.out_dir / "explained", path) / f"face{i}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            label = f"{CLASS_NAMES[proba.argmax()]} {proba.max():.0%}"
            cv2.imwrite(str(target), explanation_picture(crop, drops, label))

    def _write_annotated(self, path: Path, image: np.ndarray, labelled: list[tuple[Box, str]]) -> None:
        target = mirrored(self.out_dir / "annotated", path)
        if target.suffix.lower() not in WRITABLE_SUFFIXES:
            target = target.with_name(target.name + ".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(target), annotate(image, labelled))


def mirrored(folder: Path, path: Path) -> Path:
    """Where an output about input ``path`` goes under ``folder``: its path relative to the working dir (or to
    the root, for a file outside it), so files of the same name in different folders do not collide."""
    absolute = path.resolve()
    relative = absolute.relative_to(Path.cwd()) if absolute.is_relative_to(Path.cwd()) else \
        absolute.relative_to(absolute.anchor)
    return folder / relative


def _rows(picture: Picture, proba: np.ndarray) -> list[dict[str, Any]]:
    base = {"file": str(picture.path), "frame": picture.frame, "time_s": picture.time_s}
    if not picture.boxes:
        return [{**base, "face": None, "status": "no_face"}]
    ids: list[int] | list[None] = picture.ids or [None] * len(picture.boxes)
    return [{**base, "face": i, "face_id": face_id, "status": "ok", "x": box.x, "y": box.y, "w": box.w, "h": box.h,
             "detector_score": None if face.score is None else round(face.score, 3),
             "emotion": CLASS_NAMES[int(p.argmax())], "confidence": round(float(p.max()), 4),
             **{f"p_{name}": round(float(v), 4) for name, v in zip(CLASS_NAMES, p, strict=True)}}
            for i, (face, box, face_id, p) in enumerate(zip(picture.faces, picture.boxes, ids, proba, strict=True))]


def _predict_video(predictor: Predictor, path: Path, every_n_frames: int, progress: Progress) -> None:
    """Every n-th frame through the predictor, with a progress bar that counts the video's frames."""
    fps, count = video_info(path)
    task = progress.add_task(f"  {path.name} frames", total=count)
    predictor.start_video(path, (fps or ASSUMED_FPS) / every_n_frames)
    try:
        for frame, image in video_frames(path, every_n_frames):
            predictor.add(path, frame, image, None if fps is None else round(frame / fps, 3))
            progress.update(task, completed=frame + 1)
    finally:
        predictor.end_video(path)
        progress.remove_task(task)


def _video_summaries(table: pd.DataFrame, out_dir: Path, smooth: int, plots: bool,
                     videos: AnnotatedVideos) -> list[dict[str, Any]]:
    """Each video's summary, naming its annotated copy; with ``plots``, an emotion-over-time PNG per face, named in
    its summary."""
    summaries = []
    for file, rows in table[table.frame.notna()].groupby("file", sort=False):
        summary = summarise_video(rows, smooth)
        copy = videos.target(Path(file))
        summary["annotated"] = None if copy is None else str(copy.relative_to(out_dir))
        for face in summary["per_face"] if plots else []:
            target = mirrored(out_dir / "timelines", Path(file)) / f"face_{face['face_id']}.png"
            plot_timeline(rows[rows.face_id == face["face_id"]], smooth,
                          f"{Path(file).name}, face {face['face_id']}", target)
            face["timeline"] = str(target.relative_to(out_dir))
        summaries.append(summary)
    return summaries


def predict(cfg: DictConfig) -> dict[str, Any]:
    """Run the model over every input; write predictions.csv, predictions.json and annotated copies."""
    model, description = load_model(cfg)
    log.info("Model: %s", description)  # which runtime and precision auto picked here, the TTA, the temperature
    files, errors = input_files(cfg.inputs)
    for problem in errors:
        log.error(problem)
    out_dir = Path(cfg.paths.output_dir)
    predictor = Predictor(model, face_finder(cfg), out_dir, cfg.batch_size, cfg.annotate, dict(cfg.video.tracking),
                          cfg.video.zoom_every, cfg.explain, Overview() if cfg.overview else None,
                          save_every_s=cfg.save_every_s)
    with Progress(disable=not cfg.progress) as progress:
        task = progress.add_task("files", total=len(files))
        try:
            for path in files:
                progress.update(task, description=path.name)
                try:
                    if is_video(path):
                        _predict_video(predictor, path, cfg.every_n_frames, progress)
                    else:
                        predictor.add(path, None, read_image(path))
                except MediaError as err:
                    log.error(str(err))
                    errors.append(str(err))
                progress.advance(task)
            predictor.flush()
        finally:
            predictor.annotated_videos.close()  # a run stopped midway too: each copy plays to its last frame in
    table = pd.DataFrame(predictor.rows, columns=COLUMNS)
    table.to_csv(predictor.csv_path, index=False)  # once more, whole: its columns' formats then agree throughout
    status = table["status"]
    pictures = len(table[["file", "frame"]].drop_duplicates())
    videos = _video_summaries(table, out_dir, cfg.video.smooth_frames, cfg.video.timelines,
                              predictor.annotated_videos) if len(table) else []
    if predictor.overview is not None and predictor.overview.counts:
        save_png(predictor.overview.figure(), out_dir / "faces.png")
    summary = {"model": description, "detector": cfg.detector.name, "files": len(files), "pictures": pictures,
               "faces": int((status == "ok").sum()), "pictures_without_face": int((status == "no_face").sum()),
               "failed": len(errors), "errors": errors, "videos": videos}
    (out_dir / "predictions.json").write_text(json.dumps(
        {**summary, "rows": json.loads(table.to_json(orient="records"))}, indent=1))
    if cfg.show:
        show_results(table, videos, cfg.show, out_dir / "predictions.csv")
    log.info("%s in %s (photos and video frames) from %s (%d without a face, %d failed); wrote %s%s",
             _counted(summary["faces"], "face"), _counted(summary["pictures"], "picture"), _counted(len(files), "file"),
             summary["pictures_without_face"], len(errors), out_dir / "predictions.csv",
             f", annotated copies under {out_dir / 'annotated'}" if cfg.annotate and pictures else "")
    return summary


def _counted(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
