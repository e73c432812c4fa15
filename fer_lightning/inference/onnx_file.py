"""The CNN as an ONNX file: normalisation baked in, any batch size, checked against PyTorch on real faces.

``fer-export ckpt=... format=onnx`` writes it, compares onnxruntime's logits with the checkpoint's on PublicTest
rows, and times both; ``fer-predict onnx=...`` runs it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from scipy.special import softmax

from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.errors import FerError
from fer_lightning.fer2013 import IMAGE_SIDE, NUM_CLASSES
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.runtimes import INPUT, OUTPUT, onnx_bytes, onnxruntime_session
from fer_lightning.inference.timing import timings
from fer_lightning.precision import inference_bf16

log = logging.getLogger(__name__)


def export_onnx(classifier: FaceClassifier, path: Path, opset: int = 17) -> Path:
    """Write the network with a dynamic batch axis; input (N, 1, 48, 48) float32 pixels 0-255."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(onnx_bytes(classifier.net, classifier.mean, classifier.std, opset))
    return path


class OnnxFaceClassifier:
    """An exported network under onnxruntime, with FaceClassifier's interface: uint8 faces in."""

    def __init__(self, path: str | Path) -> None:
        self.source = Path(path)
        if not self.source.is_file():
            raise FerError(f"{self.source}: no such ONNX file")
        try:
            self.session = onnxruntime_session(self.source)
        except Exception as err:  # onnxruntime raises its own error types for a foreign or broken file
            raise FerError(f"{self.source}: not a loadable ONNX model ({type(err).__name__})") from None
        inputs = self.session.get_inputs()
        if [i.name for i in inputs] != [INPUT] or list(inputs[0].shape[1:]) != [1, IMAGE_SIDE, IMAGE_SIDE]:
            raise FerError(f"{self.source}: expected one input 'faces' of shape (N, 1, 48, 48), as fer-export "
                           f"writes; found {[(i.name, i.shape) for i in inputs]}")

    def logits(self, images: np.ndarray, batch_size: int = 512) -> np.ndarray:
        chunks = [self.session.run([OUTPUT], {INPUT: images[s:s + batch_size, None].astype(np.float32)})[0]
                  for s in range(0, len(images), batch_size)]
        return np.concatenate(chunks) if chunks else np.zeros((0, NUM_CLASSES), np.float32)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return softmax(self.logits(images), axis=1)


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


def export(cfg: DictConfig) -> dict[str, float]:
    """Export, check parity on PublicTest faces, optionally time PyTorch and ONNX; returns the figures printed."""
    if cfg.format != "onnx":
        raise FerError(f"format must be onnx, got {cfg.format!r}")
    classifier = FaceClassifier.from_checkpoint(cfg.ckpt)
    target = Path(cfg.out) if cfg.out else Path(cfg.ckpt).with_suffix(".onnx")
    export_onnx(classifier, target, cfg.opset)
    onnx_model = OnnxFaceClassifier(target)
    faces = load_fer2013(cfg.csv_path, cfg.cache_dir).split("PublicTest")[0][: cfg.parity_rows]
    figures = parity(classifier.logits(faces), onnx_model.logits(faces), cfg.tolerance, str(target))
    log.info("Wrote %s; onnxruntime matches PyTorch within %.1e on %d PublicTest faces", target,
             figures["max_abs_logit_diff"], len(faces))
    if cfg.bench:
        backends = {"torch_fp32": classifier.logits, "onnxruntime": onnx_model.logits}
        if inference_bf16("auto", "cpu"):
            backends["torch_bf16"] = FaceClassifier.from_checkpoint(cfg.ckpt, bf16=True).logits
        for name, logits in backends.items():
            figures |= {f"{name}_{key}": value for key, value in timings(logits, faces).items()}
    for key, value in figures.items():
        print(f"{key}={value:.6g}")
    return figures
