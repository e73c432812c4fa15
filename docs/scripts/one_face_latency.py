"""Where one face's time goes in OpenVINO running a checkpoint's exported graph (fer-predict's runtime on CPUs with
bf16 units and for int8 copies; onnxruntime's for a float graph in float32).

    python docs/scripts/one_face_latency.py <checkpoint> [calls]     # calls per timing, 2000 by default

Times the call fer-predict makes for a single face (OpenVINO, the graph compiled for batch 1, latency hint, the
logits copied out) with the float graph in bf16 (fer-predict's choice where the CPU has bf16 kernels) and in float32,
and, where FER2013_CSV is set, with an int8 copy quantised as fer-export quantises (its Training faces, its
calibration rows), run in float32 as fer-predict runs an int8 file; p50 and p95 over ``calls`` calls after 50
untimed ones, two rounds. Whether that int8 copy keeps its accuracy is fer-export's check, not this script's.
Then OpenVINO's own per-layer counters for the bf16 call: what its kernels take, and so what of a call is the
overhead around them. Last, the whole call fer-predict makes for one face, with the model its ``load_model`` builds
from the checkpoint (the run's test-time augmentation, fer-export's int8 copy where there is one). Written on a Zen 4
EPYC, where one face stayed at 0.6 ms against 0.3 ms on other CPUs.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import openvino
from hydra import compose, initialize_config_dir

from fer_lightning.cli.common import CONF_DIR
from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.fer2013 import IMAGE_SIDE
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.quantization import calibration_faces, quantize_int8
from fer_lightning.inference.runtimes import onnx_bytes, openvino_request
from fer_lightning.predict.loading import load_model

WARMUP_CALLS, ROUNDS, LAYERS_SHOWN = 50, 2, 8


def logits_of(request: Any, face: np.ndarray) -> Callable[[], np.ndarray]:
    """One OpenVINO call on ``face``, its logits copied out as fer-predict's runner does."""
    return lambda: request.infer({0: face})[0].copy()


def latency_ms(call: Callable[[], Any], calls: int) -> tuple[float, float]:
    """p50 and p95 of ``call``, after WARMUP_CALLS untimed ones."""
    for _ in range(WARMUP_CALLS):
        call()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.percentile(times, 50)) * 1e3, float(np.percentile(times, 95)) * 1e3


def kernel_us(request: Any, face: np.ndarray, calls: int) -> dict[str, float]:
    """Mean microseconds per call of each executed layer, from OpenVINO's counters (PERF_COUNT on)."""
    for _ in range(WARMUP_CALLS):
        request.infer({0: face})
    total: dict[str, float] = {}
    for _ in range(calls):
        request.infer({0: face})
        for layer in request.profiling_info:
            key = f"{layer.node_type} {layer.node_name} [{layer.exec_type}]"
            total[key] = total.get(key, 0.0) + layer.real_time.total_seconds() * 1e6 / calls
    return total


def main(args: list[str]) -> None:
    if not args:
        sys.exit("usage: python docs/scripts/one_face_latency.py <checkpoint> [calls]")
    checkpoint, calls = args[0], int(args[1]) if len(args) > 1 else 2000
    classifier = FaceClassifier.from_checkpoint(checkpoint)
    float_graph = onnx_bytes(classifier.net, classifier.mean, classifier.std)
    graphs = {"float, bf16": (float_graph, True), "float, f32": (float_graph, False)}  # graph, bf16
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        export = compose("export", overrides=[f"ckpt={checkpoint}"])  # fer-export's data and calibration settings
        predict = compose("predict", overrides=[f"ckpt={checkpoint}"])  # fer-predict's defaults
    if export.csv_path:
        training = load_fer2013(export.csv_path, export.cache_dir).split("Training")[0]
        calibration = calibration_faces(training, export.int8_calibration_rows)
        graphs["int8, f32"] = (quantize_int8(float_graph, calibration), False)
    face = np.random.default_rng(0).integers(0, 256, (1, 1, IMAGE_SIDE, IMAGE_SIDE)).astype(np.float32)

    print(f"one face, {checkpoint}, {calls} calls per timing, OpenVINO {openvino.get_version()}")
    for round_number in range(1, ROUNDS + 1):
        for name, (graph, bf16) in graphs.items():
            request = openvino_request(graph, bf16, rows=1)
            p50, p95 = latency_ms(logits_of(request, face), calls)
            print(f"round {round_number}  {name:12s} p50 {p50:.3f} ms  p95 {p95:.3f} ms")
    layers = kernel_us(openvino_request(float_graph, True, rows=1, count_layers=True), face, calls)
    print(f"OpenVINO's kernels for the bf16 call: {sum(layers.values()):.1f} us in all; the slowest:")
    for key, us in sorted(layers.items(), key=lambda item: -item[1])[:LAYERS_SHOWN]:
        print(f"  {us:8.1f} us  {key}")

    model, description = load_model(predict)
    uint8_face = face[0].astype(np.uint8)
    p50, p95 = latency_ms(lambda: model.predict_proba(uint8_face), calls)
    print(f"as fer-predict calls it, {description}: p50 {p50:.3f} ms  p95 {p95:.3f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
