#!/usr/bin/env bash
# Train a new ShapesWorld UNet from scratch on the bundled model's text tower and latent space, on one GPU.
#
#   workshop/scripts/fresh_unet_shapesworld_gpu.sh [WORK_DIR] [INIT_DIR]
#
# Every UNet shipped so far continues v1's, which learnt blobs from a text tower that could not
# tell shapes apart (docs/shapesworld.md, "What would close it"). This one starts from random
# weights with INIT_DIR's (default: the bundled model's) CLIP text tower frozen and its VAE, so
# the editing code, the judge and the captioner apply unchanged. Variants, side by side from one
# pre-rendered scene pool:
#   s/  the fresh UNet (batch BATCH, peak lr LR, bf16 autocast);
#   c/  the bundled UNet continued the same way, for as long (the control: is a fresh start
#       worth more than more of the same?). VARIANTS=s trains s/ only, with the whole GPU.
# Each is exported to <variant>/bundle and measured by `shapesworld report` (report.json).
# First run (UNET_MIN=7 THREADS=4, one H200): c/ drew the captioned shape 99 % (one object) and 82 % (two),
# s/ 84 % and 27 %; c/ ships as v6 (docs/shapesworld.md, "v6").
set -euo pipefail

WORK=${1:-runs/shapesworld-fresh-unet}
INIT=${2:-$(python -c "from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR; print(BUNDLED_MODEL_DIR)")}
POOL_SIZE=${POOL_SIZE:-200000}
UNET_MIN=${UNET_MIN:-7.0}
BATCH=${BATCH:-1024}
LR=${LR:-1e-3}
REPORT_SCENES=${REPORT_SCENES:-100}
VARIANTS=${VARIANTS:-s c}
source "$(dirname "$0")/shapesworld_gpu_common.sh"  # DEVICE, THREADS, CLI, BIG, start_pool, train_variant, keep, report_variants

start_pool
pids=()
for v in $VARIANTS; do
  keep "$v" vae clip captioner judge
  init=()
  [[ $v == c ]] && init=(--init "$INIT")
  train_variant unet "$v" --batch-size "$BATCH" --lr "$LR" --bf16 --time-limit "$UNET_MIN" "${init[@]}" & pids+=($!)
done
report_variants
