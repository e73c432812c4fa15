"""Test-time augmentation: the views, the probability averaging, and the choice made on validation faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import best_checkpoint
from scipy.special import softmax

from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.tta import TTA_NAMES, choose_tta, shift, tta_logits, views

RNG = np.random.default_rng(0)
FACES = RNG.integers(1, 256, size=(6, 48, 48), dtype=np.uint8)  # no zeros, so black fill is visible


def test_shift_moves_pixels_and_fills_black() -> None:
    moved = shift(FACES, 3, -2)
    np.testing.assert_array_equal(moved[:, 3:, :-2], FACES[:, :-3, 2:])
    assert not moved[:, :3, :].any() and not moved[:, :, -2:].any()
    np.testing.assert_array_equal(shift(FACES, 0, 0), FACES)


@pytest.mark.parametrize(("name", "count"), [("none", 1), ("hflip", 2), ("shifts", 5), ("hflip_shifts", 10)])
def test_views_keep_shape_dtype_and_range(name: str, count: int) -> None:
    out = views(FACES, name)
    assert len(out) == count
    assert all(v.shape == FACES.shape and v.dtype == np.uint8 for v in out)
    np.testing.assert_array_equal(out[0], FACES)
    if "hflip" in name:  # the second half mirrors the first
        for plain, mirrored in zip(out[: count // 2], out[count // 2:], strict=True):
            np.testing.assert_array_equal(mirrored, plain[..., ::-1])
    assert len({v.tobytes() for v in out}) == count  # all views differ


def test_unknown_tta_is_refused() -> None:
    with pytest.raises(ValueError, match="tta must be one of"):
        views(FACES, "ten_crop")


def _logits_by_view(per_view: dict[bytes, np.ndarray]):
    return lambda images: per_view[images.tobytes()]


def test_tta_logits_average_the_probabilities() -> None:
    per_view = {v.tobytes(): RNG.normal(size=(6, 7)) * 3 for v in views(FACES, "hflip_shifts")}
    for name in TTA_NAMES:
        expected = np.mean([softmax(per_view[v.tobytes()], axis=1) for v in views(FACES, name)], axis=0)
        got = tta_logits(_logits_by_view(per_view), FACES, name)
        assert got.dtype == np.float32 and got.shape == (6, 7)
        np.testing.assert_allclose(softmax(got, axis=1), expected, rtol=1e-5, atol=1e-6)


def test_choose_tta_picks_the_best_candidate_on_the_given_faces() -> None:
    labels = RNG.integers(0, 7, size=6)
    plain, flipped = FACES, np.ascontiguousarray(FACES[..., ::-1])
    # Right only on mirrored faces, and confidently so: averaging with the mirror fixes every face.
    wrong = np.eye(7)[(labels + 1) % 7]
    per_view = {plain.tobytes(): wrong, flipped.tobytes(): np.eye(7)[labels] * 10}
    chosen, scores, logits = choose_tta(_logits_by_view(per_view), FACES, labels, ["none", "hflip"])
    assert chosen == "hflip" and scores == {"none": 0.0, "hflip": 1.0}
    np.testing.assert_array_equal(logits, tta_logits(_logits_by_view(per_view), FACES, "hflip"))
    tie_fn = _logits_by_view({plain.tobytes(): np.eye(7)[labels], flipped.tobytes(): np.eye(7)[labels]})
    assert choose_tta(tie_fn, FACES, labels, ["none", "hflip"])[0] == "none"  # ties go to the cheaper one


def test_face_classifier_applies_its_tta(trained_runs: list[Path]) -> None:
    ckpt = best_checkpoint(trained_runs[0])
    plain = FaceClassifier.from_checkpoint(ckpt)
    with_flip = FaceClassifier.from_checkpoint(ckpt, tta="hflip")
    expected = tta_logits(plain.net_logits, FACES, "hflip")
    batches = []
    net_logits = with_flip.net_logits
    with_flip.net_logits = lambda images: batches.append(len(images)) or net_logits(images)  # type: ignore[method-assign]
    np.testing.assert_allclose(with_flip.logits(FACES), expected, rtol=1e-5, atol=1e-5)
    assert batches == [2 * len(FACES)]  # the faces and their mirrors in one pass
    np.testing.assert_array_equal(plain.logits(FACES), plain.net_logits(FACES))
    with pytest.raises(ValueError, match="tta must be one of"):
        FaceClassifier.from_checkpoint(ckpt, tta="flip")


def test_choose_tta_predicts_each_distinct_view_once() -> None:
    per_view = {v.tobytes(): RNG.normal(size=(6, 7)) for v in views(FACES, "hflip_shifts")}
    calls = []

    def logits_fn(images: np.ndarray) -> np.ndarray:
        calls.append(images.tobytes())
        return per_view[images.tobytes()]

    choose_tta(logits_fn, FACES, RNG.integers(0, 7, size=6), list(TTA_NAMES))
    assert sorted(calls) == sorted(per_view)  # 10 passes, not the 1 + 2 + 5 + 10 of scoring each alone
