#!/usr/bin/env bash
# Wall time of one fer-tune study run by N workers at once on this machine (docs/results.md, "More than one
# process"). Usage: FER2013_CSV=... bash docs/scripts/tuning_workers.sh WORKERS [THREADS_PER_WORKER]
set -euo pipefail
workers=${1:?number of workers}
[ -n "${2:-}" ] && export OMP_NUM_THREADS=$2
out=$(mktemp -d)
db="sqlite:///$out/study.db"
args='train_args=["+trainer.limit_train_batches=40","trainer.max_epochs=2","callbacks.progress_bar=null"]'
fer-tune search=relu_random n_trials=0 storage="$db" paths.log_dir="$out" "$args" > /dev/null 2>&1  # the study
start=$(date +%s.%N)
for w in $(seq "$workers"); do
  fer-tune search=relu_random n_trials=6 storage="$db" paths.log_dir="$out" "$args" > "$out/worker_$w.log" 2>&1 &
done
wait
end=$(date +%s.%N)
python - "$db" "$(echo "$end - $start" | bc)" <<'PY'
import sys

import numpy as np
import optuna

trials = [t for t in optuna.load_study(study_name="relu_random", storage=sys.argv[1]).get_trials()
          if t.datetime_complete]
own = [(t.datetime_complete - t.datetime_start).total_seconds() for t in trials]
wall = float(sys.argv[2])
print(f"wall {wall:.1f} s, {len(trials)} trials finished, {wall / len(trials):.1f} s of wall each; one trial's "
      f"own time {np.mean(own):.1f} s ({min(own):.1f}-{max(own):.1f}); workers "
      f"{len({t.user_attrs['worker'] for t in trials})}")
PY
echo "logs and study in $out"
