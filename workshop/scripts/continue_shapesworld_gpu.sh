#!/usr/bin/env bash
# Continue the bundled ShapesWorld model on one GPU, two ways side by side, and report both.
#
#   workshop/scripts/continue_shapesworld_gpu.sh [WORK_DIR] [INIT_DIR]
#
# INIT_DIR (default: the bundled model) gives the starting weights; its VAE, judge
# and captioner are kept as they are.  Two variants train at the same time from
# one pre-rendered scene pool:
#   a/  the CLIP with the attribute head (`--attribute-weight`), then the UNet on
#       its frozen text tower;
#   j/  the UNet and the CLIP jointly (`--joint-clip`): the text tower learns what
#       the UNet needs while the attribute head and the contrastive loss keep it
#       aligned with the vision tower.
# Each is exported to <variant>/bundle and measured by `shapesworld report`
# (report.json); pick the one to ship by its numbers.  VARIANTS=j (or a) trains
# one of them only, with the whole GPU.  A joint variant may name its batch size,
# peak learning rate and bf16 autocast: VARIANTS="j j_1024_1e-3_bf16" trains the
# default j/ and, beside it, j_1024_1e-3_bf16/ at batch 1024, lr 1e-3, in bf16.
set -euo pipefail

WORK=${1:-runs/shapesworld-continue}
INIT=${2:-$(python -c "from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR; print(BUNDLED_MODEL_DIR)")}
POOL_SIZE=${POOL_SIZE:-200000}
CLIP_MIN=${CLIP_MIN:-1.6}          # a/: CLIP, then the UNet
UNET_MIN=${UNET_MIN:-3.0}
JOINT_MIN=${JOINT_MIN:-4.7}        # j/: UNet + CLIP together
JOINT_WEIGHT=${JOINT_WEIGHT:-0.05} # weight of the CLIP loss next to the denoising loss
REPORT_SCENES=${REPORT_SCENES:-100}
VARIANTS=${VARIANTS:-a j}          # which of the two to train
source "$(dirname "$0")/shapesworld_gpu_common.sh"  # DEVICE, THREADS, CLI, BIG, start_pool, train_variant, keep, report_variants

start_pool
pids=()
if [[ " $VARIANTS " == *" a "* ]]; then
  keep a vae captioner judge
  ( train_variant clip a --batch-size 512 --lr 5e-4 --time-limit "$CLIP_MIN" --init "$INIT" --attribute-weight 1 &&
    train_variant unet a --batch-size 256 --lr 5e-4 --time-limit "$UNET_MIN" --init "$INIT" ) & pids+=($!)
fi
for v in $VARIANTS; do
  [[ $v == j* ]] || continue
  IFS=_ read -r _ batch lr bf16 <<<"$v"
  keep "$v" vae captioner judge clip
  train_variant unet "$v" --batch-size "${batch:-256}" --lr "${lr:-5e-4}" ${bf16:+--bf16} --time-limit "$JOINT_MIN" --init "$INIT" \
    --joint-clip "$JOINT_WEIGHT" --attribute-weight 1 & pids+=($!)
done
report_variants
