#!/bin/bash
# On the device machine, as one call (after pack.sh here), the study's tuning at its own size:
#   run(command="bash docs/scripts/device/full_study.sh 8", carry=[".device"], timeout_s=600)
# $1: tune workers per search sharing the one GPU (default 8). Brings back study.json, each search's trials.csv
# and the study's log; fer-study's own progress lines say how far it got if the limit stops it.
set -uo pipefail
source docs/scripts/device/setup.sh || exit 1
workers=${1:-8}
start=$(date +%s)
timeout 570 fer-study "workers=$workers" paths.log_dir=/tmp/runs hydra.run.dir=/tmp/runs/study poll_seconds=15 \
  'trial_args=["data.loader=resident","callbacks.progress_bar=null"]' 'final_args=["data.loader=resident"]' \
  2>&1 | tee "$OUT/study.log" | grep -E "Trials finished|Training the best|PrivateTest|error" 
echo "fer-study with $workers workers per search: $(( $(date +%s) - start )) s" | tee -a "$OUT/study.log"
cp /tmp/runs/study/study.json "$OUT/" 2>/dev/null
for name in relu_random leaky_hyperband; do cp "/tmp/runs/study/optuna/$name/trials.csv" "$OUT/trials_$name.csv" 2>/dev/null; done
nvidia-smi --query-gpu=name,memory.used,utilization.gpu --format=csv | tee -a "$OUT/study.log"
