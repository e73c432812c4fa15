"""Which copy finder to trust: each one measured on synthetic copies of real faces, and on real faces.

Recall is the share of ``faces`` real faces whose synthetic copy (re-encoded as JPEG, shifted, re-cropped,
brightened, or all of these at once) the finder pairs with its original. The other column counts the pairs a
finder reports among ``population`` distinct real faces: an upper bound on its false matches, since FER-2013
holds real near copies too (near_duplicates.png shows which). ``fer-analyze near_duplicate_check=true``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import cv2
import numpy as np
import pandas as pd
from scipy.fft import dctn

from fer_lightning.data.duplicates import (
    MEASURED,
    NearDuplicateSettings,
    copy_groups,
    exact_groups,
    near_duplicate_pairs,
)
from fer_lightning.fer2013 import IMAGE_SIDE

Transform = Callable[[np.ndarray], np.ndarray]


def _jpeg(face: np.ndarray, quality: int = 60) -> np.ndarray:
    encoded = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
    return cast(np.ndarray, cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE))  # None only for bytes that are no image


def _shift(face: np.ndarray, dx: int = 2, dy: int = 1) -> np.ndarray:
    move = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
    return cv2.warpAffine(face, move, (IMAGE_SIDE, IMAGE_SIDE), borderMode=cv2.BORDER_REPLICATE)


def _recrop(face: np.ndarray, margin: int = 3) -> np.ndarray:
    inner = face[margin:IMAGE_SIDE - margin, margin:IMAGE_SIDE - margin]
    return cv2.resize(inner, (IMAGE_SIDE, IMAGE_SIDE), interpolation=cv2.INTER_AREA)


def _brighten(face: np.ndarray) -> np.ndarray:
    return np.clip(face.astype(np.float32) * 1.1 + 10, 0, 255).astype(np.uint8)


TRANSFORMS: dict[str, Transform] = {
    "jpeg_q60": _jpeg, "shift_2x1px": _shift, "recrop_3px": _recrop, "brighter": _brighten,
    "all_at_once": lambda face: _jpeg(_shift(_recrop(face, 2), 1, 1), 70),
}


def phash(images: np.ndarray) -> np.ndarray:
    """(N,) 64-bit pHashes: the 8x8 low-frequency DCT of a 32x32 thumbnail against its median (63 bits used)."""
    small = np.stack([cv2.resize(face, (32, 32), interpolation=cv2.INTER_AREA) for face in images]).astype(np.float32)
    low = dctn(small, axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(images), -1)[:, 1:]
    bits = np.concatenate([low > np.median(low, axis=1, keepdims=True), np.zeros((len(images), 1), bool)], axis=1)
    return np.packbits(bits, axis=1).view(">u8").ravel()


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a ^ b)


def thumbnail_vectors(images: np.ndarray) -> np.ndarray:
    """(N, 256) unit vectors of 16x16 thumbnails with the mean removed: a plain low-resolution cosine."""
    small = np.stack([cv2.resize(face, (16, 16), interpolation=cv2.INTER_AREA) for face in images])
    small = small.reshape(len(images), -1).astype(np.float32)
    small -= small.mean(axis=1, keepdims=True)
    return small / (np.linalg.norm(small, axis=1, keepdims=True) + 1e-6)


def _upper(square: np.ndarray) -> np.ndarray:
    """Each pair of a square pairwise matrix once."""
    return square[np.triu_indices(len(square), 1)]


def compare_copy_finders(images: np.ndarray, faces: int = 500, population: int = 5000, seed: int = 0,
                         settings: NearDuplicateSettings = MEASURED) -> pd.DataFrame:
    """One row per finder and threshold: recall per kind of synthetic copy, and pairs among real faces."""
    rng = np.random.default_rng(seed)
    first = exact_groups(images)
    distinct = np.flatnonzero((first == np.arange(len(images))) & (images.reshape(len(images), -1).std(1) >= 5))
    chosen = images[rng.choice(distinct, min(population, len(distinct)), replace=False)]
    originals = chosen[:faces]
    faces = len(originals)  # a small data set has fewer distinct faces than asked for
    copies = {name: np.stack([transform(face) for face in originals]) for name, transform in TRANSFORMS.items()}
    rows = []

    hashes = phash(chosen)
    population_hamming = _upper(hamming(hashes[:, None], hashes[None, :]))
    for threshold in (4, 6, 8, 10):
        recall = {name: float(np.mean(hamming(phash(c), hashes[:faces]) <= threshold)) for name, c in copies.items()}
        rows.append({"finder": "pHash", "threshold": f"hamming <= {threshold}", **recall,
                     f"pairs_among_{len(chosen)}_real": int((population_hamming <= threshold).sum())})
    vectors = thumbnail_vectors(chosen)
    population_cosine = _upper(vectors @ vectors.T)
    for least_cosine in (0.9, 0.95, 0.98):
        recall = {name: float(np.mean((thumbnail_vectors(c) * vectors[:faces]).sum(1) >= least_cosine))
                  for name, c in copies.items()}
        rows.append({"finder": "16x16 cosine", "threshold": f">= {least_cosine}", **recall,
                     f"pairs_among_{len(chosen)}_real": int((population_cosine >= threshold).sum())})

    # Ours runs on the real faces and every copy together, as on the data set.
    together = np.concatenate([chosen, *copies.values()])
    pairs, _ = near_duplicate_pairs(together, settings)
    groups = copy_groups(len(together), exact_groups(together), pairs)
    recall = {}
    for n, name in enumerate(copies):
        copy_rows = len(chosen) + n * faces + np.arange(faces)
        recall[name] = float(np.mean((groups[copy_rows] >= 0) & (groups[copy_rows] == groups[:faces])))
    among_real = int(((pairs[:, 0] < len(chosen)) & (pairs[:, 1] < len(chosen))).sum())
    rows.append({"finder": "coarse neighbours + aligned correlation (ours)", "threshold": f">= {settings.min_ncc}",
                 **recall, f"pairs_among_{len(chosen)}_real": among_real})
    return pd.DataFrame(rows)
