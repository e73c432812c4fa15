"""The data audit on a CSV with planted blanks, copies, copies across splits and disagreeing labels."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from conftest import compose_train, tiny_run_overrides
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from fer_lightning.data import audit as audit_module
from fer_lightning.data import duplicates
from fer_lightning.data.analysis import analyze
from fer_lightning.data.audit import audit_data, audit_summary, audit_table, training_selection
from fer_lightning.data.csv_reader import FerDataError, cache_file, load_fer2013
from fer_lightning.data.duplicate_check import TRANSFORMS, compare_copy_finders
from fer_lightning.data.duplicates import aligned_correlation, aligned_scores, nearest_pairs
from fer_lightning.training.train import train

SIZES = {"Training": 60, "PublicTest": 20, "PrivateTest": 20}
TRAINING, PUBLIC, PRIVATE = 0, 60, 80  # first row of each split


def smooth_face(rng: np.random.Generator) -> np.ndarray:
    """A blurred random field: smooth like a photo, so copies are found for what they are and not by noise."""
    field = cv2.GaussianBlur(rng.normal(128, 60, (48, 48)).astype(np.float32), (0, 0), 3)
    return np.clip((field - field.mean()) * 4 + 128, 0, 255).astype(np.uint8)


def shifted(face: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(face, np.float32([[1, 0, 2], [0, 1, 1]]), (48, 48), borderMode=cv2.BORDER_REPLICATE)


# Planted rows (indices into the frame; CSV line = index + 2).
BLANK, NEAR_BLANK = TRAINING + 0, PUBLIC + 0                 # all black; flat grey with a faint smudge
TWIN, TWIN_COPY, TWIN_IN_TEST = TRAINING + 1, TRAINING + 2, PRIVATE + 1  # one face three times, same label
NEAR, NEAR_IN_TEST = TRAINING + 3, PRIVATE + 2               # shifted copy, the test copy labelled otherwise
TRIO = (TRAINING + 4, TRAINING + 5, TRAINING + 6)            # one face in Training with labels 3, 3, 5


def planted_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    faces = [smooth_face(rng) for _ in range(sum(SIZES.values()))]
    labels = [i % 7 for i in range(len(faces))]
    faces[BLANK] = np.zeros((48, 48), np.uint8)
    faces[NEAR_BLANK] = np.full((48, 48), 128, np.uint8)
    faces[NEAR_BLANK][20:28, 20:28] = 140  # pixel std 2: below NEAR_BLANK_STD
    faces[TWIN_COPY] = faces[TWIN_IN_TEST] = faces[TWIN]
    labels[TWIN_COPY] = labels[TWIN_IN_TEST] = labels[TWIN]
    faces[NEAR_IN_TEST] = shifted(faces[NEAR])
    labels[NEAR_IN_TEST] = (labels[NEAR] + 1) % 7
    for row, label in zip(TRIO, (3, 3, 5), strict=True):
        faces[row], labels[row] = faces[TRIO[0]], label
    usage = [split for split, n in SIZES.items() for _ in range(n)]
    return pd.DataFrame({"emotion": labels, "pixels": [" ".join(map(str, f.ravel())) for f in faces], "Usage": usage})


@pytest.fixture
def planted_csv(tmp_path: Path) -> Path:
    path = tmp_path / "planted.csv"
    planted_frame().to_csv(path, index=False)
    return path


def line(row: int) -> int:
    return row + 2


def test_every_planted_problem_is_found_on_its_line(planted_csv: Path) -> None:
    data = load_fer2013(planted_csv)
    audit = audit_data(data)
    table = audit_table(data, audit).set_index("line")
    assert table.loc[line(BLANK), "blank"] and table.loc[line(NEAR_BLANK), "near_blank"]
    twins = table.loc[[line(TWIN), line(TWIN_COPY), line(TWIN_IN_TEST)]]
    assert twins.exact_copy.all() and twins.copy_group.nunique() == 1 and twins.copy_group.iloc[0] == line(TWIN)
    assert twins.group_splits.iloc[0] == "PrivateTest+Training" and not twins.labels_disagree.any()
    near = table.loc[[line(NEAR), line(NEAR_IN_TEST)]]
    assert not near.exact_copy.any() and near.copy_group.nunique() == 1 and near.labels_disagree.all()
    assert table.loc[line(NEAR_IN_TEST), "copy_in_training"] and table.loc[line(TWIN_IN_TEST), "copy_in_training"]
    assert table.loc[[line(r) for r in TRIO], "labels_disagree"].all()
    planted = {BLANK, NEAR_BLANK, TWIN, TWIN_COPY, TWIN_IN_TEST, NEAR, NEAR_IN_TEST, *TRIO}
    assert set(table.index) == {line(row) for row in planted}  # nothing else flagged

    summary = audit_summary(data, audit)
    assert summary["blank"] == 1 and summary["near_blank"] == 1
    assert summary["exact"]["groups"] == 2 and summary["exact"]["faces"] == 6
    assert summary["copies"]["groups"] == 3 and summary["copies"]["near_pairs"] == 1
    assert summary["copies"]["privatetest_faces_with_a_copy_in_training"] == 2
    assert summary["exact"]["privatetest_faces_with_a_copy_in_training"] == 1
    assert summary["copies"]["groups_with_disagreeing_labels"] == 2
    assert summary["privatetest_unseen"] == SIZES["PrivateTest"] - 2


def test_audits_started_together_compute_once_and_agree(planted_csv: Path, tmp_path: Path, monkeypatch) -> None:
    """Runs started side by side (sota_session.sh, with fer-analyze auditing beside them) each need the audit: one
    computes it, the others wait on its lock and load its cache."""
    data = load_fer2013(planted_csv, tmp_path)
    searches: list[int] = []
    search = audit_module.near_duplicate_pairs

    def slow_search(*args, **kwargs):
        searches.append(1)
        time.sleep(1.0)  # long enough for the other audits to arrive while this one runs
        return search(*args, **kwargs)

    monkeypatch.setattr(audit_module, "near_duplicate_pairs", slow_search)
    audits, cache = [], cache_file(planted_csv, tmp_path, "raise")
    workers = [threading.Thread(target=lambda: audits.append(audit_data(data, cache))) for _ in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(searches) == 1 and len(audits) == 3
    for audit in audits[1:]:
        np.testing.assert_array_equal(audit.group, audits[0].group)


def test_a_shifted_copy_aligns_and_a_different_face_does_not() -> None:
    rng = np.random.default_rng(3)
    face, other = smooth_face(rng), smooth_face(rng)
    assert aligned_correlation(face, shifted(face)) > 0.95
    assert aligned_correlation(face, other) < 0.9


def test_pairs_scored_on_threads_keep_their_order_and_each_pairs_own_score(monkeypatch: pytest.MonkeyPatch) -> None:
    """Several threads and tasks, each first face zoomed once: the copies found, and their scores, are those of
    scoring each pair alone."""
    rng = np.random.default_rng(5)
    originals = [smooth_face(rng) for _ in range(6)]
    faces = np.stack(originals + [shifted(face) for face in originals[:3]])
    candidates = np.array([(i, j) for i in range(len(faces)) for j in range(i + 1, len(faces))])
    monkeypatch.setattr(duplicates, "ALIGN_TASK_FACES", 2)
    scores = aligned_scores(faces, candidates, stop_below=0.93, threads=3)
    alone = np.array([aligned_correlation(faces[i], faces[j]) for i, j in candidates], np.float32)
    copies = {(i, i + 6) for i in range(3)}
    assert {tuple(pair) for pair in candidates[scores >= 0.93].tolist()} == copies
    np.testing.assert_array_equal(scores[scores >= 0.93], alone[alone >= 0.93])


def test_nearest_pairs_are_each_faces_closest_that_are_alike_enough_across_chunks() -> None:
    """Against ranking every row in full: faces with a few alike and a crowd of twelve near-copies (more alike
    faces than neighbours, where only the closest count)."""
    rng = np.random.default_rng(0)
    views = rng.normal(size=(300, 36)).astype(np.float32)
    views[:12] = views[0] + rng.normal(scale=0.05, size=(12, 36))  # a crowd
    views[100:103] = views[100] + rng.normal(scale=0.05, size=(3, 36))  # three alike
    views /= np.linalg.norm(views, axis=1, keepdims=True)
    neighbours, min_similarity = 4, 0.9
    similarity = views @ views.T
    np.fill_diagonal(similarity, -np.inf)
    expected = {tuple(sorted((i, int(j)))) for i, row in enumerate(similarity)
                for j in np.argsort(-row)[:neighbours] if row[j] >= min_similarity}
    found = np.concatenate(list(nearest_pairs(views, neighbours, min_similarity, chunk=64)))
    assert {tuple(pair) for pair in found.tolist()} == expected
    assert len(expected) > 12 and all(i < j for i, j in expected)


def test_cleaning_options_touch_training_rows_only(planted_csv: Path) -> None:
    data = load_fer2013(planted_csv)
    audit = audit_data(data)

    def dropped(**options: object) -> set[int]:
        keep, _ = training_selection(data, audit, **{"drop_blank": False, "dedupe": None,
                                                     "label_conflicts": "keep", **options})
        return set(np.flatnonzero(~keep))

    assert dropped() == set()
    assert dropped(drop_blank=True) == {BLANK}  # the near-blank face is in PublicTest: left alone
    # Training faces with a copy in PrivateTest go; of the trio, the first stays.
    assert dropped(dedupe="train") == {TWIN, TWIN_COPY, NEAR, TRIO[1], TRIO[2]}
    # Only Training labels count: NEAR disagrees with its PrivateTest copy, which must not decide anything.
    assert dropped(label_conflicts="drop") == set(TRIO)
    keep, labels = training_selection(data, audit, False, None, "majority")
    assert keep.all() and labels[TRIO[2]] == 3 and labels[NEAR] == data.labels[NEAR]
    with pytest.raises(FerDataError, match=r"data\.dedupe must be null or 'train'"):
        training_selection(data, audit, False, "all", "keep")


def test_unseen_accuracy_counts_exactly_the_faces_without_a_training_copy(planted_csv: Path, tmp_path: Path) -> None:
    summary = train(compose_train([*tiny_run_overrides(planted_csv, tmp_path / "run", tmp_path / "cache"),
                                   "tta=[none]"]))
    saved = np.load(tmp_path / "run" / "logits_test.npz")
    expected = np.ones(SIZES["PrivateTest"], bool)
    expected[[TWIN_IN_TEST - PRIVATE, NEAR_IN_TEST - PRIVATE]] = False
    np.testing.assert_array_equal(saved["unseen"], expected)
    correct = saved["logits"].argmax(1) == saved["labels"]
    assert summary.test_unseen_faces == SIZES["PrivateTest"] - 2
    assert summary.test_acc_unseen == pytest.approx(correct[expected].mean())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["PrivateTest_unseen"]["n"] == SIZES["PrivateTest"] - 2
    assert metrics["PrivateTest"]["n"] == SIZES["PrivateTest"]


def test_dedupe_leaves_every_privatetest_face_unseen(planted_csv: Path, tmp_path: Path) -> None:
    summary = train(compose_train([*tiny_run_overrides(planted_csv, tmp_path / "run", tmp_path / "cache"),
                                   "tta=[none]", "data.dedupe=train"]))
    assert summary.test_unseen_faces == SIZES["PrivateTest"]


def test_fer_analyze_writes_the_audit(planted_csv: Path, tmp_path: Path) -> None:
    out = tmp_path / "analysis"
    written = analyze(str(planted_csv), out, tmp_path / "cache")
    assert {p.name for p in written} >= {"audit.csv", "audit.json", "near_duplicates.png"}
    table = pd.read_csv(out / "audit.csv")
    assert set(table.columns) >= {"line", "split", "label", "copy_group"} and len(table) == 10
    assert json.loads((out / "audit.json").read_text())["blank"] == 1
    events = EventAccumulator(str(out / "tensorboard")).Reload()
    assert "data/near_duplicates" in events.Tags()["images"] and "audit/blank" in events.Tags()["scalars"]


def test_the_copy_finders_comparison_measures_what_a_small_data_set_has() -> None:
    """``fer-analyze near_duplicate_check=true`` on fewer distinct faces than the 500 it copies: every finder gets a
    recall per kind of copy (an IndexError on any data set under 500 faces before)."""
    rng = np.random.default_rng(5)
    images = np.stack([smooth_face(rng) for _ in range(60)])
    table = compare_copy_finders(images, faces=500, population=5000)
    assert list(table["finder"]) == ["pHash"] * 4 + ["16x16 cosine"] * 3 + [
        "coarse neighbours + aligned correlation (ours)"]
    recall = table[list(TRANSFORMS)]
    assert recall.notna().all().all() and ((recall >= 0) & (recall <= 1)).all().all()
    ours = table.iloc[-1]
    assert ours["brighter"] == 1.0 and table["pairs_among_60_real"].iloc[-1] == 0  # smooth faces unlike each other
