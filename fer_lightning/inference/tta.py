"""Test-time augmentation: predict on several views of each face and average the probabilities.

The views are ones the training augmentation already produces: the mirror image, and the face shifted a few
pixels towards each corner with black fill (the Affine's ``border_mode=0``). ``hflip_shifts`` is our ten-crop:
five positions and their mirrors. Which TTA a run uses is chosen on PublicTest (``choose_tta``), never on
PrivateTest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import numpy as np

from fer_lightning.errors import ConfigError
from fer_lightning.fer2013 import IMAGE_SIDE

TTA_NAMES = ("none", "hflip", "shifts", "hflip_shifts")
SHIFT_PX = 3
CORNERS = ((-1, -1), (-1, 1), (1, -1), (1, 1))


def shift(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """(N, H, W) images moved down ``dy`` and right ``dx`` pixels; uncovered pixels are 0 (black)."""
    height, width = images.shape[-2:]
    out = np.zeros_like(images)
    out[..., max(dy, 0):height + min(dy, 0), max(dx, 0):width + min(dx, 0)] = \
        images[..., max(-dy, 0):height + min(-dy, 0), max(-dx, 0):width + min(-dx, 0)]
    return out


def views(images: np.ndarray, tta: str, shift_px: int = SHIFT_PX) -> list[np.ndarray]:
    """The views of (N, 48, 48) faces that TTA ``tta`` averages over; the first view is the faces themselves."""
    if tta not in TTA_NAMES:
        raise ConfigError(f"tta must be one of {', '.join(TTA_NAMES)}, got {tta!r}")
    out = [images]
    if "shifts" in tta:
        out += [shift(images, dy * shift_px, dx * shift_px) for dy, dx in CORNERS]
    if "hflip" in tta:
        out += [np.ascontiguousarray(view[..., ::-1]) for view in out]
    return out


def view_count(tta: str) -> int:
    """How many views of each face ``tta`` averages over: the rows one face sends through the net."""
    return len(views(np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), np.uint8), tta))


def tta_logits(logits_fn: Callable[[np.ndarray], np.ndarray], images: np.ndarray, tta: str) -> np.ndarray:
    """Log of the mean softmax over the views: logits whose softmax is the averaged probability. One
    ``logits_fn`` call per view, so that ``choose_tta`` can share views between candidates."""
    return averaged_logits(np.stack([logits_fn(view) for view in views(images, tta)]))


def averaged_logits(per_view: np.ndarray) -> np.ndarray:
    """(V, N, 7) logits of V views -> (N, 7) logits whose softmax is the views' mean probability. In numpy, not
    scipy, whose overhead per call counts where a call is one face in fer-predict's millisecond."""
    log_p = per_view - _logsumexp(per_view, axis=2)
    return (_logsumexp(log_p, axis=0)[0] - np.log(len(per_view))).astype(np.float32)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    return top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))


def checked_candidates(candidates: str | Sequence[str]) -> list[str]:
    """``tta``'s candidates (one name alone counts as a list of one), once each is a known TTA and there is at
    least one; ConfigError otherwise. fer-train checks them before training, since they are first used after it."""
    names = [candidates] if isinstance(candidates, str) else list(candidates)
    if not names:
        raise ConfigError("tta needs at least one candidate, e.g. [none]")
    for name in names:
        if name not in TTA_NAMES:
            raise ConfigError(f"tta lists {name!r}; each candidate must be one of {', '.join(TTA_NAMES)}")
    return names


def choose_tta(logits_fn: Callable[[np.ndarray], np.ndarray], images: np.ndarray, labels: np.ndarray,
               candidates: Sequence[str]) -> tuple[str, dict[str, float], np.ndarray]:
    """The candidate with the best accuracy on these (validation) faces, every candidate's accuracy, and the
    winner's logits for the faces.

    Ties go to the earlier candidate, so list the cheaper ones first. The candidates share views (every one
    starts with the faces themselves), so each distinct view goes through ``logits_fn`` once.
    """
    candidates = checked_candidates(candidates)
    seen: dict[bytes, np.ndarray] = {}

    def logits_once(view: np.ndarray) -> np.ndarray:
        key = hashlib.blake2b(view.tobytes(), digest_size=16).digest()
        if key not in seen:
            seen[key] = logits_fn(view)
        return seen[key]

    logits = {name: tta_logits(logits_once, images, name) for name in candidates}
    scores = {name: float(np.mean(logits[name].argmax(1) == labels)) for name in candidates}
    best = max(candidates, key=lambda name: scores[name])
    return best, scores, logits[best]
