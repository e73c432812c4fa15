#!/bin/bash
# Here, on the CPU, before a device session: its two calls (full_study.sh, then gpu_checks.sh) end to end at a
# tiny size (batches of 32), with the packages the device's image lacks made unimportable (absent/sitecustomize.py)
# and nvidia-smi stubbed, so that the session's GPU minutes are not spent on a missing import or a typo. setup.sh
# is swapped for this machine's environment (the carried wheels are for the device's Python 3.12; pack.sh fetches
# them). Needs FER2013_CSV; about 20 minutes on 2 cores; its $OUT is /tmp/device_dry_run/out. BENCH_SECONDS=0
# skips the fer-bench rows (the study alone: 7 minutes).
# `dry_run.sh sota`: sota_session.sh instead, its recipes composed (fer-train --cfg job) but run as the study's small
# nets for two minutes of fitting (VGG's passes over every face would take the CPU an hour), to check the call's
# plumbing (10 minutes here); then student_session.sh with the teacher file that call wrote.
set -euo pipefail
cd "$(dirname "$0")/../../.."
work=/tmp/device_dry_run
rm -rf "$work" && mkdir -p "$work/out" "$work/bin" "$work/tree"
git ls-files -z | xargs -0 cp --parents -t "$work/tree"
cp -r docs/scripts/device "$work/tree/docs/scripts/"  # the kit as it is now, committed or not
ln -sfn ../conf "$work/tree/fer_lightning/conf"
printf '#!/bin/sh\necho "nvidia-smi: none here (dry run)"\n' > "$work/bin/nvidia-smi" && chmod +x "$work/bin/nvidia-smi"
cat > "$work/tree/docs/scripts/device/setup.sh" <<SH
export PYTHONPATH=$work/tree/docs/scripts/device/absent:$work/tree PATH=$work/bin:\$PATH PYTHONUNBUFFERED=1
export FER2013_CSV=${FER2013_CSV:?set FER2013_CSV to the real fer2013.csv.gz} RUNS=$work/runs
mkdir -p $work/runs
SH
tiny='"+trainer.limit_train_batches=5","+trainer.limit_val_batches=2","callbacks.progress_bar=null"'
searches='+search_args.relu_random=["n_trials=2"] +search_args.leaky_hyperband=["n_trials=2"]'
runs="trial_args=[\"data.loader=resident\",\"trainer.max_epochs=2\",$tiny]"
runs+=" final_args=[\"data.loader=resident\",\"trainer.max_epochs=1\",$tiny]"
cd "$work/tree"
if [ "${1:-}" = sota ]; then
  while read -r name overrides; do
    read -ra args <<< "$overrides"
    PYTHONPATH=$work/tree fer-train "${args[@]}" fit_minutes=1 --cfg job > /dev/null && echo "$name composes"
  done < docs/scripts/device/sota_recipes.txt
  OUT=$work/out SESSION_SECONDS=600 RESERVE_SECONDS=450 TRAIN_ARGS="+trainer.limit_train_batches=5 \
    +trainer.limit_val_batches=2" RECIPES="small_relu model=relu seed=95
small_leaky model=leaky experiment=best seed=96" bash docs/scripts/device/sota_session.sh
  TEACHER=$(ls "$work"/runs/stack/runs/*/teacher_train.npz | tail -1) OUT=$work/out SESSION_SECONDS=300 \
    RESERVE_SECONDS=180 TRAIN_ARGS="+trainer.limit_train_batches=5 +trainer.limit_val_batches=2" \
    bash docs/scripts/device/student_session.sh
  ls -l "$work/out"
  exit
fi
OUT=$work/out STUDY_SECONDS=1200 STUDY_ARGS="$searches $runs stack_args=[\"meta=soft_vote\"]" \
  bash docs/scripts/device/full_study.sh 2
[ "${BENCH_SECONDS:-1500}" = 0 ] || OUT=$work/out DEADLINE=$(( $(date +%s) + ${BENCH_SECONDS:-1500} )) \
  BENCH_ARGS="epochs=1 warmup_batches=3 profile_batches=1 data.batch_size=32 +trainer.limit_train_batches=6 \
  +trainer.limit_val_batches=2 infer_batch=32" bash docs/scripts/device/gpu_checks.sh
ls -l "$work/out"
