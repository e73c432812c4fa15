#!/bin/bash
# Issue 19's first call on a lent GPU (after pack.sh here), for a session that has not spent its minutes on issue 18:
#   run(command="bash docs/scripts/device/sota_session.sh", carry=[".device"], timeout_s=600)
# Several from-scratch nets trained side by side on the one GPU, each for as many epochs as fit the time left
# (fit_minutes: the one-cycle schedule sized to them), then fer-stack over the ones that finished with teacher=true:
# soft voting's probabilities for every Training face, for students of this ensemble (student_session.sh, the
# second call, at once after this one; or on the CPU). Back in $OUT/sota_runs.tar.gz: every run dir without its
# checkpoints (summary, logits, report, curves, train.log) and the stack's dir with teacher_train.npz; unpack it under
# outputs/ and fer-stack the runs again there with every meta-learner (on the device only soft voting is fitted: the
# others' CV is minutes of CPU, not GPU, work).
# RECIPES (default: sota_recipes.txt): one run per line, its name, then its fer-train overrides with no spaces
# inside one; SESSION_SECONDS: the call's whole budget (default 570); TRAIN_ARGS: more overrides for every run
# (dry_run.sh's tiny size).
set -uo pipefail
start=$(date +%s)
source docs/scripts/device/setup.sh || exit 1
read -ra extra <<< "${TRAIN_ARGS:-}"
RECIPES=${RECIPES:-$(cat docs/scripts/device/sota_recipes.txt)}

# fer-analyze audits the data while the runs train; it and the runs take turns on locks beside the data cache,
# so the CSV is parsed once and the audit computed once, and each run's report reads the audit's cache.
fer-analyze "paths.log_dir=$RUNS" > "$OUT/analyze.log" 2>&1 &

# Kept back from the fitting: process starts, the PrivateTest pass with its TTA, the teacher pass and the archive.
deadline=$(( start + ${SESSION_SECONDS:-570} ))
fit_seconds=$(( deadline - $(date +%s) - ${RESERVE_SECONDS:-150} ))
minutes=$(python3 -c "print(round(max($fit_seconds, 30) / 60, 2))")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}  # the GPU does the arithmetic; the runs share 16 cores for the rest
echo "== $(wc -l <<< "$RECIPES") runs side by side, fit_minutes=$minutes each" | tee "$OUT/sota.log"
while read -r name overrides; do
  [ -z "$name" ] && continue
  read -ra args <<< "$overrides"
  timeout -k 10 $(( deadline - $(date +%s) - 45 )) fer-train "${args[@]}" trainer.max_epochs=300 \
    "fit_minutes=$minutes" "task_name=$name" "paths.log_dir=$RUNS" callbacks.progress_bar=null \
    ${extra[@]+"${extra[@]}"} > "$RUNS/$name.log" 2>&1 &
done <<< "$RECIPES"
wait
finished=()
while read -r name _; do
  [ -z "$name" ] && continue
  grep -E "fit_minutes=|PrivateTest accuracy|error" "$RUNS/$name.log" | sed "s/^/$name: /" | tee -a "$OUT/sota.log"
  run=$(ls -d "$RUNS/$name"/runs/*/ 2>/dev/null | tail -1)
  [ -n "$run" ] && [ -f "$run/logits_test.npz" ] && finished+=("${run%/}")
done <<< "$RECIPES"
echo "== trained in $(( $(date +%s) - start )) s since the call began; ${#finished[@]} finished" | tee -a "$OUT/sota.log"

if (( ${#finished[@]} > 0 )); then
  list=$(IFS=,; echo "${finished[*]}")
  # teacher_runtime=torch: what auto picks on the GPU, and the device's image has no OpenVINO, so dry_run.sh's CPU
  # (where auto would pick a graph runtime) does as the device does.
  timeout -k 10 $(( deadline - $(date +%s) - 10 )) fer-stack "runs=[$list]" meta=soft_vote compare=null teacher=true \
    teacher_runtime=torch "paths.log_dir=$RUNS" > "$RUNS/stack.log" 2>&1
  grep -E "CV accuracy|stack: PrivateTest|Wrote|error" "$RUNS/stack.log" | tee -a "$OUT/sota.log"
fi
cd "$RUNS" && tar czf "$OUT/sota_runs.tar.gz" --exclude=checkpoints --exclude=cache ./*.log \
  $(ls -d ./*/runs 2>/dev/null)
echo "== $(( $(date +%s) - start )) s in all" | tee -a "$OUT/sota.log"
nvidia-smi --query-gpu=name,memory.used --format=csv | tee -a "$OUT/sota.log"
