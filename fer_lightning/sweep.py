"""A Hydra callback that tabulates a multirun: one row per job with its overrides and headline metrics."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

log = logging.getLogger(__name__)
COLUMNS = ("val/acc_best", "test/acc", "test/f1_macro", "epochs", "fit_seconds")


def job_overrides(job_dir: Path) -> str:
    """The job's command-line overrides as one string, from Hydra's .hydra/overrides.yaml."""
    path = job_dir / ".hydra" / "overrides.yaml"
    lines = path.read_text().splitlines() if path.is_file() else []
    return " ".join(line.removeprefix("- ").strip() for line in lines if line.strip())


def sweep_table(sweep_dir: Path) -> pd.DataFrame:
    """Every finished job (it wrote summary.json) under a sweep dir, in job order."""
    rows: list[dict[str, Any]] = []
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()] if sweep_dir.is_dir() else []
    for job_dir in sorted(jobs, key=lambda p: int(p.name)):
        summary_path = job_dir / "summary.json"
        if summary_path.is_file():
            summary = json.loads(summary_path.read_text())
            rows.append({"job": int(job_dir.name), "overrides": job_overrides(job_dir),
                         **{key: summary.get(key) for key in COLUMNS}})
    return pd.DataFrame(rows, columns=["job", "overrides", *COLUMNS])


class SweepSummary(Callback):
    """Writes sweep_summary.csv at the sweep root when a multirun ends (jobs that crashed are left out)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = sweep_table(sweep_dir)
        if table.empty:
            return
        table.to_csv(sweep_dir / "sweep_summary.csv", index=False)
        log.info("Sweep summary (%s):\n%s", sweep_dir / "sweep_summary.csv",
                 table.to_string(index=False, float_format="{:.4f}".format))
