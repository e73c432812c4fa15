"""What each of FerCNN's own CPU training paths is worth, the variants timed in turn in one process.

    python docs/scripts/step_paths.py [train.py overrides]     # e.g. model=leaky

FerCNN trains on the CPU through two paths of its own: the fused block tails (``fuse_tails``,
fer_lightning/models/norm_pool.py) and the small-map convs' weight gradient (fer_lightning/models/small_map_conv.py).
This times fer-train's step (as step_breakdown.py builds it) with both, without the tails, and without the small-map
path, a few steps of each in turn for several rounds, so the host's slow and fast spells fall on every variant alike:
on the project's 2-core VMs one step timed in two processes a minute apart differed by up to 30%.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from step_breakdown import build_step

from fer_lightning.models import cnn

ROUNDS, STEPS_PER_TURN = 10, 5


@contextmanager
def variant(net: cnn.FerCNN, name: str) -> Iterator[None]:
    """The net as it trains, or with one of its paths switched off (``takes_small_map_path`` patched in cnn)."""
    tails, small_map = net.fused_tails, cnn.takes_small_map_path
    if name == "no fused tails":
        net.fused_tails = {}
    elif name == "no small-map path":
        cnn.takes_small_map_path = lambda conv, x: False
    try:
        yield
    finally:
        net.fused_tails, cnn.takes_small_map_path = tails, small_map


def main(overrides: list[str]) -> None:
    step = build_step(overrides)
    names = ["both paths", "no fused tails", "no small-map path"]
    ms: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(ROUNDS + 1):  # round 0 warms each variant up (oneDNN kernels, the tails' compiling)
        for name in names:
            with variant(step.net, name):
                step.run()
                start = time.perf_counter()
                for _ in range(STEPS_PER_TURN):
                    step.run()
                if round_:
                    ms[name].append((time.perf_counter() - start) / STEPS_PER_TURN * 1e3)
    batch = step.cfg.data.batch_size
    print(f"{step.precision}, {'channels_last' if step.channels_last else 'NCHW'}, batch {batch}: "
          f"ms per step over {ROUNDS} rounds of {STEPS_PER_TURN} steps per variant")
    print(f"{'variant':<20}{'median':>8}{'mean':>8}{'min':>8}{'max':>8}{'img/s':>8}")
    for name in names:
        median = statistics.median(ms[name])
        print(f"{name:<20}{median:>8.1f}{statistics.mean(ms[name]):>8.1f}{min(ms[name]):>8.1f}{max(ms[name]):>8.1f}"
              f"{batch / median * 1e3:>8.0f}")


if __name__ == "__main__":
    main(sys.argv[1:])
