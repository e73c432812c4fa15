"""Inference runtimes for a trained net: PyTorch itself (eager, or ``torch_compile``: inductor with the weights
frozen into the graph), or its graph exported to ONNX and run by onnxruntime or OpenVINO.

The exported graph takes raw 0-255 pixels, shaped (N, 1, 48, 48) float32, and carries the training
normalisation inside, so nothing outside it can drift from the checkpoint. Which runtime is fastest depends on
the CPU (``fer-bench`` times each); fer-predict's default, ``auto``, picks by what the CPU computes in
(``chosen_runtime``).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fer_lightning.fer2013 import IMAGE_SIDE
from fer_lightning.inference.folding import fold_batchnorms
from fer_lightning.inference.runtime_names import AUTO, GRAPH_RUNTIMES, checked_runtime

INPUT, OUTPUT = "faces", "logits"
GraphRunner = Callable[[np.ndarray], np.ndarray]  # (N, 1, 48, 48) float32 pixels 0-255 -> (N, 7) logits


class NormalizedNet(nn.Module):
    """Raw 0-255 pixels in, logits out: the training normalisation travels inside the exported graph."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, net: nn.Module, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.net = net
        self.register_buffer("mean", mean.clone())  # (1, 48, 48) or a scalar: both broadcast
        self.register_buffer("std", std.clone())

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        return self.net((faces - self.mean) / self.std)


def onnx_bytes(net: nn.Module, mean: torch.Tensor, std: torch.Tensor, opset: int = 17) -> bytes:
    """The network as an ONNX model with a dynamic batch axis, exported from a float32 CPU copy of ``net`` with
    the study's post-activation BatchNorms folded into its convs (``inference.folding``)."""
    model = NormalizedNet(fold_batchnorms(net), mean, std).to("cpu", torch.float32).eval()
    buffer = io.BytesIO()
    torch.onnx.export(model, (torch.zeros(2, 1, IMAGE_SIDE, IMAGE_SIDE),), buffer,  # type: ignore[arg-type]
                      dynamo=False, opset_version=opset,
                      input_names=[INPUT], output_names=[OUTPUT],
                      dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
    return buffer.getvalue()


def onnxruntime_session(model: bytes | Path) -> Any:
    import onnxruntime

    return onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model),
                                        providers=["CPUExecutionProvider"])


def openvino_request(model: bytes | Path, bf16: bool, rows: int | None = None, count_layers: bool = False) -> Any:
    """An OpenVINO inference request on the CPU, compiled for latency; ``bf16`` lets it compute in bf16 (AMX or
    AVX-512 bf16), else float32 throughout. ``rows`` compiles the graph for that batch size only (a static shape;
    None: any); ``count_layers`` turns on OpenVINO's per-layer counters (``request.profiling_info``)."""
    import openvino

    core = openvino.Core()
    settings: dict[str, str | bool] = {"INFERENCE_PRECISION_HINT": "bf16" if bf16 else "f32",
                                       "PERFORMANCE_HINT": "LATENCY"}
    if count_layers:
        settings["PERF_COUNT"] = True
    graph = core.read_model(model if isinstance(model, bytes) else str(model))
    if rows is not None:
        graph.reshape([rows, 1, IMAGE_SIDE, IMAGE_SIDE])
    return core.compile_model(graph, "CPU", settings).create_infer_request()


def openvino_runner(model: bytes | Path, bf16: bool, rows_per_face: int = 1) -> GraphRunner:
    """OpenVINO on the CPU (``openvino_request``).

    One face at a time (a webcam, fer-predict on one photo) goes to a second copy compiled for the rows one face
    sends, ``rows_per_face`` (its test-time augmentation's views): a static shape spares OpenVINO its per-call shape
    handling, 10-15% of a 0.3 ms call for one row, and as much of a 0.5 ms call of a face and its mirror in int8
    (docs/results.md). That copy is compiled at the first such call, so callers that only send batches (a teacher's
    pass, fer-export's checks) never compile it.
    """
    # by the rows they were compiled for; None: any
    requests: dict[int | None, Any] = {None: openvino_request(model, bf16)}

    def run(faces: np.ndarray) -> np.ndarray:
        rows = rows_per_face if len(faces) == rows_per_face else None
        if rows not in requests:
            requests[rows] = openvino_request(model, bf16, rows=rows)
        return requests[rows].infer({0: faces})[0].copy()

    return run


def chosen_runtime(runtime: str, bf16: bool, int8: bool = False) -> str:
    """``runtime``, where ``auto`` is OpenVINO for a graph it runs in bf16 (``bf16``: the CPU has bf16 units) or in
    int8 (``int8``: fer-export's int8 copy), and onnxruntime for a float graph in float32; ConfigError for a name
    that is neither auto nor one of ``RUNTIMES`` (``checked_runtime``).

    Measured (docs/results.md, "Which graph runtime"): OpenVINO's bf16 is about twice onnxruntime's float32 at batch
    256 on a Zen 4 EPYC, and its int8 kernels lead at batch 256 on every CPU timed; in float32 onnxruntime matched
    OpenVINO on a Zen 3 EPYC and beat it on a Xeon without bf16, one face and batch 256 alike.
    """
    if checked_runtime(runtime) == AUTO:
        return "openvino" if bf16 or int8 else "onnxruntime"
    return runtime


def graph_runner(runtime: str, model: bytes | Path, bf16: bool, rows_per_face: int = 1) -> GraphRunner:
    """A runner for an exported graph; ``runtime`` is onnxruntime or openvino, ``rows_per_face`` the rows a call
    for one face sends (OpenVINO compiles a copy for it)."""
    if checked_runtime(runtime, allowed=GRAPH_RUNTIMES) == "openvino":
        return openvino_runner(model, bf16, rows_per_face)
    session = onnxruntime_session(model)
    return lambda faces: session.run([OUTPUT], {INPUT: faces})[0]
