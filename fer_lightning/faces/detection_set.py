"""Pictures with known face boxes, to choose a detector by measurement: recall, false detections, speed.

Each picture is one case, chosen to test what detectors get wrong in real photos:

- ``plain``: upright faces of 64-160 px;
- ``small``: faces of 36-48 px, around the Haar cascade's 40 px floor;
- ``tilted``: faces turned 15-30 degrees either way;
- ``occluded``: a third of the face hidden behind a flat patch (a scarf below, a hand at one side);
- ``side_lit``: light falling off across the face, from full to a third;
- ``empty``: no face at all, for false detections.

FER-2013 faces (skipping blank ones) are pasted with a soft oval edge onto real scenes that ship with
scikit-learn (a temple, a flower) or onto noisy gradients, several per picture, in separate cells, as gray
pictures. A detection finds a face when its centre lies in the face's square and its size is 0.4-2.5x the
square's; each face and each detection is matched at most once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd
from sklearn.datasets import load_sample_images

from fer_lightning.faces.detectors import Detector, Face

CASES = ("plain", "small", "tilted", "occluded", "side_lit", "empty")
TRUTH_COLUMNS = ["file", "case", "x", "y", "side", "angle"]  # side: of the pasted square, before any turn
WIDTH, HEIGHT = 640, 480
_SIDES = {"plain": (64, 160), "small": (36, 48), "tilted": (64, 140), "occluded": (64, 160), "side_lit": (64, 160)}


@dataclass
class DetectionSet:
    pictures: list[np.ndarray]  # gray uint8, HEIGHT x WIDTH
    names: list[str]
    cases: list[str]
    truth: pd.DataFrame  # TRUTH_COLUMNS, one row per pasted face


def _scenes(rng: np.random.Generator) -> Iterator[np.ndarray]:
    photos = [cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) for image in load_sample_images().images]
    while True:
        if rng.random() < 0.3:
            ramp = np.linspace(rng.uniform(40, 140), rng.uniform(100, 220), WIDTH)[None, :]
            yield np.clip(np.repeat(ramp, HEIGHT, 0) + rng.normal(0, 8, (HEIGHT, WIDTH)), 0, 255).astype(np.uint8)
            continue
        photo = photos[rng.integers(len(photos))]
        scale = max(WIDTH / photo.shape[1], HEIGHT / photo.shape[0]) * rng.uniform(1.0, 1.8)
        photo = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        x, y = rng.integers(photo.shape[1] - WIDTH + 1), rng.integers(photo.shape[0] - HEIGHT + 1)
        scene = photo[y:y + HEIGHT, x:x + WIDTH]
        yield scene[:, ::-1].copy() if rng.random() < 0.5 else scene.copy()


def _oval(side: int) -> np.ndarray:
    """Where the pasted face covers the scene: the square with its corners rounded off and a soft edge."""
    mask = np.zeros((side, side), np.float32)
    cv2.ellipse(mask, (side // 2, side // 2), (int(side * 0.56), int(side * 0.6)), 0, 0, 360, 1.0, -1)
    mask[[0, -1], :] = mask[:, [0, -1]] = 0
    return cv2.GaussianBlur(mask, (0, 0), max(side / 30, 0.8))


def _styled(face: np.ndarray, side: int, case: str, rng: np.random.Generator) -> np.ndarray:
    face = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA if side < 48 else cv2.INTER_CUBIC)
    face = face.astype(np.float32)
    if case == "occluded":
        cover = rng.uniform(0.3, 0.4)
        shade = rng.uniform(20, 230)
        if rng.random() < 0.5:
            face[int(side * (1 - cover)):] = shade  # a scarf over mouth and chin
        elif rng.random() < 0.5:
            face[:, :int(side * cover)] = shade  # a hand over one side
        else:
            face[:, int(side * (1 - cover)):] = shade
    if case == "side_lit":
        light = np.linspace(1.0, 0.33, side)[None, :]
        face = face * (light if rng.random() < 0.5 else light[:, ::-1])
    return face


def _paste(scene: np.ndarray, face: np.ndarray, x: int, y: int, angle: float) -> None:
    side = face.shape[0]
    alpha = _oval(side)
    if angle:
        turn = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
        face = cv2.warpAffine(face, turn, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha = cv2.warpAffine(alpha, turn, (side, side), flags=cv2.INTER_LINEAR)
    area = scene[y:y + side, x:x + side].astype(np.float32)
    scene[y:y + side, x:x + side] = np.clip(alpha * face + (1 - alpha) * area, 0, 255).astype(np.uint8)


def make_detection_set(faces: np.ndarray, pictures_per_case: int, per_picture: int = 4,
                       seed: int = 0) -> DetectionSet:
    """``pictures_per_case`` pictures of every case, ``per_picture`` faces each (none in ``empty``)."""
    rng = np.random.default_rng(seed)
    usable = faces[faces.reshape(len(faces), -1).std(1) > 8]  # blank FER-2013 images are no face
    order = iter(rng.permutation(len(usable)))
    columns = int(np.ceil(np.sqrt(per_picture)))
    rows_of_cells = int(np.ceil(per_picture / columns))
    cell_w, cell_h = WIDTH // columns, HEIGHT // rows_of_cells
    scenes = _scenes(rng)
    pictures, names, cases, truth = [], [], [], []
    for case in CASES:
        for n in range(pictures_per_case):
            scene, name = next(scenes), f"{case}_{n:03d}.png"
            for cell in range(per_picture if case != "empty" else 0):
                low, high = _SIDES[case]
                side = int(rng.integers(low, min(high, cell_w - 8, cell_h - 8) + 1))
                x = cell % columns * cell_w + int(rng.integers(4, cell_w - side - 3))
                y = cell // columns * cell_h + int(rng.integers(4, cell_h - side - 3))
                angle = float(rng.uniform(15, 30) * rng.choice([-1, 1])) if case == "tilted" else 0.0
                _paste(scene, _styled(usable[next(order)], side, case, rng), x, y, angle)
                truth.append({"file": name, "case": case, "x": x, "y": y, "side": side, "angle": round(angle, 1)})
            pictures.append(scene)
            names.append(name)
            cases.append(case)
    return DetectionSet(pictures, names, cases, pd.DataFrame(truth, columns=TRUTH_COLUMNS))


def match(found: list[Face], truth: pd.DataFrame) -> tuple[list[bool], int]:
    """Which of the picture's true faces were found, and how many detections matched no face."""
    hits, used = [False] * len(truth), set()
    pairs = []
    for i, face in enumerate(truth.itertuples()):
        for j, detection in enumerate(found):
            cx, cy = detection.box.centre
            size = np.sqrt(detection.box.w * detection.box.h) / face.side
            if face.x <= cx <= face.x + face.side and face.y <= cy <= face.y + face.side and 0.4 <= size <= 2.5:
                centre = (face.x + face.side / 2, face.y + face.side / 2)
                pairs.append((np.hypot(cx - centre[0], cy - centre[1]), i, j))
    for _, i, j in sorted(pairs):
        if not hits[i] and j not in used:
            hits[i] = True
            used.add(j)
    return hits, len(found) - len(used)


