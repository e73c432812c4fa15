"""int8 static quantisation of the exported graph, its ranges calibrated on Training faces.

onnxruntime's quantiser writes a QDQ graph (QuantizeLinear/DequantizeLinear around each conv, matmul, ReLU and
max-pool) that both onnxruntime and OpenVINO run with int8 kernels. Weights are signed 8-bit per output channel,
activations unsigned 8-bit per tensor, their ranges the 99.999th percentile of what calibration faces produce.
The graph comes from ``runtimes.onnx_bytes``, so the study's post-activation BatchNorms are already folded into
the convs (``inference.folding``): left in float between int8 convs they cost the best ReLU net 0.31 points of
PublicTest. With ReLU in the list, the quantiser takes each conv's int8 output range from after the ReLU, so
it starts at 0; quantising the conv's raw output instead spent the range on negative values the ReLU drops
(one net lost 41 points so, where a dead channel's folded scale of 94 stretched them). On a trained net (the
AVX-512 EPYC's fast_cpu run in docs/results.md) min/max ranges lost 1.87 points of PublicTest accuracy, 1.64
with BatchNorm in float; percentile ranges lost none. Weights use 7 of their 8 bits (``reduce_range``): on CPUs
without VNNI, onnxruntime multiplies uint8 by int8 with an instruction that saturates a pair of full-range products,
which cost 0.5 points of PublicTest accuracy in our measurement (docs/results.md, "Photos, ONNX and speed"); 7-bit
weights cannot saturate it. Accuracy is the judge: fer-export compares the int8 file with the float32 one on
PublicTest and refuses a loss past its limit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from fer_lightning.inference.runtimes import INPUT


def calibration_faces(train_images: np.ndarray, rows: int, seed: int = 0) -> np.ndarray:
    """``rows`` Training faces drawn without replacement (all of them if there are fewer)."""
    rng = np.random.default_rng(seed)
    return train_images[np.sort(rng.permutation(len(train_images))[:rows])]


def quantize_int8(model: bytes, faces: np.ndarray, batch: int = 50) -> bytes:
    """The float32 graph ``model`` (fer-export's: uint8-valued float pixels in) as a QDQ int8 graph.

    Calibration batches are all ``batch`` faces (the remainder is left out): onnxruntime's percentile
    calibrator fails on a shorter last batch.
    """
    if len(faces) > batch:
        faces = faces[: len(faces) // batch * batch]
    from onnxruntime import quantization as ort
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Faces(ort.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = (faces[s:s + batch, None].astype(np.float32) for s in range(0, len(faces), batch))

        def get_next(self) -> dict[str, np.ndarray] | None:
            pixels = next(self.batches, None)
            return None if pixels is None else {INPUT: pixels}

    with tempfile.TemporaryDirectory() as scratch:
        fp32, prepared, int8 = (Path(scratch) / name for name in ("fp32.onnx", "prepared.onnx", "int8.onnx"))
        fp32.write_bytes(model)
        quant_pre_process(str(fp32), str(prepared))  # shapes inferred, constants folded: what the quantiser expects
        ort.quantize_static(str(prepared), str(int8), Faces(), quant_format=ort.QuantFormat.QDQ, per_channel=True,
                            activation_type=ort.QuantType.QUInt8, weight_type=ort.QuantType.QInt8,
                            reduce_range=True, calibrate_method=ort.CalibrationMethod.Percentile,
                            op_types_to_quantize=["Conv", "Gemm", "MatMul", "Relu", "MaxPool"])
        return int8.read_bytes()
