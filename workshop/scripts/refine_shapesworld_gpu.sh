#!/usr/bin/env bash
# Refine the bundled ShapesWorld model's VAE, judge and captioner on one GPU; its UNet and CLIP are kept.
#
#   workshop/scripts/refine_shapesworld_gpu.sh [WORK_DIR] [INIT_DIR]
#
# INIT_DIR (default: the bundled model) gives the starting weights.  Two VAE variants
# train side by side from one pre-rendered scene pool, both in the latent space the
# UNet was trained on (same encoder outputs, same scaling factor):
#   dec/   the shipped VAE's decoder trained further on posterior means (`--decoder-only`);
#   wide/  a wider VAE (VAE_CHANNELS) taught the shipped VAE's latent space (`--teacher`).
# Beside them the captioner continues from its shipped weights (cap/).  Then each
# variant's judge continues with half of each batch read through that variant's VAE
# (`--through-vae`), as generated images and edits are.  Each variant is exported to
# <variant>/bundle (with the continued captioner) and measured by `shapesworld
# report` (report.json); pick the one to ship by its numbers.
set -euo pipefail

WORK=${1:-runs/shapesworld-refine}
INIT=${2:-$(python -c "from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR; print(BUNDLED_MODEL_DIR)")}
POOL_SIZE=${POOL_SIZE:-200000}
VAE_MIN=${VAE_MIN:-4.0}
JUDGE_MIN=${JUDGE_MIN:-1.3}
CAPTIONER_MIN=${CAPTIONER_MIN:-5.5}
VAE_CHANNELS=${VAE_CHANNELS:-32,64,128}
REPORT_SCENES=${REPORT_SCENES:-100}
VARIANTS=${VARIANTS:-dec wide}
source "$(dirname "$0")/shapesworld_gpu_common.sh"  # DEVICE, THREADS, CLI, BIG, start_pool, train_variant, keep, export_and_report

start_pool
train_variant captioner cap --init "$INIT" --batch-size 256 --lr 3e-4 --time-limit "$CAPTIONER_MIN" & pids=($!)
for v in $VARIANTS; do
  case $v in
    dec) vae=(--init "$INIT" --decoder-only --batch-size 256 --lr 5e-4) ;;
    wide) vae=(--teacher "$INIT/vae" --vae-channels "$VAE_CHANNELS" --batch-size 128 --lr 1e-3) ;;
    *) echo "unknown variant $v (dec, wide)" >&2; exit 2 ;;
  esac
  ( train_variant vae "$v" "${vae[@]}" --time-limit "$VAE_MIN" &&
    train_variant judge "$v" --init "$INIT" --through-vae "$WORK/$v/vae/final" --batch-size 256 --lr 5e-4 \
      --time-limit "$JUDGE_MIN" ) & pids+=($!)
done
wait "${pids[@]}" || true  # a failed variant only loses the comparison; its log says why
echo "trained after $(( $(date +%s) - t0 ))s"

for v in $VARIANTS; do
  keep "$v" unet clip captioner
  if [[ -d "$WORK/cap/captioner/final" ]]; then  # the continued captioner, when it finished
    rm -rf "$WORK/$v/captioner/final"; cp -r "$WORK/cap/captioner/final" "$WORK/$v/captioner/final"
  fi
  export_and_report "$v" &
done
wait || true
echo "reported after $(( $(date +%s) - t0 ))s"