@dataclass
class DetectorScore:
    found: pd.Series  # per true face (truth's index): found or not
    false_detections: int
    pictures: int
    ms_per_megapixel: float
    detections: list[list[Face]]

    def summary(self, truth: pd.DataFrame) -> dict[str, float]:
        by_case = self.found.groupby(truth.case).mean()
        return {"recall": round(float(self.found.mean()), 4),
                **{f"recall_{case}": round(float(share), 4) for case, share in by_case.items()},
                "false_detections": self.false_detections,
                "false_per_100_pictures": round(100 * self.false_detections / self.pictures, 2),
                "ms_per_megapixel": round(self.ms_per_megapixel, 1)}


def score_detector(detector: Detector, data: DetectionSet) -> DetectorScore:
    """Run the detector on every picture (after one untimed warm-up call) and match against the truth."""
    detector.detect(data.pictures[0])
    found = pd.Series(False, index=data.truth.index)
    false, seconds, detections = 0, [], []
    for picture, name in zip(data.pictures, data.names, strict=True):
        start = time.perf_counter()
        faces = detector.detect(picture)
        seconds.append(time.perf_counter() - start)
        mine = data.truth[data.truth.file == name]
        hits, extra = match(faces, mine)
        found[mine.index] = np.array(hits, bool) if len(mine) else found[mine.index]
        false += extra
        detections.append(faces)
    megapixels = WIDTH * HEIGHT / 1e6
    return DetectorScore(found, false, len(data.pictures), 1000 * float(np.median(seconds)) / megapixels, detections)
