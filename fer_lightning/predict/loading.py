"""What fer-predict loads once: the model named by ckpt=, onnx= or stack=, with its TTA, temperature and runtime,
and the face finder of its detector settings. ``EmotionReader`` loads through the same functions, so its answers
are the command's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from omegaconf import DictConfig
from scipy.special import softmax

from fer_lightning.faces.detectors import make_detector
from fer_lightning.faces.finder import FaceFinder
from fer_lightning.inference.calibration import fit_temperature, log_probabilities
from fer_lightning.inference.face_classifier import FaceClassifier
from fer_lightning.inference.onnx_file import OnnxFaceClassifier, int8_copy
from fer_lightning.inference.runtime_names import AUTO, GRAPH_RUNTIMES
from fer_lightning.inference.runtimes import chosen_runtime
from fer_lightning.precision import inference_bf16
from fer_lightning.predict.request import named_model
from fer_lightning.training.run_dir import RunDir

if TYPE_CHECKING:
    from fer_lightning.ensemble.stacking import Stacker


class EmotionModel(Protocol):
    """What fer-predict asks of a checkpoint, an ONNX file or a stack: the seven probabilities of each 48x48 uint8
    face in a batch."""

    def predict_proba(self, images: np.ndarray) -> np.ndarray: ...


@dataclass
class StackedFaceClassifier:
    """stack.py's meta-model with its base checkpoints loaded once, its probabilities at ``temperature``."""

    stacker: Stacker
    bases: list[FaceClassifier]
    temperature: float

    @classmethod
    def from_path(cls, path: str | Path, bf16: bool, runtime: str,
                  temperature: float | None = None) -> StackedFaceClassifier:
        """``temperature`` None: the one stack.py fitted on PublicTest."""
        from fer_lightning.ensemble.stacking import Stacker  # scikit-learn's second of start-up, for stack= only

        path = Path(path)
        stacker = Stacker.load(path / "meta_model.joblib" if path.is_dir() else path)
        return cls(stacker, stacker.base_classifiers(bf16, runtime),
                   stacker.temperature if temperature is None else temperature)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        stacked = self.stacker.predict_images(images, self.bases)
        return softmax(log_probabilities(stacked) / self.temperature, axis=1)


def _checkpoint_tta(ckpt: Path) -> str:
    """The TTA the checkpoint's run chose on PublicTest; none for a checkpoint outside a finished run dir."""
    run_dir = RunDir.of_checkpoint(ckpt)
    return run_dir.tta() if run_dir else "none"


def _temperature(cfg: DictConfig, model_file: Path) -> float:
    """``temperature``, where auto is the one fitted on the PublicTest logits of the run the checkpoint or ONNX file
    belongs to (with the run's TTA), so that a face said to be 80% sure is right about 80% of the time; 1, the
    net's own probabilities, for a file outside a finished run dir."""
    if cfg.temperature != "auto":
        return float(cfg.temperature)
    run_dir = RunDir.of_checkpoint(model_file)
    return fit_temperature(*run_dir.logits("PublicTest")) if run_dir and run_dir.has_logits() else 1.0


def load_model(cfg: DictConfig) -> tuple[EmotionModel, str]:
    """The one model named by ckpt=, onnx= or stack=, and a description for the log and the JSON."""
    kind, path = named_model(cfg)
    bf16 = inference_bf16(cfg.precision, "cpu")
    if kind == "ckpt":
        int8 = int8_copy(path) if cfg.int8 == "auto" and cfg.runtime in (*GRAPH_RUNTIMES, AUTO) else None
        runtime = chosen_runtime(cfg.runtime, bf16, int8 is not None)
        classifier = FaceClassifier.from_checkpoint(path, bf16, _checkpoint_tta(path) if cfg.tta == "auto" else cfg.tta,
                                                    runtime, int8, _temperature(cfg, path))
        in_bf16 = bf16 and runtime != "onnxruntime"  # onnxruntime runs the graph in float32
        precision = f" (its int8 copy {int8})" if int8 else " (bf16)" if in_bf16 else ""
        return classifier, (f"checkpoint {path} on {runtime}{precision}, TTA {classifier.tta}, "
                            f"temperature {classifier.temperature:.2f}")
    if kind == "onnx":
        onnx_model = OnnxFaceClassifier(path, cfg.runtime, _temperature(cfg, path))
        return onnx_model, (f"ONNX {path}" + (" (int8)" if onnx_model.int8 else "") + f" on {onnx_model.runtime}, "
                            f"temperature {onnx_model.temperature:.2f}")
    runtime = chosen_runtime(cfg.runtime, bf16)
    stacked = StackedFaceClassifier.from_path(path, bf16, runtime,
                                              None if cfg.temperature == "auto" else float(cfg.temperature))
    return stacked, f"stack {path} on {runtime}, temperature {stacked.temperature:.2f}"


def face_finder(cfg: DictConfig) -> FaceFinder:
    """The detector and crop settings of fer-predict's config (conf/predict.yaml, conf/detector/)."""
    return FaceFinder(make_detector(**cfg.detector), cfg.detect, cfg.margin, cfg.level_eyes_above)
