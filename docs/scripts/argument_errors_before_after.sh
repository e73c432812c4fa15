#!/bin/bash
# How long each command takes to report a bad argument, on an older commit and on this checkout, alternated.
#
#   bash docs/scripts/argument_errors_before_after.sh <commit> [rounds]
#
# Each row is one command given something that is not there (a run dir, a search key, a checkpoint, a model, a
# CSV); it prints the side, the command's last stderr line and its wall seconds. The older commit runs from a
# temporary worktree, as in bench_before_after.sh.
set -euo pipefail
before=${1:?usage: argument_errors_before_after.sh <commit> [rounds]}
rounds=${2:-3}
here=$(git rev-parse --show-toplevel)
worktree=$(mktemp -d) scratch=$(mktemp -d)
trap 'git -C "$here" worktree remove --force "$worktree"; rm -rf "$scratch"' EXIT
git -C "$here" worktree add --detach --quiet "$worktree" "$before"
ln -s ../conf "$worktree/fer_lightning/conf"
mkdir "$scratch/empty"
commands=(
  "stack runs=[$scratch/missing]"
  "tune +space={model.nope:{choices:[1]}}"
  "predict ckpt=$scratch/missing.ckpt inputs=$scratch/empty"
  "predict inputs=$scratch/empty"
  "analyze csv_path=$scratch/nowhere.csv"
)
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
