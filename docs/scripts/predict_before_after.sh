#!/bin/bash
# fer-predict on an older commit and on this checkout, alternated, so that both see the same spells of a noisy host.
#
#   bash docs/scripts/predict_before_after.sh <commit> [rounds] <fer-predict arguments>
#   e.g. bash docs/scripts/predict_before_after.sh 7807ab5 2 ckpt=$PWD/<run>/checkpoints/last.ckpt inputs=/tmp/clip.mp4
#
# Each run prints its side and commit, when it started, wall and CPU seconds, peak memory, and its predictions.csv's
# rows and digest; the run dirs stay under the folder named on the first line (before_<round>/, after_<round>/), to
# compare their rows. Paths in the arguments must be absolute: the runs start in that folder. The older commit runs from a
# temporary worktree (older_commit.sh).
set -euo pipefail
before=${1:?usage: predict_before_after.sh <commit> [rounds] <fer-predict arguments>}
rounds=${2:-2}
shift $(( $# < 2 ? $# : 2 ))
source "$(dirname "$0")/older_commit.sh"
older_commit "$before"
runs=$(mktemp -d)  # kept
echo "run dirs under $runs"
for round in $(seq "$rounds"); do
  for dir in "$worktree" "$here"; do
    side=$( [ "$dir" = "$here" ] && echo after || echo before)
    out="$runs/${side}_$round" started=$(date -u +%H:%M:%S)
    if ! (cd "$runs" && PYTHONPATH="$dir" /usr/bin/time -o "$out.time" -f "%e %U %S %M" python -c \
          "import sys; from fer_lightning.cli.predict import main; sys.argv[0] = 'fer-predict'; main()" \
          "$@" progress=false show=0 "paths.output_dir=$out" > "$out.log" 2>&1); then
      tail -n 5 "$out.log" >&2
      exit 1
    fi
    read -r wall user system peak_kb < "$out.time"
    printf '%s (%s) %s UTC: %.1f s wall, %.1f s CPU, %d MB; %d rows, md5 %s\n' "$side" \
      "$(git -C "$dir" rev-parse --short HEAD)" "$started" "$wall" "$(echo "$user + $system" | bc)" \
      $(( peak_kb / 1024 )) $(( $(wc -l < "$out/predictions.csv") - 1 )) "$(md5sum < "$out/predictions.csv" | cut -c1-12)"
  done
done
