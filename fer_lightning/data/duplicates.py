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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from rich.progress import track
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from fer_lightning.fer2013 import IMAGE_SIDE

COARSE_SIDE = 6
CENTRE_MARGIN = 8  # the centre view: the face without its outer 8 px, where background and hair differ most
ZOOMS = (0.88, 0.94, 1.0, 1.06, 1.13)
TEMPLATE_MARGIN = 8  # the aligned template is the face's central 32x32
ALIGN_TASK_FACES = 512  # first faces per task of the aligning threads


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
    every = torch.from_numpy(np.ascontiguousarray(views, dtype=np.float32))
    for start in range(0, len(every), chunk):
        similarity = every[start:start + chunk] @ every.T
        rows = torch.arange(len(similarity))
        similarity[rows, start + rows] = -torch.inf  # not oneself
        # torch's top-k: NumPy's argpartition took 2.5 s a chunk of 2,048 faces against FER-2013, this 0.05 s
        # (the 2-core Zen 4 EPYC).
        alike, nearest = similarity.topk(k, dim=1)
        close = alike >= min_similarity
        pairs = torch.stack([(start + rows[:, None]).expand_as(nearest)[close], nearest[close]], dim=1)
        yield np.sort(pairs.numpy(), axis=1)


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


def _best_match(template_face: np.ndarray, canvases: list[np.ndarray]) -> float:
    """The best normalised cross-correlation of the template face's centre anywhere in ``canvases`` (another face
    at each zoom, ``_zoomed``)."""
    inner = slice(TEMPLATE_MARGIN, IMAGE_SIDE - TEMPLATE_MARGIN)
    template = template_face[inner, inner].astype(np.float32)
    return max(float(cv2.matchTemplate(canvas, template, cv2.TM_CCOEFF_NORMED).max()) for canvas in canvases)


def aligned_correlation(a: np.ndarray, b: np.ndarray, stop_below: float = -1.0,
                        b_zoomed: list[np.ndarray] | None = None) -> float:
    """How well each face's centre is found in the other: the lower of the two best correlations.

    Both ways, because a nearly flat centre correlates with any smooth patch; a true copy matches both ways.
    The second way is skipped when the first is already below ``stop_below``. ``b_zoomed``: ``_zoomed(b)``, where
    the caller has it already.
    """
    first = _best_match(a, _zoomed(b) if b_zoomed is None else b_zoomed)
    return first if first < stop_below else min(first, _best_match(b, _zoomed(a)))


def aligned_scores(faces: np.ndarray, candidates: np.ndarray, stop_below: float, threads: int,
                   progress: bool = False) -> np.ndarray:
    """``aligned_correlation`` of each candidate pair of ``faces`` (sorted by its first face), in their order.

    Each first face is zoomed once for all its pairs, and the pairs are shared among ``threads`` threads: OpenCV
    lets go of the GIL inside matchTemplate, so they run side by side. FER-2013's 253,938 candidates on the 2-core
    Zen 4 EPYC: 48 s one pair at a time, 39 s with each first face zoomed once, 22-25 s on two threads. Which face
    is searched for first does not change a score that reaches ``stop_below``: both ways are then computed.
    """
    if len(candidates) == 0:
        return np.zeros(0, np.float32)
    by_first_face = np.split(candidates, np.flatnonzero(np.diff(candidates[:, 0])) + 1)
    tasks = [by_first_face[k:k + ALIGN_TASK_FACES] for k in range(0, len(by_first_face), ALIGN_TASK_FACES)]

    def scores(task: list[np.ndarray]) -> list[float]:
        out: list[float] = []
        for pairs in task:
            i = pairs[0, 0]
            zoomed = _zoomed(faces[i])
            out += [aligned_correlation(faces[j], faces[i], stop_below, zoomed) for j in pairs[:, 1]]
        return out

    with ThreadPoolExecutor(threads) as pool:
        done = track(pool.map(scores, tasks), total=len(tasks), description="aligning candidate copies",
                     disable=not progress)
        return np.array([score for task in done for score in task], np.float32)


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
    scores = aligned_scores(faces, candidates, settings.min_ncc, torch.get_num_threads(), progress)
    keep = scores >= settings.min_ncc
    return distinct[candidates[keep]], scores[keep]


def copy_groups(count: int, first: np.ndarray, near_pairs: np.ndarray) -> np.ndarray:
    """Group id per image over exact copies and near-copy pairs together; -1 for an image with no copy."""
    edges = np.concatenate([np.stack([np.arange(count), first], axis=1), near_pairs.reshape(-1, 2)])
    graph = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    sizes = np.bincount(labels)
    return np.where(sizes[labels] > 1, labels, -1)
