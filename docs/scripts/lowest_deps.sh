#!/bin/bash
# Do the lower bounds in pyproject.toml hold? pip keeps whatever already satisfies a bound, so a user's environment
# can hold any version a bound allows. This installs a clone of HEAD into a new venv with each dependency and each
# test tool at the lowest release its bound allows (as pip constraints), lists what it got, then runs pytest.
# TensorFlow stays out: the Keras yardstick's own needs (numpy, tensorboard) would set those pins, and its four
# tests skip, saying why.
#   bash docs/scripts/lowest_deps.sh [interpreter] [pytest args ...]
#   e.g. bash docs/scripts/lowest_deps.sh python3.11 -x tests/test_train.py   (default: python3, the whole suite)
# The venv and the clone live in a temp dir, removed at the end; FER2013_CSV passes through to the tests.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
interpreter=${1:-python3}
shift || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
"$interpreter" -m venv "$work/venv"
# Each bound's lowest release that the venv's pip finds for its interpreter (`>=4.10` allows nothing older than
# 4.10.0.82, opencv's first 4.10); pyproject.toml read by python3 (tomllib, packaging), the repo's dev install's.
python3 - "$work/clone/pyproject.toml" "$work/venv/bin/python" "$work/lowest.txt" "$work/tools.txt" <<'EOF'
import re
import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.version import Version

pyproject, python, lowest_file, tools_file = sys.argv[1:]
project = tomllib.load(open(pyproject, "rb"))["project"]
tools = [line for line in project["optional-dependencies"]["dev"] if Requirement(line).name != "tensorflow-cpu"]
pins = []
for line in project["dependencies"] + tools:
    requirement = Requirement(line)
    bounds = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
    if not bounds:
        continue
    listed = subprocess.run([python, "-m", "pip", "index", "versions", requirement.name],
                            capture_output=True, text=True).stdout  # "Available versions: 3.1.2, 3.1.1, ..."
    versions = listed.partition("Available versions:")[2].splitlines()[0]
    lowest = min(v for v in map(Version, re.findall(r"[^\s,]+", versions)) if v >= bounds[0])
    marker = f"; {requirement.marker}" if requirement.marker else ""
    pins.append(f"{requirement.name}=={lowest}{marker}")  # constraints take no extras: psycopg[binary] as psycopg
open(lowest_file, "w").write("\n".join(pins) + "\n")
open(tools_file, "w").write("\n".join(tools) + "\n")
EOF
echo "== pinned:" $(cut -d';' -f1 "$work/lowest.txt")
cd "$work/clone"
"$work/venv/bin/pip" install -e . -r "$work/tools.txt" -c "$work/lowest.txt" > "$work/pip.log" 2>&1 \
  || { grep -A20 "conflict is caused\|^ERROR" "$work/pip.log"; exit 1; }  # which pins pip could not reconcile
names=$(cut -d'=' -f1 "$work/lowest.txt" | sed 's/[-_]/[-_]/g' | paste -sd'|')  # pip writes pillow-heif as pillow_heif
echo "== installed:" $("$work/venv/bin/pip" list --format=freeze 2>/dev/null | grep -iE "^($names)==")
# Not mypy's test: its verdict turns on each library's type stubs (Pillow 10.0 ships none; OpenCV's and numpy's
# change from release to release), so the suite checks the types at the releases pip picks today.
"$work/venv/bin/python" -m pytest -p no:cacheprovider --deselect tests/test_types.py::test_mypy_finds_no_type_error "$@"
