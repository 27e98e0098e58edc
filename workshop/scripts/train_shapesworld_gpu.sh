#!/usr/bin/env bash
# Train the whole ShapesWorld family on one GPU in about eight minutes, then export it.
#
#   workshop/scripts/train_shapesworld_gpu.sh [WORK_DIR] [BUNDLE_DIR]
#
# The models are small, so one GPU runs several trainings side by side; rendering
# would starve it, so batches come from a pre-rendered scene pool.  Phases:
#   1. pool: 200k scenes (pairs of shape twins), all CPU cores;
#   2. VAE, judge, CLIP (ViT patch 8 and patch 4) and captioner (patch 8 and 4)
#      in parallel; the better CLIP by zero-shot shape accuracy is kept;
#   3. the UNet, on the kept CLIP's text tower and the VAE's latents, while the
#      captioners go on; the better captioner by shape words is kept;
#   4. export to BUNDLE_DIR (default: the package's bundled model folder).
# Budgets (minutes of training per model) can be changed with the variables below.
set -euo pipefail

WORK=${1:-runs/shapesworld-gpu}
BUNDLE=${2:-}
POOL_SIZE=${POOL_SIZE:-200000}
PHASE2_MIN=${PHASE2_MIN:-1.7}     # VAE and CLIP (the UNet waits for them)
JUDGE_MIN=${JUDGE_MIN:-1.5}
UNET_MIN=${UNET_MIN:-5.0}
CAPTIONER_MIN=${CAPTIONER_MIN:-7.2}
source "$(dirname "$0")/shapesworld_gpu_common.sh"  # DEVICE, THREADS, CLI, BIG, start_pool

train() {  # train NAME SUBDIR LOGNAME [options...]
  local name=$1 dir=$2 log=$3; shift 3
  "${CLI[@]}" train "$name" --device "$DEVICE" --threads "$THREADS" --work-dir "$dir" --pool "$WORK/pool" \
    --save-every 2000 "$@" >"$WORK/logs/$log.out" 2>"$WORK/logs/$log.err"
}
best() {  # best METRIC DIR... : the dir whose <dir>/<model>/train.log has the highest last eval METRIC
  python - "$@" <<'EOF'
import json, sys
from pathlib import Path
metric, dirs = sys.argv[1], sys.argv[2:]
def score(d):
    lines = [l for f in Path(d).glob("*/train.log") for l in f.read_text().splitlines() if " eval " in l]
    return json.loads(lines[-1].split(" eval ", 1)[1].split(" scaling_factor")[0])[metric] if lines else -1
print(max(dirs, key=score))
for d in dirs:
    print(f"{d}: {metric} = {score(d)}", file=sys.stderr)
EOF
}

start_pool

train vae "$WORK" vae --steps $BIG --batch-size 64 --lr 1e-3 --time-limit "$PHASE2_MIN" & vae=$!
train clip "$WORK/clip-p8" clip-p8 --steps $BIG --batch-size 512 --lr 5e-4 --time-limit "$PHASE2_MIN" --patch-size 8 & clip8=$!
train clip "$WORK/clip-p4" clip-p4 --steps $BIG --batch-size 512 --lr 5e-4 --time-limit "$PHASE2_MIN" --patch-size 4 & clip4=$!
train judge "$WORK" judge --steps $BIG --batch-size 256 --lr 2e-3 --time-limit "$JUDGE_MIN" & judge=$!
train captioner "$WORK/cap-p8" cap-p8 --steps $BIG --batch-size 256 --lr 5e-4 --time-limit "$CAPTIONER_MIN" --patch-size 8 & cap8=$!
train captioner "$WORK/cap-p4" cap-p4 --steps $BIG --batch-size 256 --lr 5e-4 --time-limit "$CAPTIONER_MIN" --patch-size 4 & cap4=$!
wait $vae $clip8 $clip4 || true  # a failed variant only loses the comparison; its log says why
echo "VAE and CLIP done after $(( $(date +%s) - t0 ))s"

clip_best=$(best shape_acc "$WORK/clip-p8" "$WORK/clip-p4")
rm -rf "$WORK/clip" && cp -r "$clip_best/clip" "$WORK/clip"
echo "kept CLIP from $clip_best"

train unet "$WORK" unet --steps $BIG --batch-size 256 --lr 5e-4 --time-limit "$UNET_MIN" & unet=$!
wait $judge $unet $cap8 $cap4 || true
echo "all trained after $(( $(date +%s) - t0 ))s"

cap_best=$(best shape_acc "$WORK/cap-p8" "$WORK/cap-p4")
rm -rf "$WORK/captioner" && cp -r "$cap_best/captioner" "$WORK/captioner"
echo "kept captioner from $cap_best"

"${CLI[@]}" export --work-dir "$WORK" ${BUNDLE:+--out "$BUNDLE"}
echo "exported after $(( $(date +%s) - t0 ))s"
