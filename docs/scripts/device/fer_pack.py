"""FER-2013 small enough to travel to a device machine (at most 64 MiB with the code), and back into a CSV there.

The device machine sees the working tree but not ``../shared``, and the 95 MB gzip CSV is too large to travel.
Packed: each pixel replaced by its difference from the median-edge prediction of its left, upper and upper-left
neighbours (the LOCO-I predictor of lossless JPEG), then xz: 55 MB, lossless. Unpacked there into a CSV in
FER-2013's own format, so train.py reads it through FER2013_CSV like the real file.

    python docs/scripts/device/fer_pack.py pack $FER2013_CSV .device/fer2013.med.xz   # here
    python3 docs/scripts/device/fer_pack.py unpack .device/fer2013.med.xz /tmp/fer2013.csv   # on the device
"""

from __future__ import annotations

import lzma
import sys
from pathlib import Path

import numpy as np

SIDE = 48
SPLITS = ("Training", "PublicTest", "PrivateTest")


def _prediction(left: np.ndarray, up: np.ndarray, corner: np.ndarray) -> np.ndarray:
    """Median-edge prediction, on int16 so sums cannot wrap."""
    high, low = np.maximum(left, up), np.minimum(left, up)
    return np.where(corner >= high, low, np.where(corner <= low, high, left + up - corner))


def _neighbours(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    left, up, corner = (np.zeros_like(images) for _ in range(3))
    left[:, :, 1:], up[:, 1:, :], corner[:, 1:, 1:] = images[:, :, :-1], images[:, :-1, :], images[:, :-1, :-1]
    return left, up, corner


def encode(images: np.ndarray) -> np.ndarray:
    wide = images.astype(np.int16)
    return ((wide - _prediction(*_neighbours(wide))) % 256).astype(np.uint8)


def decode(residuals: np.ndarray) -> np.ndarray:
    """Pixel by pixel in raster order (each needs its decoded neighbours), every face at once."""
    images = np.zeros(residuals.shape, np.int16)
    zero = np.zeros(len(images), np.int16)
    for row in range(SIDE):
        for col in range(SIDE):
            left = images[:, row, col - 1] if col else zero
            up = images[:, row - 1, col] if row else zero
            corner = images[:, row - 1, col - 1] if row and col else zero
            images[:, row, col] = (residuals[:, row, col] + _prediction(left, up, corner)) % 256
    return images.astype(np.uint8)


def pack(csv_path: str, out: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from fer_lightning.data.csv_reader import parse_csv

    data = parse_csv(csv_path)
    header = np.array([len(data.labels)], np.int64).tobytes() + data.labels.astype(np.uint8).tobytes() \
        + data.usage.astype(np.uint8).tobytes()
    residuals = encode(data.images)
    assert np.array_equal(decode(residuals), data.images), "the codec does not round-trip"
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_bytes(lzma.compress(header + residuals.tobytes(), preset=9))
    print(f"{out}: {len(data.labels)} faces, {Path(out).stat().st_size / 1e6:.1f} MB")


def unpack_csv(packed: str, csv_path: str) -> None:
    raw = lzma.decompress(Path(packed).read_bytes())
    count = int(np.frombuffer(raw[:8], np.int64)[0])
    labels = np.frombuffer(raw[8:8 + count], np.uint8)
    usage = np.frombuffer(raw[8 + count:8 + 2 * count], np.uint8)
    images = decode(np.frombuffer(raw[8 + 2 * count:], np.uint8).reshape(count, SIDE, SIDE))
    with open(csv_path, "w") as file:
        file.write("emotion,pixels,Usage\n")
        for label, face, split in zip(labels, images.reshape(count, -1), usage, strict=True):
            file.write(f"{label},{' '.join(map(str, face.tolist()))},{SPLITS[split]}\n")
    print(f"{csv_path}: {count} faces")


if __name__ == "__main__":
    command, source, target = sys.argv[1:4]
    {"pack": pack, "unpack": unpack_csv}[command](source, target)
