"""A Hydra callback that tabulates a multirun: one row per job with its overrides and headline metrics, and a figure
of them. Hydra builds it for every command, so it imports nothing heavy until a sweep ends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from fer_lightning.training.run_dir import RunDir

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)
COLUMNS = ("val/acc_best", "test/acc", "test/acc_low", "test/acc_high", "test/f1_macro", "epochs", "fit_seconds",
           "forward_mflops_per_face")


def sweep_table(sweep_dir: Path) -> pd.DataFrame:
    """Every finished job (it wrote summary.json) under a sweep dir, in job order, with the 95% interval of each
    PrivateTest accuracy: seeds of one recipe often differ by less than it."""
    rows: list[dict[str, Any]] = []
    for job in RunDir.jobs(sweep_dir):
        summary = job.summary()
        if summary is not None:
            figures = summary.to_json() | summary.metrics()
            rows.append({"job": int(job.path.name), "overrides": " ".join(job.overrides()),
                         **{key: figures.get(key) for key in COLUMNS}})
    return pd.DataFrame(rows, columns=["job", "overrides", *COLUMNS])


def sweep_figure(table: pd.DataFrame) -> Figure:
    """Each job's PrivateTest accuracy with its 95% interval (bars, job 0 at the top) and its best PublicTest accuracy
    (diamonds), the one to choose by."""
    from fer_lightning.training.reports import accuracy_bars  # scikit-learn and scipy: for sweeps only

    ordered = table.iloc[::-1]
    accuracy, low, high, public = (ordered[column].to_numpy(float) * 100 for column in
                                   ("test/acc", "test/acc_low", "test/acc_high", "val/acc_best"))
    names = [f"{job}: {overrides}" for job, overrides in zip(ordered["job"], ordered["overrides"], strict=True)]
    fig, ax = accuracy_bars(names, accuracy, low, high, ["tab:gray"] * len(names))
    ax.scatter(public, range(len(names)), marker="D", color="tab:blue", zorder=3)
    left, right = ax.get_xlim()
    ax.set_xlim(min(left, float(public.min()) - 3), max(right, float(public.max()) + 4))
    ax.set_xlabel("accuracy (%): PrivateTest with its 95% interval (bars), PublicTest at the best epoch (diamonds)")
    fig.suptitle("Jobs of the sweep: choose on PublicTest; PrivateTest is each job's one final test")
    return fig


class SweepSummary(Callback):
    """Writes sweep_summary.csv at the sweep root when a multirun ends (jobs that crashed are left out), and
    sweep_summary.png where every job tested on PrivateTest."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        table = sweep_table(sweep_dir)
        if table.empty:
            return
        table.to_csv(sweep_dir / "sweep_summary.csv", index=False)
        if table["test/acc"].notna().all():
            import matplotlib.pyplot as plt

            figure = sweep_figure(table)
            figure.savefig(sweep_dir / "sweep_summary.png", dpi=110)
            plt.close(figure)
        log.info("Sweep summary (%s):\n%s", sweep_dir / "sweep_summary.csv",
                 table.to_string(index=False, float_format="{:.4f}".format))
