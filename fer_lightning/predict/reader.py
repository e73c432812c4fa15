"""fer-predict from Python: a model and a face finder loaded once; pictures in, faces and their emotions out.

For a notebook, or a program that holds its pictures as arrays (a camera frame, an upload) and wants answers as
values rather than files; ``EmotionReader.video`` takes a video's or a camera's frames one at a time, and keeps each
face's id across them. The settings are fer-predict's own (conf/predict.yaml, composed by Hydra with the same
overrides), so a face gets the TTA, temperature, runtime, detector and crop that the command would give it: the
answers are the command's, row for row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig
from PIL import Image, ImageOps

from fer_lightning import CONF_DIR
from fer_lightning.errors import FerError
from fer_lightning.faces.detectors import Box, Face
from fer_lightning.faces.finder import FaceFinder
from fer_lightning.faces.video_search import VideoFaces
from fer_lightning.fer2013 import CLASS_NAMES, NUM_CLASSES
from fer_lightning.predict.loading import EmotionModel, face_finder, load_model
from fer_lightning.predict.media import pillow_array, read_image
from fer_lightning.predict.request import check_settings

PictureLike = str | Path | np.ndarray | Image.Image  # a file's path, or the image itself


@dataclass(frozen=True)
class FaceEmotion:
    """One face of a picture: where it is, what it shows, how sure the model is."""

    box: Box  # the square its crop was cut from, in the picture's pixels
    emotion: str
    confidence: float  # the probability of ``emotion``
    probabilities: dict[str, float]  # each class's, in CLASS_NAMES' order
    detector_score: float | None  # None where the whole picture was taken as the face
    crop: np.ndarray  # the 48x48 uint8 face the model saw
    face_id: int | None = None  # a video's frames (``EmotionReader.video``): which person, kept from frame to frame


@dataclass
class EmotionReader:
    """fer-predict's model and face finder, loaded once: ``read`` a picture, ``read_many`` a batch of them, ``video``
    for a video's or a camera's frames."""

    model: EmotionModel
    finder: FaceFinder
    description: str  # the model, its runtime, TTA and temperature, as fer-predict logs them
    zoom_every: int = 1  # conf/predict.yaml's video settings, for ``video``
    tracking: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, ckpt: str | Path | None = None, *, onnx: str | Path | None = None, stack: str | Path | None = None,
             overrides: Sequence[str] = ()) -> EmotionReader:
        """The model named by ``ckpt``, ``onnx`` or ``stack`` (exactly one, as fer-predict's keys of those names);
        ``overrides``: any other fer-predict setting as it is written on the command line (``"detector=haar"``,
        ``"tta=none"``). FerError, with one line naming the setting, where one cannot work."""
        cfg = _predict_config(overrides)
        for key, path in {"ckpt": ckpt, "onnx": onnx, "stack": stack}.items():
            if path is not None:
                cfg[key] = str(path)
        check_settings(cfg)
        model, description = load_model(cfg)
        return cls(model, face_finder(cfg), description, cfg.video.zoom_every, dict(cfg.video.tracking))

    def read(self, picture: PictureLike) -> list[FaceEmotion]:
        """The faces of one picture, largest first: a file's path, a Pillow image (turned as its EXIF orientation says,
        as a file is), or an 8-bit array as OpenCV holds one (gray, BGR or BGRA; an RGB array is ``array[..., ::-1]``).
        A 48x48 picture is one face, as in fer-predict."""
        return self.read_many([picture])[0]

    def read_many(self, pictures: Iterable[PictureLike]) -> list[list[FaceEmotion]]:
        """``read`` for each picture, every face of them through the model in one call, as fer-predict batches them."""
        return _answers(self.model, [(*self.finder.cut_out(_image(picture, f"picture {index}")), None)
                                     for index, picture in enumerate(pictures)])

    def video(self) -> VideoReader:
        """A reader for one video's or camera's frames, given one at a time and in order: each face also gets its
        ``face_id``, kept from frame to frame, and YuNet's zoomed look runs on some frames only, as fer-predict reads
        a video's sampled frames (conf/predict.yaml's ``video`` settings)."""
        return VideoReader(self.model, VideoFaces.start(self.finder, self.zoom_every, self.tracking))


def _answers(model: EmotionModel, found: list[tuple[list[Face], list[Box], list[np.ndarray], list[int] | None]],
             ) -> list[list[FaceEmotion]]:
    """Each picture's faces, squares, crops and ids (or None) as answers, all its crops through the model at once."""
    crops = [crop for _, _, picture_crops, _ in found for crop in picture_crops]
    proba = model.predict_proba(np.stack(crops)) if crops else np.zeros((0, NUM_CLASSES))
    answers, start = [], 0
    for faces, boxes, picture_crops, ids in found:
        mine = proba[start:start + len(faces)]
        start += len(faces)
        face_ids: list[int | None] = [None] * len(faces) if ids is None else list(ids)
        answers.append([FaceEmotion(box, CLASS_NAMES[int(p.argmax())], float(p.max()),
                                    dict(zip(CLASS_NAMES, map(float, p), strict=True)), face.score, crop, face_id)
                        for face, box, crop, p, face_id in zip(faces, boxes, picture_crops, mine, face_ids,
                                                               strict=True)])
    return answers


@dataclass
class VideoReader:
    """``EmotionReader.video``: frames in, each face's answer with its id out."""

    model: EmotionModel
    faces: VideoFaces
    frames_read: int = 0

    def read(self, frame: np.ndarray | Image.Image) -> list[FaceEmotion]:
        """The next frame's faces, largest first (a frame as ``EmotionReader.read`` takes a picture)."""
        image = _image(frame, f"frame {self.frames_read}")
        self.frames_read += 1
        return _answers(self.model, [self.faces.cut_out(image)])[0]


def _predict_config(overrides: Sequence[str]) -> DictConfig:
    """conf/predict.yaml with ``overrides``, also from inside a caller's own Hydra app: Hydra holds one config search
    path per process, so the caller's is set aside while ours composes, then put back."""
    callers = GlobalHydra.instance().hydra
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose("predict", overrides=list(overrides))
    finally:
        if callers is not None:
            GlobalHydra.instance().initialize(callers)


def _image(picture: PictureLike, name: str) -> np.ndarray:
    """The picture as an 8-bit array; FerError naming it (by path, or ``name``: its place) where it is not one."""
    if isinstance(picture, str | Path):
        return read_image(Path(picture))
    if isinstance(picture, Image.Image):
        return pillow_array(ImageOps.exif_transpose(picture))  # a turned copy: the caller's image stays as it was
    if not isinstance(picture, np.ndarray):
        raise FerError(f"{name}: expected a file's path, a Pillow image or an image array, got "
                       f"{type(picture).__name__}")
    channels_ok = picture.ndim == 2 or (picture.ndim == 3 and picture.shape[2] in (3, 4))
    if picture.dtype != np.uint8 or not channels_ok or 0 in picture.shape:
        raise FerError(f"{name}: expected an 8-bit gray (H, W) or BGR/BGRA (H, W, 3 or 4) image, got a "
                       f"{picture.dtype} array of shape {picture.shape}")
    return picture
