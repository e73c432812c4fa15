#!/bin/bash
# On the device machine (after pack.sh here), alone or as session.sh's first part:
#   run(command="bash docs/scripts/device/gpu_checks.sh", carry=[".device"], timeout_s=590)
# Issue 18's speed figures: the study's ReLU net and VGG through fer-bench, DataLoader against batches resident on
# the GPU, batch sizes, torch.compile with and without CUDA graphs. Each fer-bench's figures go to $OUT/bench.jsonl
# (one JSON object per run), its output to $OUT/checks.log. DEADLINE (epoch seconds, default now + 560 s): a row
# that would start with less than 30 s left is skipped, so the script ends in time for what follows it.
# BENCH_ARGS: more fer-bench overrides for every row (dry_run.sh's tiny size).
set -uo pipefail
source docs/scripts/device/setup.sh || exit 1
DEADLINE=${DEADLINE:-$(( $(date +%s) + 560 ))}
LOGS=$OUT/checks.log
RUNS=${RUNS:-/tmp/runs}
read -ra extra <<< "${BENCH_ARGS:-}"
bench() {  # bench NAME overrides...: one fer-bench, its figures appended to bench.jsonl
  local name=$1; shift
  local left=$(( DEADLINE - $(date +%s) ))
  if (( left < 30 )); then echo "!! $name skipped: ${left} s left before the deadline" | tee -a "$LOGS"; return; fi
  echo "== $name: $*" | tee -a "$LOGS"
  timeout $(( left < 150 ? left : 150 )) fer-bench "runtimes=[torch]" callbacks.progress_bar=null \
    "paths.log_dir=$RUNS" "task_name=$name" epochs=3 warmup_batches=20 data.num_workers=6 "$@" \
    ${extra[@]+"${extra[@]}"} >> "$LOGS" 2>&1 || echo "!! $name failed ($?)" | tee -a "$LOGS"
  local json; json=$(ls -t "$RUNS/$name"/runs/*/bench.json 2>/dev/null | head -1)
  [ -n "$json" ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['name']=sys.argv[2]; print(json.dumps(d))" \
    "$json" "$name" >> "$OUT/bench.jsonl"
}
# Most telling first: the rows at the end are the ones a tight deadline drops.
bench relu_loader_128 data.loader=dataloader
bench relu_resident_2048 data.loader=resident data.batch_size=2048
bench vgg_loader_128 experiment=sota_short data.loader=dataloader
bench vgg_resident_512_compiled experiment=sota_short data.loader=resident data.batch_size=512 compile=true
bench relu_resident_2048_compiled data.loader=resident data.batch_size=2048 compile=true
bench relu_resident_2048_cudagraphs data.loader=resident data.batch_size=2048 compile=reduce-overhead
bench relu_resident_128 data.loader=resident
bench relu_resident_512 data.loader=resident data.batch_size=512
[ -f "$OUT/bench.jsonl" ] && python3 - "$OUT/bench.jsonl" <<'PY' | tee -a "$LOGS"
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    print(f"{d['name']:32s} train {d['train_images_per_s']:9.0f} img/s  epoch {d['epoch_seconds']:6.2f} s  "
          f"mfu {d['mfu']:.3f} of {d['peak_tflops']:.3g} TFLOP/s  ({d['data_loader']}, {d['precision']})")
PY
nvidia-smi --query-gpu=name,memory.used --format=csv | tee -a "$LOGS"
