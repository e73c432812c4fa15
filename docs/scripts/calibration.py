"""How well finished runs' confidences match their accuracy, as trained and at the temperature fer-predict uses.

    python docs/scripts/calibration.py <run dir> [<run dir> ...]

For each run: the temperature fitted on its PublicTest logits (``inference.calibration``) and the expected
calibration error on PublicTest, where it was fitted, and on PrivateTest, the report, with the net's own
probabilities and at that temperature. Reads only the logits each run saved, so it works for runs that finished
before train() reported it (their summary.json lacks ``temperature``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from scipy.special import softmax

from fer_lightning.errors import FerError
from fer_lightning.inference.calibration import expected_calibration_error, fit_temperature
from fer_lightning.training.run_dir import RunDir


def main(runs: list[Path]) -> None:
    print("run | temperature | PublicTest error, as trained -> at it | PrivateTest error, as trained -> at it")
    for run in runs:
        run_dir = RunDir(run)
        temperature = fit_temperature(*run_dir.logits("PublicTest"))
        errors = []
        for split in ("PublicTest", "PrivateTest"):
            logits, labels = run_dir.logits(split)
            raw, scaled = (expected_calibration_error(softmax(logits / t, axis=1), labels) for t in (1.0, temperature))
            errors.append(f"{raw:.1%} -> {scaled:.1%}")
        print(f"{run} | {temperature:.3f} | {' | '.join(errors)}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.split("\n\n")[1])
    try:
        main([Path(arg) for arg in sys.argv[1:]])
    except FerError as err:  # a run without saved logits
        sys.exit(f"error: {err}")
