#!/bin/bash
# fer-bench on an older commit and on this checkout, alternated, so that both see the same spells of a noisy host.
#
#   FER2013_CSV=... bash docs/scripts/bench_before_after.sh <commit> [rounds] [fer-bench overrides]
#   e.g. bash docs/scripts/bench_before_after.sh 7b1c6e0 2 keras=true "runtimes=[openvino]"
#
# The older commit is checked out in a temporary worktree (older_commit.sh) and run from there (its own package and
# configs, this checkout's data cache); each run prints fer-bench's key=value lines under a header naming the side
# and commit.
set -euo pipefail
before=${1:?usage: bench_before_after.sh <commit> [rounds] [fer-bench overrides]}
rounds=${2:-2}
shift $(( $# < 2 ? $# : 2 ))
source "$(dirname "$0")/older_commit.sh"
older_commit "$before"
log=$(mktemp)
remove_on_exit+=("$log")
for round in $(seq "$rounds"); do
  for dir in "$worktree" "$here"; do
    echo "=== round $round, $( [ "$dir" = "$here" ] && echo after || echo before ) ($(git -C "$dir" rev-parse --short HEAD)), $(date -u +%H:%M:%S) UTC"
    if ! (cd "$dir" && PYTHONPATH="$dir" python -c "from fer_lightning.cli.bench import main; main()" \
          paths.cache_dir="$here/outputs/cache" callbacks.progress_bar=null "$@" > "$log" 2>&1); then
      tail -n 5 "$log" >&2  # an override the older commit does not know, say
      exit 1
    fi
    grep -E '^[a-z_0-9]+=' "$log"
  done
done
