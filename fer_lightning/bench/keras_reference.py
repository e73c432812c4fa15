"""The study's Keras models, rebuilt from our own model configs, timed on real FER-2013 rows.

This is the yardstick for ``fer-bench keras=true``: the study trained with ``model.fit`` on float32 arrays
(pixels / 255) and predicted with ``model.predict``. Both are timed in steady state only: Keras traces its
graph at the start of every ``fit`` and ``predict`` call, which would halve a short measurement, so the first
``warmup_batches`` training batches and one whole ``predict`` call are left out. It needs TensorFlow
(``pip install -e ".[keras]"``), which never becomes a core dependency, and runs in its own process (``python -m
fer_lightning.bench.keras_reference <net config as JSON> <csv> <cache dir>``) so that TensorFlow's thread pools and
oneDNN settings cannot touch the PyTorch side of a comparison.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import numpy as np

from fer_lightning.data.csv_reader import load_fer2013
from fer_lightning.errors import FerError
from fer_lightning.fer2013 import CLASS_NAMES, IMAGE_SIDE


def build_keras_model(net: dict[str, Any]) -> Any:
    """A FerCNN config (``model.net``) as the study wrote it in Keras, layer for layer.

    ReLU blocks are ``Conv2D(activation='relu')`` -> BatchNormalization; LeakyReLU blocks are a linear
    ``Conv2D`` -> ``LeakyReLU`` -> BatchNormalization; then MaxPooling2D where the block pools, and Dropout.
    Only the study's order (``norm_after_activation: true``) has a Keras original to compare with.
    """
    import keras
    from keras import layers, regularizers

    if not net.get("norm_after_activation", False):
        raise FerError("the Keras reference builds the study's nets only (model=relu or model=leaky, where "
                       "norm_after_activation is true)")
    leaky = net.get("activation", "relu") == "leaky_relu"

    def activation(block: dict[str, Any]) -> list[Any]:
        return [layers.LeakyReLU(negative_slope=block.get("negative_slope", 0.01))] if leaky else []

    model = keras.Sequential([keras.Input((IMAGE_SIDE, IMAGE_SIDE, 1))])
    for block in net["conv_blocks"]:
        kernel = block.get("kernel_size", 3)
        model.add(layers.Conv2D(block["filters"], kernel, padding=net.get("conv_padding") or "same",
                                activation=None if leaky else "relu",
                                kernel_regularizer=regularizers.l2(block.get("l2", 0.0))))
        for layer in [*activation(block), layers.BatchNormalization()]:
            model.add(layer)
        if block.get("pool", True):
            model.add(layers.MaxPooling2D())
        model.add(layers.Dropout(block.get("dropout", 0.25)))
    model.add(layers.Flatten())
    for block in net.get("dense_blocks", []):
        model.add(layers.Dense(block["units"], activation=None if leaky else "relu",
                               kernel_regularizer=regularizers.l2(block.get("l2", 0.0))))
        for layer in [*activation(block), layers.Dropout(block.get("dropout", 0.25))]:
            model.add(layer)
    model.add(layers.Dense(len(CLASS_NAMES), activation="softmax"))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1), metrics=["accuracy"])
    return model


def time_keras(net: dict[str, Any], images: np.ndarray, labels: np.ndarray, batch: int = 128,
               infer_batch: int = 512, warmup_batches: int = 10, steps: int = 60,
               predict_passes: int = 3) -> dict[str, Any]:
    """Steady-state training images/s (``fit`` at ``batch``) and inference images/s (``predict``): the median of
    ``predict_passes`` timed passes over the same faces. One pass alone gave 775-1,179 faces/s over five fer-bench
    runs on a 2-core Zen 4 EPYC, the median of three 1,103-1,274 (docs/results.md)."""
    import keras

    model = build_keras_model(net)
    need = batch * (warmup_batches + steps)
    x = np.resize(images, (need, IMAGE_SIDE, IMAGE_SIDE))[..., None].astype(np.float32) / 255.0
    y = keras.utils.to_categorical(np.resize(labels, need), len(CLASS_NAMES))
    stamps: list[float] = []
    clock = keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_, **__: stamps.append(time.perf_counter()))
    model.fit(x, y, batch_size=batch, epochs=1, shuffle=True, verbose=0, callbacks=[clock])
    steady = stamps[warmup_batches - 1:]
    train_rate = batch * (len(steady) - 1) / (steady[-1] - steady[0])

    faces = x[: max(infer_batch * 8, 4096)]
    model.predict(faces, batch_size=infer_batch, verbose=0)  # traces the predict graph
    rates = []
    for _ in range(predict_passes):
        start = time.perf_counter()
        model.predict(faces, batch_size=infer_batch, verbose=0)
        rates.append(len(faces) / (time.perf_counter() - start))
    infer_rate = float(np.median(rates))
    return {"keras_train_images_per_s": train_rate, "keras_infer_images_per_s": infer_rate,
            "keras_version": keras.__version__}


def main(argv: list[str] | None = None) -> None:
    """``<net config as JSON> <csv> <cache dir> [batch] [infer batch] [warm-up batches]``; prints one JSON line."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 3:
        sys.exit("usage: python -m fer_lightning.bench.keras_reference <net config as JSON> <csv> <cache dir> "
                 "[batch] [infer batch] [warm-up batches]")
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        sys.exit('error: the Keras reference needs TensorFlow: pip install -e ".[keras]"')
    net = json.loads(args[0])
    images, labels = load_fer2013(args[1], args[2]).split("Training")
    sizes = [int(a) for a in args[3:6]]
    print(json.dumps(time_keras(net, images, labels, *sizes)))


if __name__ == "__main__":
    main()
