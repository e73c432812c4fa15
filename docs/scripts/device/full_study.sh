#!/bin/bash
# On the device machine (after pack.sh here), a session's first call: the study's tuning at its own size.
#   run(command="bash docs/scripts/device/full_study.sh 8", carry=[".device"], timeout_s=580)
# Then at once, on the still-warm machine, gpu_checks.sh with what the session's 15 minutes have left (its header).
# $1: tune workers per search sharing the one GPU (default 8); STUDY_SECONDS: its time limit (default 540);
# STUDY_ARGS: more fer-study overrides (dry_run.sh's tiny size).
# Brings back study.json (when it finished), each search's trials as a CSV read from the study database (also when
# the limit stopped it: each trial's state, values and times) and the study's log.
set -uo pipefail
source docs/scripts/device/setup.sh || exit 1
workers=${1:-8}
read -ra extra <<< "${STUDY_ARGS:-}"
start=$(date +%s)
# The trials' host work is Python and kernel launches: one thread each keeps 16 processes off each other's cores.
OMP_NUM_THREADS=1 timeout -k 10 "${STUDY_SECONDS:-540}" fer-study "workers=$workers" "paths.log_dir=$RUNS" \
  "hydra.run.dir=$RUNS/study" poll_seconds=15 \
  'trial_args=["data.loader=resident","callbacks.progress_bar=null"]' \
  'final_args=["data.loader=resident","callbacks.progress_bar=null"]' \
  ${extra[@]+"${extra[@]}"} \
  2>&1 | tee "$OUT/study.log" | grep -E "Trials finished|Training the best|PrivateTest|error"
echo "fer-study with $workers workers per search: $(( $(date +%s) - start )) s" | tee -a "$OUT/study.log"
cp "$RUNS/study/study.json" "$OUT/" 2>/dev/null
[ -f "$RUNS/study/optuna/studies.db" ] && python3 - "$RUNS/study/optuna/studies.db" "$OUT" <<'PY'
import sys
import optuna
storage = f"sqlite:///{sys.argv[1]}"
for summary in optuna.get_all_study_summaries(storage):
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials_dataframe()
    trials.to_csv(f"{sys.argv[2]}/trials_{summary.study_name}.csv", index=False)
    print(summary.study_name, trials["state"].value_counts().to_dict())
PY
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv | tee -a "$OUT/study.log"
