"""Latency and throughput of a face-scoring function, measured the same way for every backend."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def timings(logits: Callable[[np.ndarray], np.ndarray], faces: np.ndarray, single_runs: int = 300,
            batch: int = 256, rounds: int = 5, batch_runs: int = 4) -> dict[str, float]:
    """Single-face latency p50/p95 (ms) and throughput at a batch size (faces/s), after a warm-up. The throughput is
    the median of ``rounds`` rounds of ``batch_runs`` batches, as the Keras reference's is the median of its passes:
    a spell in which the host did something else slows a round, not the figure."""
    one, many = faces[:1], np.resize(faces, (batch, *faces.shape[1:]))
    for _ in range(10):
        logits(one)
    logits(many)
    latencies = []
    for _ in range(single_runs):
        start = time.perf_counter()
        logits(one)
        latencies.append((time.perf_counter() - start) * 1000)
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(batch_runs):
            logits(many)
        rates.append(batch * batch_runs / (time.perf_counter() - start))
    return {"latency_ms_p50": float(np.percentile(latencies, 50)),
            "latency_ms_p95": float(np.percentile(latencies, 95)), "faces_per_s": float(np.median(rates))}
