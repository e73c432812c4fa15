"""Copies of one face in FER-2013: byte-identical images, and near copies (re-encoded, shifted, re-cropped).

Near copies are found in two stages. A coarse 6x6 view of each face (of the whole face, and of its centre) puts
every face beside its few most similar ones; then each such candidate pair is aligned, over shifts of up to
8 px and zooms of 0.88-1.13, and kept when the normalised cross-correlation of the aligned faces reaches
``min_ncc`` both ways. Perceptual hashes and a plain low-resolution cosine were measured against this on
synthetic copies (``fer-analyze near_duplicate_check=true``; docs/results.md): they miss most shifted and
re-cropped copies at any threshold that keeps false matches few.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
from rich.progress import track
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fer_lightning.fer2013 import IMAGE_SIDE

COARSE_SIDE = 6
CENTRE_MARGIN = 8  # the centre view: the face without its outer 8 px, where background and hair differ most
ZOOMS = (0.88, 0.94, 1.0, 1.06, 1.13)
TEMPLATE_MARGIN = 8  # the aligned template is the face's central 32x32


@dataclass(frozen=True)
class NearDuplicateSettings:
    """``neighbours`` candidates per face and view, at least ``min_similarity`` alike there; ``min_ncc`` the
    aligned correlation (both ways) that makes a copy."""

    neighbours: int = 5
    min_similarity: float = 0.7
    min_ncc: float = 0.93


MEASURED = NearDuplicateSettings()  # the settings docs/results.md measured


def exact_groups(images: np.ndarray) -> np.ndarray:
    """For each image the index of the first image with the same bytes (itself when it is the first)."""
    flat = np.ascontiguousarray(images.reshape(len(images), -1))
    _, first, inverse = np.unique(flat, axis=0, return_index=True, return_inverse=True)
    return first[inverse.ravel()]


def coarse_view(images: np.ndarray, margin: int = 0) -> np.ndarray:
    """(N, 36) unit vectors: each face (or its centre) at 6x6, mean removed, so brightness does not count."""
    side = IMAGE_SIDE - 2 * margin
    crops = images[:, margin:margin + side, margin:margin + side]
    small = np.stack([cv2.resize(face, (COARSE_SIDE, COARSE_SIDE), interpolation=cv2.INTER_AREA)
                      for face in crops]).reshape(len(images), -1).astype(np.float32)
    small -= small.mean(axis=1, keepdims=True)
    return small / (np.linalg.norm(small, axis=1, keepdims=True) + 1e-6)


def nearest_pairs(views: np.ndarray, neighbours: int, min_similarity: float,
                  chunk: int = 2048) -> Iterator[np.ndarray]:
    """(M, 2) index pairs i < j where j is among i's ``neighbours`` most similar faces and at least
    ``min_similarity`` alike, one chunk of faces at a time."""
    k = min(neighbours, len(views) - 1)
    if k < 1:
        return
    for start in range(0, len(views), chunk):
        similarity = views[start:start + chunk] @ views.T
        rows = np.arange(len(similarity))
        similarity[rows, start + rows] = -np.inf  # not oneself
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        close = similarity[rows[:, None], nearest] >= min_similarity
        pairs = np.stack([np.broadcast_to(start + rows[:, None], nearest.shape)[close], nearest[close]], axis=1)
        yield np.sort(pairs, axis=1)


def _zoomed(face: np.ndarray) -> list[np.ndarray]:
    """The face scaled by each of ZOOMS about its centre, back on a 48x48 canvas (edges repeated)."""
    out = []
    for zoom in ZOOMS:
        size = round(IMAGE_SIDE * zoom)
        scaled = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA if zoom < 1 else cv2.INTER_LINEAR)
        cut = (size - IMAGE_SIDE) // 2
        if cut >= 0:
            scaled = scaled[cut:cut + IMAGE_SIDE, cut:cut + IMAGE_SIDE]
        else:
            pad = -cut
            scaled = cv2.copyMakeBorder(scaled, pad, IMAGE_SIDE - size - pad, pad, IMAGE_SIDE - size - pad,
                                        cv2.BORDER_REPLICATE)
        out.append(scaled.astype(np.float32))
    return out


def _best_match(template_face: np.ndarray, search_face: np.ndarray) -> float:
    """The best normalised cross-correlation of the template face's centre anywhere in the other at any zoom."""
    inner = slice(TEMPLATE_MARGIN, IMAGE_SIDE - TEMPLATE_MARGIN)
    template = template_face[inner, inner].astype(np.float32)
    return max(float(cv2.matchTemplate(canvas, template, cv2.TM_CCOEFF_NORMED).max())
               for canvas in _zoomed(search_face))


def aligned_correlation(a: np.ndarray, b: np.ndarray, stop_below: float = -1.0) -> float:
    """How well each face's centre is found in the other: the lower of the two best correlations.

    Both ways, because a nearly flat centre correlates with any smooth patch; a true copy matches both ways.
    The second way is skipped when the first is already below ``stop_below``.
    """
    first = _best_match(a, b)
    return first if first < stop_below else min(first, _best_match(b, a))


def near_duplicate_pairs(images: np.ndarray, settings: NearDuplicateSettings = MEASURED,
                         progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i, j), i < j, of different images that are copies of one face, and each pair's correlation.

    Only one image of each exact group takes part; the caller joins exact and near copies into groups.
    """
    first = exact_groups(images)
    distinct = np.flatnonzero(first == np.arange(len(images)))
    faces = images[distinct]
    found = [pairs for margin in (0, CENTRE_MARGIN)
             for pairs in nearest_pairs(coarse_view(faces, margin), settings.neighbours, settings.min_similarity)]
    candidates = np.unique(np.concatenate(found), axis=0) if found else np.zeros((0, 2), np.int64)
    scores = np.empty(len(candidates), np.float32)
    for n, (i, j) in enumerate(track(candidates, description="aligning candidate copies", disable=not progress)):
        scores[n] = aligned_correlation(faces[i], faces[j], stop_below=settings.min_ncc)
    keep = scores >= settings.min_ncc
    return distinct[candidates[keep]], scores[keep]


def copy_groups(count: int, first: np.ndarray, near_pairs: np.ndarray) -> np.ndarray:
    """Group id per image over exact copies and near-copy pairs together; -1 for an image with no copy."""
    edges = np.concatenate([np.stack([np.arange(count), first], axis=1), near_pairs.reshape(-1, 2)])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    return np.where(sizes[labels] > 1, labels, -1)
