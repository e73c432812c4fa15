#!/bin/bash
# On the device machine, as one call (after pack.sh here):
#   run(command="bash docs/scripts/device/gpu_checks.sh", carry=[".device"], timeout_s=590)
# Issue 18's speed figures: the study's ReLU net and VGG through fer-bench, DataLoader against batches resident on
# the GPU, batch sizes, torch.compile; then a reduced fer-study to time trials. Everything it measures goes to
# $OUT/bench.jsonl (one JSON object per fer-bench run) and $OUT/checks.log; the study's study.json beside them.
set -uo pipefail
source docs/scripts/device/setup.sh || exit 1
LOGS=$OUT/checks.log
RUNS=/tmp/runs
bench() {  # bench NAME overrides...: one fer-bench, its figures appended to bench.jsonl
  local name=$1; shift
  echo "== $name: $*" | tee -a "$LOGS"
  timeout 150 fer-bench "runtimes=[torch]" callbacks.progress_bar=null "paths.log_dir=$RUNS" "task_name=$name" \
    epochs=3 warmup_batches=20 data.num_workers=6 "$@" >> "$LOGS" 2>&1 || echo "!! $name failed ($?)" | tee -a "$LOGS"
  local json; json=$(ls -t "$RUNS/$name"/runs/*/bench.json 2>/dev/null | head -1)
  [ -n "$json" ] && python3 -c "import json,sys; d=json.load(open(sys.argv[1])); d['name']=sys.argv[2]; print(json.dumps(d))" \
    "$json" "$name" >> "$OUT/bench.jsonl"
}
bench relu_loader_128 data.loader=dataloader
bench relu_resident_128 data.loader=resident
bench relu_resident_512 data.loader=resident data.batch_size=512
bench relu_resident_2048 data.loader=resident data.batch_size=2048
bench relu_resident_2048_compiled data.loader=resident data.batch_size=2048 compile=true
bench vgg_loader_128 experiment=sota_short data.loader=dataloader
bench vgg_resident_512_compiled experiment=sota_short data.loader=resident data.batch_size=512 compile=true
python3 - "$OUT/bench.jsonl" <<'PY' | tee -a "$LOGS"
import json, sys
for line in open(sys.argv[1]):
    d = json.loads(line)
    print(f"{d['name']:32s} train {d['train_images_per_s']:9.0f} img/s  epoch {d['epoch_seconds']:6.2f} s  "
          f"mfu {d['mfu']:.3f} of {d['peak_tflops']:.0f} TFLOP/s  ({d['data_loader']}, {d['precision']})")
PY
# A reduced study (4 trials each, 3 epochs) to time trials several at a time on the one GPU.
start=$(date +%s)
timeout 240 fer-study workers=4 "paths.log_dir=$RUNS" "hydra.run.dir=$RUNS/study" \
  '+search_args.relu_random=["n_trials=4"]' '+search_args.leaky_hyperband=["n_trials=4"]' \
  'trial_args=["trainer.max_epochs=3","data.loader=resident"]' 'final_args=["trainer.max_epochs=5"]' \
  poll_seconds=10 >> "$LOGS" 2>&1 || echo "!! fer-study failed ($?)" | tee -a "$LOGS"
echo "fer-study: $(( $(date +%s) - start )) s" | tee -a "$LOGS"
cp "$RUNS/study/study.json" "$OUT/" 2>/dev/null
nvidia-smi --query-gpu=name,memory.used --format=csv | tee -a "$LOGS"
