"""Lightning's CSVLogger, made to keep a run's per-epoch history through a kill and a ``resume=``.

A resumed run logs into its own dir again, and Lightning's writer deletes the ``metrics.csv`` it finds there when
it starts (Lightning-AI/pytorch-lightning#19446, so that a new run's columns never meet an old file's): the epochs
before the resume were gone from the file and from ``curves.png``, which is drawn from it. The Trainer saves the
file after every logging call, so a killed run's file holds every epoch it finished; this writer continues that
file, its header's columns taken as known so that later rows append (a new column rewrites the file with the old
rows kept, as Lightning does within one run).
"""

from __future__ import annotations

import csv
from typing import cast

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class ContinuingWriter(ExperimentWriter):
    """Lightning's writer, but a ``metrics.csv`` already in its dir is continued, not deleted.

    ``_check_log_dir_exists`` is where Lightning deletes the file (lightning 2.6); should a release move that,
    the kill-and-resume test in tests/test_resume.py, which compares the histories, fails.
    """

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                self.metrics_keys = next(csv.reader(file), [])


class ContinuingCSVLogger(CSVLogger):
    """``CSVLogger`` whose ``metrics.csv`` survives a resume into the same dir (see the module's docstring)."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ContinuingWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = ContinuingWriter(log_dir=self.log_dir)
        return cast(ContinuingWriter, self._experiment)  # the one writer this logger makes
