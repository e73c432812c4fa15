"""Seconds of a tiny run as the test suite trains it, several in a row in one process.

    OMP_NUM_THREADS=1 python docs/scripts/tiny_run_seconds.py [runs]

Each run is ``train()`` on the tests' synthetic CSV with ``tiny_run_overrides`` (one epoch of two batches, then the
PrivateTest report and its figures), in a temporary folder; the first also parses the CSV. Many of the suite's
tests train such runs, in their own process or as commands (docs/results.md, "The test suite").
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from conftest import compose_train, synthetic_frame, tiny_run_overrides

from fer_lightning.training.train import train


def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        csv = root / "fer_synthetic.csv"
        synthetic_frame().to_csv(csv, index=False)
        seconds = []
        for run in range(runs):
            start = time.perf_counter()
            train(compose_train(tiny_run_overrides(csv, root / f"run{run}", root / "cache")))
            seconds.append(time.perf_counter() - start)
    print("tiny runs, seconds each:", " ".join(f"{s:.2f}" for s in seconds))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4)
