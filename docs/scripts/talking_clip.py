"""A video of two faces for measuring fer-predict on a video (20 s at 30 frames a second, MPEG-4), 720p, or that
times larger (3: 4K, as a phone films), and with a third, small face that comes into view at a given second:

    python docs/scripts/talking_clip.py /tmp/talk720.mp4
    python docs/scripts/talking_clip.py /tmp/talk4k.mp4 3
    python docs/scripts/talking_clip.py /tmp/talk720_small.mp4 --small-face-from 5.1
    /usr/bin/time -v fer-predict ckpt=<checkpoint> inputs=/tmp/talk720.mp4 progress=false show=0

The faces are the test suite's portrait (matplotlib's sample photo), about 150 and 125 px across at 720p; one walks
right a pixel a frame, the other down a pixel every four (at 720p), on a gray background with a little noise, so that
each frame has something to encode. The small face is about 28 px across at 720p, below the first of YuNet's two
looks, and walks left a pixel every two frames.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from conftest import scene_with_faces


def write_clip(path: Path, scale: int = 1, small_face_from: float | None = None, frames: int = 600,
               fps: int = 30) -> None:
    width, height = 1280 * scale, 720 * scale
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    rng = np.random.default_rng(0)
    for i in range(frames):
        places = [((100 + i) * scale, 100 * scale, 1.2 * scale), (800 * scale, (300 + i // 4) * scale, 1.0 * scale)]
        if small_face_from is not None and i >= small_face_from * fps:
            places.append(((1100 - i // 2) * scale, 600 * scale, 0.15 * scale))
        scene = scene_with_faces(places, size=(height, width))
        noisy = cv2.add(scene, rng.integers(0, 8, scene.shape, dtype=np.uint8))
        writer.write(cv2.cvtColor(noisy, cv2.COLOR_GRAY2BGR))
    writer.release()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("scale", nargs="?", type=int, default=1, help="1: 720p; 3: 4K")
    parser.add_argument("--small-face-from", type=float, help="the second the small face comes into view")
    args = parser.parse_args()
    write_clip(args.out, args.scale, args.small_face_from)
