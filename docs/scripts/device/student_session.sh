#!/bin/bash
# Issue 19's second call, at once after sota_session.sh (whose call leaves about 4 of the session's 15 device minutes):
# a student of that call's ensemble (experiment=distill: the study's ReLU net) trained on the GPU, where the CPU takes
# one to two hours. Before it, here, with the first call's files:
#   mkdir -p outputs/sota && tar xzf <files_at>/sota_runs.tar.gz -C outputs/sota
#   cp outputs/sota/stack/runs/*/teacher_train.npz .device/
#   run(command="bash docs/scripts/device/student_session.sh", carry=[".device"], timeout_s=220)
# Batches of 512 at a peak rate of 4e-3 (batch 128's 2e-3 scaled by the square root of 4, which kept batch 128's
# PublicTest accuracy for this net on the CPU over 15 epochs and over 100: docs/results.md), for up to 100 epochs (on
# the CPU, 100 epochs of `best` beat 60 and 40 on PublicTest; without a teacher, 70.88% PrivateTest at either batch);
# fit_minutes caps them at what the call has. Back in $OUT: student.log and student_run.tar.gz (the run dir without
# its checkpoints). SESSION_SECONDS: the call's budget (default 200); TEACHER: the teacher file (default
# .device/teacher_train.npz); TRAIN_ARGS: more overrides (dry_run.sh's tiny size).
set -uo pipefail
start=$(date +%s)
source docs/scripts/device/setup.sh || exit 1
read -ra extra <<< "${TRAIN_ARGS:-}"
teacher=$(realpath -e "${TEACHER:-.device/teacher_train.npz}") \
  || { echo "no teacher file: unpack sota_session.sh's archive and copy its teacher_train.npz first" | tee "$OUT/student.log"; exit 1; }

# On the machine sota_session.sh used, the CSV's cache and the copy audit are in $RUNS/cache already; on a fresh one
# fer-analyze computes the audit beside the training, as there, so the run's report does not wait for it.
fer-analyze "paths.log_dir=$RUNS" > "$OUT/analyze.log" 2>&1 &
analyze=$!

deadline=$(( start + ${SESSION_SECONDS:-200} ))
# Kept back from the fitting: the process start, the PrivateTest pass with its TTA and the archive.
minutes=$(python3 -c "print(round(max($(( deadline - $(date +%s) - ${RESERVE_SECONDS:-90} )), 30) / 60, 2))")
echo "== the student, fit_minutes=$minutes, taught by $teacher" | tee "$OUT/student.log"
timeout -k 10 $(( deadline - $(date +%s) - 15 )) fer-train experiment=distill "data.teacher=$teacher" \
  data.batch_size=512 model.scheduler.max_lr=4e-3 trainer.max_epochs=100 "fit_minutes=$minutes" task_name=student \
  "paths.log_dir=$RUNS" callbacks.progress_bar=null ${extra[@]+"${extra[@]}"} > "$RUNS/student.log" 2>&1
grep -E "fit_minutes=|PrivateTest accuracy|error" "$RUNS/student.log" | tee -a "$OUT/student.log"
kill "$analyze" 2>/dev/null  # its audit, if the run needed it, is in the cache by now
cd "$RUNS" && tar czf "$OUT/student_run.tar.gz" --exclude=checkpoints student.log $(ls -d student/runs 2>/dev/null)
echo "== $(( $(date +%s) - start )) s in all" | tee -a "$OUT/student.log"
