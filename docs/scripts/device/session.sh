#!/bin/bash
# A device session's one call, after pack.sh here: the issue-18 figures that fit 15 minutes of device time (the
# machine's start, then this call's 10 minutes):
#   run(command="bash docs/scripts/device/session.sh", carry=[".device"], timeout_s=600)
# fer-bench's rows first, held to BENCH_SECONDS (200) (gpu_checks.sh), then the full-size fer-study in the time left
# before SESSION_SECONDS (580) (full_study.sh; $1 workers per search, default 8). $OUT gets both scripts' files
# (six at most).
set -uo pipefail
start=$(date +%s)
DEADLINE=$(( start + ${BENCH_SECONDS:-200} )) bash docs/scripts/device/gpu_checks.sh
STUDY_SECONDS=$(( start + ${SESSION_SECONDS:-580} - $(date +%s) )) bash docs/scripts/device/full_study.sh "${1:-8}"
