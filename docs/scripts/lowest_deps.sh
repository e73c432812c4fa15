#!/bin/bash
# Do the lower bounds in pyproject.toml hold? pip keeps whatever already satisfies a bound, so a user's environment
# can hold any version a bound allows. This installs a clone of HEAD into a new venv with every `name>=X` of the
# dependencies and the dev extra pinned to the lowest release X allows (as pip constraints), lists what it got, then
# runs pytest.
#   bash docs/scripts/lowest_deps.sh [interpreter] [pytest args ...]
#   e.g. bash docs/scripts/lowest_deps.sh python3.11 -x -q tests/test_train.py   (default: python3, the whole suite)
# The venv and the clone live in a temp dir, removed at the end; FER2013_CSV passes through to the tests.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
interpreter=${1:-python3}
shift || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
"$interpreter" -m venv "$work/venv"
# Each bound's lowest release that the venv's pip finds for its interpreter (`>=4.9` allows nothing older than
# 4.9.0.80, opencv's first 4.9); pyproject.toml read by python3 (tomllib, packaging), the repo's dev install's.
python3 - "$work/clone/pyproject.toml" "$work/venv/bin/python" > "$work/lowest.txt" <<'EOF'
import re
import subprocess
import sys
import tomllib

from packaging.requirements import Requirement
from packaging.version import Version

project = tomllib.load(open(sys.argv[1], "rb"))["project"]
for line in project["dependencies"] + project["optional-dependencies"]["dev"]:
    requirement = Requirement(line)
    bounds = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
    if not bounds:
        continue
    listed = subprocess.run([sys.argv[2], "-m", "pip", "index", "versions", requirement.name],
                            capture_output=True, text=True).stdout  # "Available versions: 3.1.2, 3.1.1, ..."
    versions = listed.partition("Available versions:")[2].splitlines()[0]
    released = [Version(v) for v in re.findall(r"[^\s,]+", versions)]
    lowest = min((v for v in released if v >= bounds[0]), default=bounds[0])
    marker = f"; {requirement.marker}" if requirement.marker else ""
    print(f"{requirement.name}=={lowest}{marker}")  # constraints take no extras: psycopg[binary] as psycopg
EOF
echo "== pinned:" $(cut -d';' -f1 "$work/lowest.txt")
cd "$work/clone"
"$work/venv/bin/pip" install -q -e ".[dev]" -c "$work/lowest.txt"
echo "== installed:" $("$work/venv/bin/pip" list --format=freeze 2>/dev/null \
  | grep -iE "^($(cut -d'=' -f1 "$work/lowest.txt" | tr '\n' '|' | sed 's/|$//'))==" | tr '\n' ' ')
"$work/venv/bin/python" -m pytest -p no:cacheprovider "$@"
