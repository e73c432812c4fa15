"""The kit that takes FER-2013 to a device machine: packed here, unpacked there into the same rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from fer_lightning.data.csv_reader import parse_csv

PACKER = Path(__file__).resolve().parents[1] / "docs" / "scripts" / "device" / "fer_pack.py"


def test_packed_data_unpacks_into_the_same_faces(fer_csv: Path, tmp_path: Path) -> None:
    packed, unpacked = tmp_path / "fer.med.xz", tmp_path / "fer.csv"
    for command, source, target in (("pack", fer_csv, packed), ("unpack", packed, unpacked)):
        done = subprocess.run([sys.executable, str(PACKER), command, str(source), str(target)],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    original, copy = parse_csv(fer_csv), parse_csv(unpacked)
    for field in ("images", "labels", "usage", "lines"):
        np.testing.assert_array_equal(getattr(copy, field), getattr(original, field))
    assert packed.stat().st_size < 0.95 * original.images.nbytes  # the synthetic noise barely compresses
