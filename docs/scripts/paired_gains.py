"""Finished runs against a reference run, face by face: how much each gains, and how sure that gain is.

    python docs/scripts/paired_gains.py <reference run dir> <run dir> [<run dir> ...]

For each run, on PublicTest (where a choice between them is made) and on PrivateTest (the report): its accuracy with
its 95% interval, and its gain over the reference on the same faces with the paired 95% interval of that gain
(``training.reports``; docs/design.md, "Evaluation protocol"). Reads only the logits each run saved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from fer_lightning.errors import FerError
from fer_lightning.training.reports import accuracy_interval, paired_gain
from fer_lightning.training.run_dir import RunDir


def right_answers(run: Path, split: str) -> np.ndarray:
    logits, labels = RunDir(run).logits(split)
    return logits.argmax(1) == labels


def main(reference: Path, runs: list[Path]) -> None:
    for split in ("PublicTest", "PrivateTest"):
        base = right_answers(reference, split)
        print(f"{split}, against {reference.name}: {base.mean():.2%}")
        for run in runs:
            right = right_answers(run, split)
            if len(right) != len(base):
                sys.exit(f"error: {run}: {len(right)} {split} faces, the reference has {len(base)}")
            low, high = accuracy_interval(right)
            gain, gain_low, gain_high = paired_gain(right, base)
            print(f"  {run.name}: {right.mean():.2%} ({low:.2%}-{high:.2%}), gain {gain * 100:+.2f} points "
                  f"({gain_low * 100:+.2f} to {gain_high * 100:+.2f})")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[1])
    try:
        main(Path(sys.argv[1]), [Path(arg) for arg in sys.argv[2:]])
    except FerError as err:  # a run without saved logits
        sys.exit(f"error: {err}")
