"""The CNN as an ONNX file: normalisation baked in, any batch size, checked against PyTorch on real faces.

``fer-export ckpt=... format=onnx`` writes it, compares onnxruntime's logits with the checkpoint's on PublicTest
rows, and times both; ``int8=true`` also writes an int8 copy (``inference.quantization``) and refuses it if it
loses too much PublicTest accuracy. ``fer-predict onnx=...`` runs either.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import onnx
from omegaconf import DictConfig
from scipy.special import softmax

from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.errors import ConfigError, FerError, check_number, check_switch, check_whole_number
from fer_lightning.fer2013 import IMAGE_SIDE, NUM_CLASSES
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.quantization import calibration_faces, quantize_int8
from fer_lightning.inference.runtime_names import GRAPH_RUNTIMES, ONNX_FILE_RUNTIMES, checked_runtime
from fer_lightning.inference.runtimes import INPUT, chosen_runtime, graph_runner, onnx_bytes, onnxruntime_session
from fer_lightning.inference.timing import timings
from fer_lightning.machine import cpu_name
from fer_lightning.precision import inference_bf16

log = logging.getLogger(__name__)
INT8_SUFFIX = ".int8.onnx"  # the int8 copy of <name>.onnx is <name>.int8.onnx


def int8_copy(checkpoint: Path) -> Path | None:
    """The int8 copy ``fer-export ckpt=<checkpoint> int8=true`` wrote beside the checkpoint (its default ``out``),
    which it leaves only where PublicTest allowed it; None where there is none, or where the checkpoint was
    rewritten after it (a resumed run's last.ckpt), so the copy is of other weights."""
    copy = checkpoint.with_suffix(INT8_SUFFIX)
    if not copy.is_file():
        return None
    if copy.stat().st_mtime < checkpoint.stat().st_mtime:
        log.warning("%s is older than %s, so of other weights: not used", copy, checkpoint)
        return None
    return copy


def export_onnx(classifier: FaceClassifier, path: Path, opset: int = 17) -> Path:
    """Write the network with a dynamic batch axis; input (N, 1, 48, 48) float32 pixels 0-255."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_bytes(classifier.net, classifier.mean, classifier.std, opset))
    return path


class OnnxFaceClassifier:
    """An exported network (float32 or int8) under onnxruntime or OpenVINO, with FaceClassifier's interface:
    uint8 faces in, probabilities at ``temperature``. The file's input is checked with onnxruntime whichever runtime
    then runs it; ``runtime`` auto picks by whether the file is int8 (``chosen_runtime``; the graph runs in
    float32)."""

    def __init__(self, path: str | Path, runtime: str = "onnxruntime", temperature: float = 1.0) -> None:
        self.source = Path(path)
        self.temperature = temperature
        if not self.source.is_file():
            raise FerError(f"{self.source}: no such ONNX file")
        checked_runtime(runtime, "runtime for an ONNX file", ONNX_FILE_RUNTIMES)
        try:
            session = onnxruntime_session(self.source)
        except Exception as err:  # onnxruntime raises its own error types for a foreign or broken file
            raise FerError(f"{self.source}: not a loadable ONNX model ({type(err).__name__})") from None
        inputs = session.get_inputs()
        if [i.name for i in inputs] != [INPUT] or list(inputs[0].shape[1:]) != [1, IMAGE_SIDE, IMAGE_SIDE]:
            raise FerError(f"{self.source}: expected one input 'faces' of shape (N, 1, 48, 48), as fer-export "
                           f"writes; found {[(i.name, i.shape) for i in inputs]}")
        self.int8 = any(node.op_type == "QuantizeLinear" for node in onnx.load(self.source).graph.node)
        self.runtime = chosen_runtime(runtime, bf16=False, int8=self.int8)
        self.run = graph_runner(self.runtime, self.source, bf16=False)

    def logits(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        chunks = [self.run(images[s:s + batch_size, None].astype(np.float32))
                  for s in range(0, len(images), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, NUM_CLASSES), np.float32)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return softmax(self.logits(images) / self.temperature, axis=1)


def parity(expected: np.ndarray, got: np.ndarray, tolerance: float, name: str) -> dict[str, float]:
    """How closely an exported model's logits follow PyTorch's on the same faces; raises past ``tolerance``.

    A NaN or infinite logit on either side fails too (a plain ``diff > tolerance`` is False for NaN).
    """
    diff = float(np.abs(expected - got).max()) if len(got) else 0.0
    if not np.isfinite(expected).all() or not np.isfinite(got).all():
        raise FerError(f"{name}: non-finite logits on {len(got)} PublicTest faces (PyTorch: "
                       f"{(~np.isfinite(expected)).sum()}, exported: {(~np.isfinite(got)).sum()})")
    if not diff <= tolerance:
        raise FerError(f"{name}: logits differ from PyTorch's by up to {diff:.2e} on {len(got)} PublicTest faces, "
                       f"above tolerance {tolerance:g}")
    return {"parity_rows": float(len(got)), "max_abs_logit_diff": diff,
            "argmax_agreement": float(np.mean(expected.argmax(1) == got.argmax(1))) if len(got) else 1.0}


def int8_accuracy_check(fp32: Path, int8: Path, faces: np.ndarray, labels: np.ndarray,
                        max_drop: float) -> dict[str, float]:
    """PublicTest accuracy of the float32 and int8 files under each graph runtime (fer-predict may use either);
    raises where int8 loses more than ``max_drop`` points under any of them (the message names no file: the caller
    checks a copy under a name of its own)."""
    figures: dict[str, float] = {}
    for runtime in GRAPH_RUNTIMES:
        fp32_acc, int8_acc = (float(np.mean(OnnxFaceClassifier(path, runtime).logits(faces).argmax(1) == labels))
                              for path in (fp32, int8))
        drop = 100 * (fp32_acc - int8_acc)
        figures |= {f"{runtime}_fp32_acc": fp32_acc, f"{runtime}_int8_acc": int8_acc,
                    f"{runtime}_int8_drop_points": drop}
        if not drop <= max_drop:
            raise FerError(f"int8 loses {drop:.2f} points of PublicTest accuracy under {runtime} "
                           f"({fp32_acc:.2%} -> {int8_acc:.2%} on {len(faces)} faces), more than "
                           f"int8_max_drop={max_drop:g}")
    return figures


def export(cfg: DictConfig) -> dict[str, float]:
    """Export, check parity on PublicTest faces, optionally quantise to int8 (checked on all of PublicTest) and
    time each backend; returns the figures printed."""
    if cfg.format != "onnx":
        raise ConfigError(f"format must be onnx, got {cfg.format!r}")
    for switch in ("int8", "bench"):
        check_switch(switch, cfg[switch])
    check_whole_number("opset", cfg.opset, least=7)
    check_whole_number("parity_rows", cfg.parity_rows, "faces")  # a check over no faces would pass, saying nothing
    check_whole_number("int8_calibration_rows", cfg.int8_calibration_rows, "faces")
    check_number("tolerance", cfg.tolerance, above=0, why="the largest logit difference accepted")
    check_number("int8_max_drop", cfg.int8_max_drop, why="points of PublicTest accuracy")
    classifier = FaceClassifier.from_checkpoint(cfg.ckpt)
    target = Path(cfg.out) if cfg.out else Path(cfg.ckpt).with_suffix(".onnx")
    export_onnx(classifier, target, cfg.opset)
    onnx_model = OnnxFaceClassifier(target)
    data = load_fer2013(cfg.csv_path, cfg.cache_dir)
    public_faces, public_labels = data.split("PublicTest")[:2]
    faces = public_faces[: cfg.parity_rows]
    figures = parity(classifier.logits(faces), onnx_model.logits(faces), cfg.tolerance, str(target))
    log.info("Wrote %s; onnxruntime matches PyTorch within %.1e on %d PublicTest faces", target,
             figures["max_abs_logit_diff"], len(faces))
    backends = {"torch_fp32": classifier.logits, "onnxruntime": onnx_model.logits}
    if cfg.int8:
        int8 = target.with_suffix(INT8_SUFFIX)
        unchecked = int8.with_name(f".unchecked-{int8.name}")  # a name fer-predict never looks for (int8_copy)
        calibration = calibration_faces(data.split("Training")[0], cfg.int8_calibration_rows)
        try:
            unchecked.write_bytes(quantize_int8(target.read_bytes(), calibration))
            figures |= int8_accuracy_check(target, unchecked, public_faces, public_labels, cfg.int8_max_drop)
            os.replace(unchecked, int8)  # only a checked copy, whole, takes the name fer-predict runs
        except FerError as refusal:
            int8.unlink(missing_ok=True)  # nor does an earlier export's copy of these weights stay beside them
            raise FerError(f"{int8}: {refusal}") from None
        finally:
            unchecked.unlink(missing_ok=True)  # a check stopped midway (Ctrl-C) leaves nothing behind
        log.info("Wrote %s (calibrated on %d Training faces); PublicTest accuracy %s", int8, len(calibration),
                 ", ".join(f"{rt} {figures[f'{rt}_fp32_acc']:.2%} -> {figures[f'{rt}_int8_acc']:.2%}"
                           for rt in GRAPH_RUNTIMES))
        backends |= {f"{runtime}_int8": OnnxFaceClassifier(int8, runtime).logits for runtime in GRAPH_RUNTIMES}
    if cfg.bench:
        backends["openvino"] = OnnxFaceClassifier(target, "openvino").logits
        if inference_bf16("auto", "cpu"):
            backends["torch_bf16"] = FaceClassifier.from_checkpoint(cfg.ckpt, bf16=True).logits
        for name, logits in backends.items():
            figures |= {f"{name}_{key}": value for key, value in timings(logits, faces).items()}
        print(f"cpu={cpu_name()}")  # latencies are only comparable on one CPU
    for key, value in figures.items():
        print(f"{key}={value:.6g}")
    return figures
