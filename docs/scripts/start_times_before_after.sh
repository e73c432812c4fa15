#!/bin/bash
# How long commands take to start and answer, on an older commit and on this checkout, alternated.
#
#   [CKPT=<a train.py checkpoint>] bash docs/scripts/start_times_before_after.sh <commit> [rounds]
#
# Each row is one command given something that is not there (a run dir, a search key, a checkpoint, a model, a
# CSV; fer-train's checkpoint row only with FER2013_CSV set); with CKPT set, also fer-predict on one 48x48 face with
# that checkpoint (the whole command: imports, the checkpoint, OpenVINO's compile, the table). It prints the side,
# the command's last line and its wall seconds. The older commit runs from a temporary worktree (older_commit.sh).
set -euo pipefail
before=${1:?usage: [CKPT=<checkpoint>] start_times_before_after.sh <commit> [rounds]}
rounds=${2:-3}
source "$(dirname "$0")/older_commit.sh"
older_commit "$before"
scratch=$(mktemp -d)
remove_on_exit+=("$scratch")
mkdir "$scratch/empty"
commands=(
  "stack runs=[$scratch/missing]"
  "tune +space={model.nope:{choices:[1]}}"
  "predict ckpt=$scratch/missing.ckpt inputs=$scratch/empty"
  "predict inputs=$scratch/empty"
  "analyze csv_path=$scratch/nowhere.csv"
  "export ckpt=$scratch/missing.ckpt"
)
if [ -n "${FER2013_CSV:-}" ]; then  # fer-train checks its CSV first: this row needs one that is there
  commands+=("train ckpt_path=$scratch/missing.ckpt")
fi
if [ -n "${CKPT:-}" ]; then
  python -c "import sys, cv2, numpy; cv2.imwrite(sys.argv[1], numpy.full((48, 48), 128, numpy.uint8))" "$scratch/face.png"
  commands+=("predict ckpt=$(realpath "$CKPT") inputs=$scratch/face.png")
fi
for round in $(seq "$rounds"); do
  for command in "${commands[@]}"; do
    read -ra args <<< "$command"
    for dir in "$worktree" "$here"; do
      side=$( [ "$dir" = "$here" ] && echo "after " || echo before)
      start=$(date +%s.%N)
      last=$(cd "$scratch" && PYTHONPATH="$dir" python -c "import sys; from fer_lightning.cli.${args[0]} import main; \
sys.argv[0] = 'fer-${args[0]}'; main()" "${args[@]:1}" "paths.log_dir=$scratch/outputs" 2>&1 | tail -1 || true)
      printf '%s %-7s %5.1f s  %s\n' "$side" "${args[0]}" "$(echo "$(date +%s.%N) - $start" | bc)" "${last:0:90}"
    done
  done
done
