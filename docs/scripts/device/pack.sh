#!/bin/bash
# Here, before a session with a device machine: fill .device/ (git-ignored) with FER-2013 packed (55 MB,
# lossless) and the wheels the device's image lacks, at the versions this checkout is tested with (~8 MB).
# Each device call then names .device in `carry` and begins with `source docs/scripts/device/setup.sh`.
# The device takes at most 64 MiB of working tree per call: this leaves ~3 MB for the code.
set -euo pipefail
cd "$(dirname "$0")/../../.."
mkdir -p .device/wheels
if [ ! -f .device/fer2013.med.xz ]; then
  python docs/scripts/device/fer_pack.py pack "${FER2013_CSV:?set FER2013_CSV to the real fer2013.csv.gz}" .device/fer2013.med.xz
fi
version() { python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1"; }
wheels=()
for name in hydra-core omegaconf optuna optuna-integration sqlalchemy alembic colorlog mako hydra-joblib-launcher \
            lightning lightning-utilities torchmetrics; do
  wheels+=("$name==$(version "$name")")
done
rm -f .device/wheels/*.whl
python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .device/wheels "${wheels[@]}"
# antlr4's runtime (for Hydra) is published as a source archive only; fer-lightning itself is built from here.
python -m pip wheel -q --no-deps -w .device/wheels "antlr4-python3-runtime==$(version antlr4-python3-runtime)" .
du -sh .device .device/wheels
