"""Build ``fer_lightning/faces/yunet.onnx`` from libfacedetection's compiled library; check it against the library.

    pip install yuface            # CPython 3.10 or 3.11 on x86-64: the only wheels it has
    python docs/scripts/yunet_onnx.py [out.onnx]     # default: fer_lightning/faces/yunet.onnx

libfacedetection (BSD 3-clause) compiles its YuNet weights into its library and exports them: ``param_pConvInfo``
lists the 53 convolutions, each with its input channels, filter count, kind (1x1 pointwise or 3x3 depthwise) and
pointers to its float weights and biases. This script reads that table through ctypes and lays the convolutions out
as the library's ``objectdetect_cnn`` chains them:

- the stem: a 3x3 stride-2 convolution over the BGR pixels as they are (0-255), stored as a 1x1 one over the 27
  values of each 3x3 window (tap-major, colour-minor, padded to 32), then ReLU; a pointwise + depthwise pair;
  a 2x2 max pool;
- two units of two pointwise + depthwise pairs (each pair: 1x1 with no activation, then 3x3 depthwise + ReLU), a
  pool, and one more unit after each of three further pools: the maps at strides 8, 16 and 32;
- a feature pyramid from the top: each level's pair, then its map doubled (nearest) and added to the level below;
- on each level, four heads (a pair each, no ReLU): face score, box, objectness, five landmarks.

The graph ends at those twelve maps; ``fer_lightning/faces/yunet.py`` decodes them. The check runs both detectors on
``fer-detection-bench``'s pictures (``FER2013_CSV`` set) as they are and twice as large, and prints how many give the
same faces, every one scoring 0.3 or more (the library reports them from 0.2), within its rounding: scores to a
hundredth, boxes to a pixel.
"""

from __future__ import annotations

import ctypes
import io
import os
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fer_lightning.faces.yunet import GRAPH, YuNet

LAYERS = 53
LIBRARY_THRESHOLD = 0.2  # the score from which the shipped library reports a face, whatever yuface's conf
COMPARED_FROM = 0.3  # faces compared: a margin above it, where the library's truncated scores cannot cross it
STEM, STEM_PAIR, UNITS, PYRAMID, HEADS = 0, 1, (3, 7, 11, 15, 19), (23, 25, 27), (29, 35, 41, 47)


class _ConvInfo(ctypes.Structure):  # libfacedetection's ConvInfoStruct
    _fields_ = [("channels", ctypes.c_int), ("num_filters", ctypes.c_int), ("is_depthwise", ctypes.c_bool),
                ("is_pointwise", ctypes.c_bool), ("with_relu", ctypes.c_bool),
                ("weights", ctypes.POINTER(ctypes.c_float)), ("biases", ctypes.POINTER(ctypes.c_float))]


def library_convolutions() -> list[nn.Conv2d]:
    """The library's 53 convolutions as torch layers, in its order."""
    import yuface

    library = ctypes.CDLL(os.path.join(os.path.dirname(yuface.__file__), "libfacedetection.so"))
    convolutions = []
    for info in (_ConvInfo * LAYERS).in_dll(library, "param_pConvInfo"):
        taps = 9 if info.is_depthwise else info.num_filters
        weights = np.ctypeslib.as_array(info.weights, (taps * info.channels,)).copy()
        biases = np.ctypeslib.as_array(info.biases, (info.num_filters,)).copy()
        if info.is_depthwise:  # stored (3, 3, channels)
            conv = nn.Conv2d(info.channels, info.channels, 3, padding=1, groups=info.channels)
            conv.weight = nn.Parameter(torch.from_numpy(weights.reshape(3, 3, info.channels)).permute(2, 0, 1)[:, None])
        else:  # stored (filters, channels)
            conv = nn.Conv2d(info.channels, info.num_filters, 1)
            conv.weight = nn.Parameter(torch.from_numpy(weights.reshape(info.num_filters, info.channels, 1, 1)))
        conv.bias = nn.Parameter(torch.from_numpy(biases))
        convolutions.append(conv)
    stored = convolutions[STEM]  # its 27 live inputs: window row, window column, colour
    stem = nn.Conv2d(3, stored.out_channels, 3, stride=2, padding=1)
    stem.weight = nn.Parameter(stored.weight.data[:, :27, 0, 0].reshape(-1, 3, 3, 3).permute(0, 3, 1, 2).contiguous())
    stem.bias = stored.bias
    convolutions[STEM] = stem
    return convolutions


