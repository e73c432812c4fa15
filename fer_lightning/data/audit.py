"""Know the data before trusting a score on it: blank faces, copies of one face, copies across splits, and
copies whose labels disagree.

``audit_data`` flags every row and is cached beside the CSV's cache. fer-analyze writes what it found;
training drops what ``data.drop_blank`` / ``data.dedupe`` / ``data.label_conflicts`` ask (Training rows only,
so PublicTest and PrivateTest stay the standard benchmark), and every PrivateTest report adds the accuracy on
the faces without a copy in Training (``test/acc_unseen``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from fer_lightning.data.csv_reader import (
    BadRows,
    FerArrays,
    FerDataError,
    cache_file,
    computed_once,
    existing_csv,
    save_npz_atomically,
)
from fer_lightning.data.duplicates import (
    MEASURED,
    NearDuplicateSettings,
    copy_groups,
    exact_groups,
    near_duplicate_pairs,
)
from fer_lightning.fer2013 import CLASS_NAMES, NUM_CLASSES, SPLITS

log = logging.getLogger(__name__)
BLANK_STD = 1.0  # one grey level throughout, up to a stray pixel
NEAR_BLANK_STD = 5.0  # a faint smudge on a flat field: nothing a face could be read from
AUDIT_VERSION = 1
TRAINING = SPLITS.index("Training")
LabelConflicts = Literal["keep", "drop", "majority"]


@dataclass(frozen=True)
class DataAudit:
    """Per row of a FerArrays: pixel spread, the first byte-identical row, and its copy group (-1: none).

    A copy group joins byte-identical rows and near copies (``near_pairs``, with their aligned correlation).
    """

    pixel_std: np.ndarray
    exact_of: np.ndarray
    near_pairs: np.ndarray
    near_scores: np.ndarray
    group: np.ndarray

    @property
    def blank(self) -> np.ndarray:
        return self.pixel_std < BLANK_STD

    @property
    def near_blank(self) -> np.ndarray:
        return (self.pixel_std >= BLANK_STD) & (self.pixel_std < NEAR_BLANK_STD)

    @property
    def exact_copy(self) -> np.ndarray:
        """Rows that share their bytes with another row."""
        return np.bincount(self.exact_of, minlength=len(self.exact_of))[self.exact_of] > 1

    def copies_in(self, split: np.ndarray) -> np.ndarray:
        """Per row: another row of its copy group is where ``split`` (a bool mask over rows) is true."""
        grouped = self.group >= 0
        per_group = np.bincount(self.group[grouped], weights=split[grouped], minlength=len(self.group))
        others = np.where(grouped, per_group[np.maximum(self.group, 0)] - split, 0)
        return others > 0

    def group_labels_disagree(self, labels: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
        """Per row counted in ``among`` (default: all rows): those of its copy group hold more than one label."""
        grouped = (self.group >= 0) if among is None else (self.group >= 0) & among
        frame = pd.DataFrame({"group": self.group[grouped], "label": labels[grouped]})
        distinct = frame.groupby("group")["label"].nunique()
        disagree = np.zeros(len(labels), bool)
        disagree[grouped] = distinct.loc[self.group[grouped]].to_numpy() > 1
        return disagree


def _audit_cache(data_cache: Path, settings: NearDuplicateSettings) -> Path:
    tag = f"audit-v{AUDIT_VERSION}-k{settings.neighbours}-s{settings.min_similarity:g}-c{settings.min_ncc:g}"
    return data_cache.with_name(f"{data_cache.stem}-{tag}.npz")


def audit_data(data: FerArrays, data_cache: Path | None = None,
               settings: NearDuplicateSettings = MEASURED, progress: bool = False) -> DataAudit:
    """Flag blanks and find copy groups; cached beside ``data_cache`` (the parsed CSV's cache file), if given, and
    computed once where processes audit the same data at once (``computed_once``)."""
    if data_cache is None:
        return _audit(data, settings, progress)
    return computed_once(_audit_cache(data_cache, settings), lambda: _audit(data, settings, progress),
                         lambda cache: _load_audit(cache, len(data.labels)), _save_audit)


def csv_audit(data: FerArrays, csv_path: str | os.PathLike | None, cache_dir: str | os.PathLike | None,
              bad_rows: BadRows = "raise", progress: bool = False) -> DataAudit:
    """``audit_data`` of the CSV at ``csv_path`` as parsed into ``data``, cached beside its parsed cache in
    ``cache_dir`` (not cached without one)."""
    return audit_data(data, cache_file(existing_csv(csv_path), cache_dir, bad_rows) if cache_dir else None,
                      progress=progress)


def _load_audit(cache: Path, faces: int) -> DataAudit | None:
    """The saved audit, or None where it is of other data (another face count)."""
    with np.load(cache) as saved:
        audit = DataAudit(**{key: saved[key] for key in saved.files})
    return audit if len(audit.group) == faces else None


def _save_audit(cache: Path, audit: DataAudit) -> None:
    save_npz_atomically(cache, **{key: getattr(audit, key) for key in DataAudit.__dataclass_fields__})


def _audit(data: FerArrays, settings: NearDuplicateSettings, progress: bool) -> DataAudit:
    log.info("Auditing %d faces for blanks and copies", len(data.labels))
    start = time.perf_counter()
    pixel_std = data.images.reshape(len(data.images), -1).std(axis=1)
    exact_of = exact_groups(data.images)
    near_pairs, near_scores = near_duplicate_pairs(data.images, settings, progress)
    audit = DataAudit(pixel_std, exact_of, near_pairs, near_scores, copy_groups(len(exact_of), exact_of, near_pairs))
    log.info("Audited %d faces for blanks and copies in %.1f s", len(exact_of), time.perf_counter() - start)
    return audit


def audit_table(data: FerArrays, audit: DataAudit) -> pd.DataFrame:
    """One row per flagged face: its CSV line, split, label, what is wrong, and its copy group.

    A group is named by the first CSV line in it; ``group_splits`` lists where its faces are.
    """
    training = data.usage == TRAINING
    group_line = _group_first_line(data, audit)
    splits = pd.Series(data.usage).map(dict(enumerate(SPLITS)))
    in_group = audit.group >= 0
    group_splits = pd.Series(np.where(in_group, audit.group, -1)).map(
        splits[in_group].groupby(audit.group[in_group]).agg(lambda s: "+".join(sorted(set(s)))))
    table = pd.DataFrame({
        "line": data.lines, "split": splits, "label": np.array(CLASS_NAMES)[data.labels],
        "blank": audit.blank, "near_blank": audit.near_blank, "exact_copy": audit.exact_copy,
        "copy_group": np.where(in_group, group_line, -1), "group_splits": group_splits.fillna(""),
        "copy_in_training": audit.copies_in(training), "labels_disagree": audit.group_labels_disagree(data.labels),
    })
    flagged = audit.blank | audit.near_blank | in_group
    return table[flagged].reset_index(drop=True)


def _group_first_line(data: FerArrays, audit: DataAudit) -> np.ndarray:
    in_group = audit.group >= 0
    first = pd.Series(data.lines[in_group]).groupby(audit.group[in_group]).min()
    return first.reindex(np.maximum(audit.group, 0)).fillna(-1).to_numpy(np.int64)


def audit_summary(data: FerArrays, audit: DataAudit) -> dict[str, Any]:
    """The counts fer-analyze logs: blanks, exact and near copies, copies across splits, label conflicts."""
    training, private = data.usage == TRAINING, data.usage == SPLITS.index("PrivateTest")
    evaluation = ~training
    none = np.zeros((0, 2), np.int64)
    exact = DataAudit(audit.pixel_std, audit.exact_of, none, np.zeros(0, np.float32),
                      copy_groups(len(audit.exact_of), audit.exact_of, none))  # byte-identical copies alone
    summary: dict[str, Any] = {"faces": len(data.labels), "blank": int(audit.blank.sum()),
                               "near_blank": int(audit.near_blank.sum())}
    for name, groups in (("exact", exact), ("copies", audit)):
        grouped = groups.group >= 0
        ids = groups.group[grouped]
        spanning = pd.Series(data.usage[grouped]).groupby(ids).nunique()
        summary[name] = {
            "groups": len(np.unique(ids)), "faces": int(grouped.sum()),
            "groups_across_splits": int((spanning > 1).sum()),
            "evaluation_faces_with_a_copy_in_training": int((groups.copies_in(training) & evaluation).sum()),
            "privatetest_faces_with_a_copy_in_training": int((groups.copies_in(training) & private).sum()),
            "groups_with_disagreeing_labels": int(pd.Series(data.labels[grouped]).groupby(ids).nunique().gt(1).sum()),
        }
    summary["copies"]["near_pairs"] = len(audit.near_pairs)
    summary["privatetest_unseen"] = int((private & ~audit.copies_in(training)).sum())
    return summary


def training_selection(data: FerArrays, audit: DataAudit, drop_blank: bool, dedupe: str | None,
                       label_conflicts: LabelConflicts) -> tuple[np.ndarray, np.ndarray]:
    """Which rows to keep and with which labels; only Training rows are ever dropped or relabelled.

    ``drop_blank``: blank and near-blank Training faces go. ``dedupe='train'``: one face of each copy group
    stays in Training (its first row), and Training faces with a copy in PublicTest or PrivateTest go.
    ``label_conflicts``: Training faces whose copy group's Training faces disagree on the label are kept,
    dropped, or given their most common label (a tie is dropped).
    """
    if dedupe not in (None, "train"):
        raise FerDataError(f"data.dedupe must be null or 'train', got {dedupe!r}")
    if label_conflicts not in ("keep", "drop", "majority"):
        raise FerDataError(f"data.label_conflicts must be keep, drop or majority, got {label_conflicts!r}")
    training = data.usage == TRAINING
    drop = np.zeros(len(data.labels), bool)
    labels = data.labels.copy()
    if drop_blank:
        drop |= training & (audit.blank | audit.near_blank)
    if dedupe == "train":
        drop |= training & audit.copies_in(~training)
        grouped = np.flatnonzero(training & (audit.group >= 0))
        _, first = np.unique(audit.group[grouped], return_index=True)
        drop[np.setdiff1d(grouped, grouped[first])] = True  # every Training copy after its group's first
    # Judged on Training labels alone: PublicTest and PrivateTest labels never shape what is trained on.
    conflicted = audit.group_labels_disagree(data.labels, among=training)
    if label_conflicts == "drop":
        drop |= conflicted
    elif label_conflicts == "majority":
        for group in np.unique(audit.group[conflicted]):
            members = (audit.group == group) & training
            votes = np.bincount(data.labels[members], minlength=NUM_CLASSES)
            rows = conflicted & members
            if (votes == votes.max()).sum() > 1:
                drop |= rows
            else:
                labels[rows] = votes.argmax()
    return ~drop, labels
