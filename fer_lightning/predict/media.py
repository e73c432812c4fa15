"""What fer-predict reads: files, folders and globs expanded to images and videos, each read or refused by name."""

from __future__ import annotations

import functools
import glob
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from fer_lightning.errors import FerError

JPEG_SUFFIXES = {".jpg", ".jpeg"}
HEIF_SUFFIXES = {".heic", ".heif"}  # iPhones' photos; Pillow reads them once pillow-heif registers its opener
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", *HEIF_SUFFIXES}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
URL = re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE)  # http://, rtsp://, ...: nothing is fetched at run time


class MediaError(FerError):
    """One input that cannot be used; the others are still processed."""


def expand_inputs(inputs: str | list[str]) -> tuple[list[Path], list[str]]:
    """Files named directly, found in folders (recursively, images and videos only) or matched by globs.

    Returns the files in a stable order without repeats, and one message for each input that gave nothing.
    """
    files: list[Path] = []
    problems: list[str] = []
    for item in [inputs] if isinstance(inputs, str) else list(inputs):
        path = Path(item).expanduser()
        if URL.match(str(item)):
            problems.append(f"{item}: a URL; fer-predict reads files on this machine (download it first)")
        elif any(char in str(item) for char in "*?["):
            matched = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            files += matched
            problems += [] if matched else [f"{item}: the pattern matches no file"]
        elif path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file()
                           and p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)
            files += found
            problems += [] if found else [f"{path}: empty folder, no images or videos in it"]
        elif path.is_file():
            files.append(path)
        else:
            problems.append(f"{path}: no such file or folder")
    return list(dict.fromkeys(files)), problems


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def read_image(path: Path) -> np.ndarray:
    """The whole image, decoded in full (a truncated file fails here), as 2-D gray or 3-channel BGR uint8, turned as
    its EXIF orientation says: a phone stores a photo as its sensor lay and tags how to turn it for viewing, and a
    face lying on its side is one the detectors miss. Boxes are then in the picture as a viewer shows it."""
    if path.suffix.lower() in JPEG_SUFFIXES and (whole := _whole_jpeg(path)) is not None:
        return whole
    if path.suffix.lower() in HEIF_SUFFIXES:
        _read_heif_too()
    try:
        with Image.open(path) as image:
            image.load()
            return pillow_array(image)
    except Image.UnidentifiedImageError:
        raise MediaError(f"{path}: not an image (Pillow does not recognise its format)") from None
    except (OSError, ValueError, SyntaxError) as err:
        raise MediaError(f"{path}: unreadable or truncated image ({err})") from None


def _whole_jpeg(path: Path) -> np.ndarray | None:
    """A JPEG that ends with its end-of-image marker, decoded by OpenCV, which gives Pillow's pixels, turned as its
    EXIF orientation says, straight into the BGR array the detectors take: Pillow decodes into four bytes a pixel,
    then copies them out and turns them into BGR, and a phone's photo cost a run more CPU and memory so
    (docs/results.md). None for a file that does not end so (one cut short, which OpenCV would fill with grey where
    Pillow refuses it; one with data after its image, as a phone's motion photo has) or that OpenCV cannot decode:
    Pillow reads and judges those."""
    try:
        data = np.fromfile(path, np.uint8)
    except OSError:
        return None  # Pillow says what is wrong with it
    return cv2.imdecode(data, cv2.IMREAD_ANYCOLOR) if data[-2:].tobytes() == b"\xff\xd9" else None


def pillow_array(image: Image.Image) -> np.ndarray:
    """A loaded Pillow image as ``read_image`` returns a file's: turned as its EXIF orientation says (in place: no copy
    of a picture that needs no turn), then 2-D gray or 3-channel BGR uint8."""
    ImageOps.exif_transpose(image, in_place=True)
    if image.mode.startswith("I"):
        return _eight_bit(np.asarray(image), sixteen_bit=image.mode.startswith("I;16"))
    if image.mode in ("1", "L", "LA"):
        return np.asarray(image if image.mode == "L" else image.convert("L"))
    return cv2.cvtColor(np.asarray(image if image.mode == "RGB" else image.convert("RGB")), cv2.COLOR_RGB2BGR)


def _eight_bit(gray: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    """A 16- or 32-bit gray picture in 8 bits, its top byte of 16 (Pillow's convert("L") clips at 255: a 16-bit PNG
    came out almost all white). A 32-bit one whose values fit in 8 bits is kept as it is."""
    wide = np.clip(gray.astype(np.int64), 0, 65535)
    return (wide >> 8 if sixteen_bit or wide.max() > 255 else wide).astype(np.uint8)


@functools.cache
def _read_heif_too() -> None:
    """Pillow's opener for HEIC/HEIF, registered on the first such file: pillow-heif is imported only where one is."""
    import pillow_heif

    pillow_heif.register_heif_opener()


def video_info(path: Path) -> tuple[float | None, int | None]:
    """Frames per second and frame count as the container states them; None where it does not."""
    capture = cv2.VideoCapture(str(path))
    try:
        fps, count = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return (fps if fps > 0 else None), (count if count > 0 else None)


def video_frames(path: Path, every_n_frames: int) -> Iterator[tuple[int, np.ndarray]]:
    """(frame index, BGR frame) for every n-th frame of a video. The frames between are decoded (a video's frames
    depend on those before them) but not converted to BGR, which at 4K costs seconds a video (docs/results.md)."""
    if every_n_frames < 1:
        raise ValueError(f"every_n_frames must be at least 1, got {every_n_frames}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise MediaError(f"{path}: OpenCV cannot open it as a video")
    index, yielded = 0, 0
    try:
        while True:
            if index % every_n_frames == 0:
                ok, frame = capture.read()
                if not ok:
                    break
                yielded += 1
                yield index, frame
            elif not capture.grab():
                break
            index += 1
    finally:
        capture.release()
    if yielded == 0:
        raise MediaError(f"{path}: no frame could be read from this video")
