"""fer-bench prints every figure the speed targets are stated in, measured on a real (tiny) training epoch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import compose_config, tiny_run_overrides
from torch import nn

from fer_lightning.bench import bench, forward_mflops
from fer_lightning.timing import timings

KEYS = {"train_images_per_s", "epoch_seconds", "infer_images_per_s", "latency_ms_p50", "latency_ms_p95",
        "precision", "memory_format", "device"}


def test_bench_reports_training_and_inference_speed(tmp_path: Path, fer_csv: Path, capsys) -> None:
    cfg = compose_config("bench", [*tiny_run_overrides(fer_csv, tmp_path / "run", tmp_path / "cache"),
                                   "infer_batch=32"])
    figures = bench(cfg)
    printed = dict(line.split("=", 1) for line in capsys.readouterr().out.splitlines() if "=" in line)
    assert printed.keys() >= KEYS and figures.keys() >= KEYS
    assert figures["train_images_per_s"] > 0 and figures["epoch_seconds"] > 0
    assert 0 < figures["latency_ms_p50"] <= figures["latency_ms_p95"] and figures["infer_images_per_s"] > 0
    assert figures["device"] == "cpu"
    assert figures["precision"] == "32-true" and not (tmp_path / "run" / "metrics.json").exists()  # no test pass
    assert json.loads((tmp_path / "run" / "bench.json").read_text())["precision"] == "32-true"
    expected_gflops = 3 * figures["forward_mflops_per_face"] * figures["train_images_per_s"] / 1e3
    assert figures["train_gflops_per_s"] == pytest.approx(expected_gflops)


def test_forward_flops_count_every_multiply_add_twice() -> None:
    net = nn.Sequential(nn.Flatten(), nn.Linear(48 * 48, 10, bias=False))
    assert forward_mflops(net) == 2 * 48 * 48 * 10 / 1e6


def test_timings_count_faces_per_second() -> None:
    calls = []

    def score(faces: np.ndarray) -> np.ndarray:
        calls.append(len(faces))
        return np.zeros((len(faces), 7))

    result = timings(score, np.zeros((3, 48, 48), np.uint8), single_runs=5, batch=8, batch_runs=2)
    assert calls.count(8) == 3 and calls.count(1) == 15  # warm-up + timed runs, at the sizes asked for
    assert result["faces_per_s"] > 0 and result["latency_ms_p50"] <= result["latency_ms_p95"]