class YuNetGraph(nn.Module):
    def __init__(self, convolutions: list[nn.Conv2d]) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convolutions)

    def pair(self, x: torch.Tensor, first: int, relu: bool = True) -> torch.Tensor:
        x = self.convs[first + 1](self.convs[first](x))
        return F.relu(x) if relu else x

    def unit(self, x: torch.Tensor, first: int) -> torch.Tensor:
        return self.pair(self.pair(x, first), first + 2)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = F.max_pool2d(self.pair(F.relu(self.convs[STEM](image)), STEM_PAIR), 2)
        x = self.unit(self.unit(x, UNITS[0]), UNITS[1])
        levels = [self.unit(F.max_pool2d(x, 2), UNITS[2])]
        for first in UNITS[3:]:
            levels.append(self.unit(F.max_pool2d(levels[-1], 2), first))
        top = None
        for level in (2, 1, 0):
            below = levels[level] if top is None else levels[level] + F.interpolate(top, scale_factor=2.0)
            levels[level] = top = self.pair(below, PYRAMID[level])
        return tuple(self.pair(levels[level], head + 2 * level, relu=False) for level in range(3) for head in HEADS)


def export(graph: YuNetGraph) -> bytes:
    names = [f"{head}_{stride}" for stride in (8, 16, 32) for head in ("score", "box", "objectness", "landmarks")]
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph.eval(), (torch.zeros(1, 3, 64, 96),), buffer,  # type: ignore[arg-type]
                          dynamo=False, opset_version=17,
                          input_names=["image"], output_names=names, dynamic_axes={"image": {2: "height", 3: "width"}})
    return buffer.getvalue()


def same_faces(ours: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray]) -> bool:
    """Whether two lists of (scores, x-y-w-h boxes) hold the same faces, each of ours matching one of theirs within
    the library's rounding: it reports a score in whole hundredths and a box in whole pixels, each truncated."""
    def faces(scores: np.ndarray, boxes: np.ndarray) -> list[np.ndarray]:
        return [np.append(box, score * 100) for score, box in zip(scores, boxes, strict=True) if score >= COMPARED_FROM]

    unmatched = faces(*theirs)
    for face in faces(*ours):
        match = next((i for i, other in enumerate(unmatched) if np.all(np.abs(face - other) <= 1.01)), None)
        if match is None:
            return False
        unmatched.pop(match)
    return not unmatched


def check(graph_file: Path) -> None:
    import yuface

    from fer_lightning.data.csv_reader import load_fer2013
    from fer_lightning.faces.detection_set import make_detection_set

    faces, _ = load_fer2013(os.environ["FER2013_CSV"], "outputs/cache").split("Training")
    pictures = [cv2.cvtColor(p, cv2.COLOR_GRAY2BGR) for p in make_detection_set(faces, 40).pictures]
    ours = YuNet(graph_file)
    for zoom in (1, 2):
        same = 0
        for picture in pictures:
            picture = cv2.resize(picture, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_CUBIC)
            with warnings.catch_warnings():  # it warns above 960 px
                warnings.simplefilter("ignore")
                scores, boxes, _ = yuface.detect(picture, conf=0)
            score, box, _ = ours.detect(picture, LIBRARY_THRESHOLD)
            same += same_faces((score, box), (scores / 100, boxes.astype(float)))
        print(f"pictures at {zoom}x: {same} of {len(pictures)} with the same faces")


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else GRAPH
    out.write_bytes(export(YuNetGraph(library_convolutions())))
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
    if os.environ.get("FER2013_CSV"):
        check(out)


if __name__ == "__main__":
    main()
