"""How well finished runs' confidences match their accuracy, as trained and at the temperature fer-predict uses.

    python docs/scripts/calibration.py [--bins] <run dir> [<run dir> ...]

For each run: the temperature fitted on its PublicTest logits (``inference.calibration``) and the expected
calibration error on PublicTest, where it was fitted, and on PrivateTest, the report, with the net's own
probabilities and at that temperature; ``--bins`` adds each PrivateTest bin of confidence as trained (its faces,
their mean confidence, the share it got right), what ``reliability.png`` draws. Reads only the logits each run saved,
so it works for runs that finished before train() reported it (their summary.json lacks ``temperature``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from scipy.special import softmax

from fer_lightning.errors import FerError
from fer_lightning.inference.calibration import confidence_bins, errors_before_and_after, fit_temperature
from fer_lightning.training.run_dir import RunDir


def main(runs: list[Path], bins: bool = False) -> None:
    print("run | temperature | PublicTest error, as trained -> at it | PrivateTest error, as trained -> at it")
    for run in runs:
        run_dir = RunDir(run)
        temperature = fit_temperature(*run_dir.logits("PublicTest"))
        errors = []
        for split in ("PublicTest", "PrivateTest"):
            logits, labels = run_dir.logits(split)
            raw, scaled = errors_before_and_after(logits, labels, temperature)
            errors.append(f"{raw:.1%} -> {scaled:.1%}")
        print(f"{run} | {temperature:.3f} | {' | '.join(errors)}")
        if bins:
            logits, labels = run_dir.logits("PrivateTest")
            for faces, confidence, accuracy in zip(*confidence_bins(softmax(logits, axis=1), labels), strict=True):
                if faces:
                    print(f"    {faces} faces, confidence {confidence:.1%}, right {accuracy:.1%}")


if __name__ == "__main__":
    arguments = [arg for arg in sys.argv[1:] if arg != "--bins"]
    if not arguments:
        sys.exit(__doc__.split("\n\n")[1])
    try:
        main([Path(arg) for arg in arguments], bins="--bins" in sys.argv[1:])
    except FerError as err:  # a run without saved logits
        sys.exit(f"error: {err}")
