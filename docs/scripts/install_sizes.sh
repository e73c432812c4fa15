#!/bin/bash
# What each install of the README costs on a fresh machine: a new venv per install, pip's cache off, a clone of
# this checkout's HEAD; prints the seconds and the venv's size for `pip install -e .` (training and predicting)
# and `pip install -e ".[dev]"` (the tests' tools, and TensorFlow for the Keras yardstick).
#   bash docs/scripts/install_sizes.sh   (a few minutes; the venvs live in a temp dir, removed at the end)
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/clone"
for extra in "" "[dev]"; do
  venv="$work/venv${extra:+_dev}"
  python3 -m venv "$venv"
  start=$(date +%s)
  (cd "$work/clone" && "$venv/bin/pip" install -q --no-cache-dir -e ".$extra" > "$venv.log" 2>&1) \
    || { tail -20 "$venv.log"; exit 1; }
  echo "pip install -e \".$extra\": $(( $(date +%s) - start )) s, $(du -sm "$venv" | cut -f1) MB"
done
