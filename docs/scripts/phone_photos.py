"""A folder of phone-sized photos (4000x3000 colour JPEGs, one face each) for measuring fer-predict on a large folder:

    python docs/scripts/phone_photos.py /tmp/phone_photos 40
    /usr/bin/time -v fer-predict ckpt=<checkpoint> inputs=/tmp/phone_photos progress=false show=0

The face is the test suite's portrait (matplotlib's sample photo), scaled to about 760 px across and moved a little
from photo to photo, on a gray background with noise in one channel, so that JPEG has something to encode.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from conftest import scene_with_faces


def write_photos(folder: Path, count: int) -> None:
    """``count`` photos named photo_000.jpg, ... in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        scene = scene_with_faces([(800 + 20 * i, 600, 4.0)], size=(3000, 4000))
        noisy = cv2.add(scene, rng.integers(0, 30, scene.shape, dtype=np.uint8))
        photo = cv2.merge([scene, noisy, scene])
        cv2.imwrite(str(folder / f"photo_{i:03d}.jpg"), photo, [cv2.IMWRITE_JPEG_QUALITY, 85])


if __name__ == "__main__":
    write_photos(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40)
