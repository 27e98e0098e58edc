#!/usr/bin/env bash
# One GPU run (an H100 is the target) of `bench speed`, each implementation in its own fresh process:
#   - SDXL base architecture with random weights ('sdxl': 2.57 B UNet params, both text encoders) at 1024 px, fp16,
#     50 steps: pix2pix-zero (inversion + edit, peak memory) against diffusers' LEditsPPPipelineStableDiffusionXL
#     on the same components and image;
#   - SD 1.x architecture with random weights ('sd-1.x') at 512 px, fp16, 50 steps: pix2pix-zero against diffusers'
#     StableDiffusionPix2PixZeroPipeline.
# Timings do not depend on weight values. The random models are built once on the CPU into $CACHE (about 13 GB for
# SDXL in float32; minutes), then loaded in fp16. Both implementations run a short untimed warm-up first on a GPU,
# and --repeat keeps the fastest of REPEAT timed runs per stage.
#
#   bash workshop/scripts/gpu_speed_sdxl.sh            # writes $OUT/report.md, results.json, report.png
#
# Targets (issue #25): SDXL inversion + edit <= 10 s on an H100; SD 1.x <= 3 s. Not measured yet.
set -euo pipefail

OUT=${OUT:-bench-speed-sdxl-gpu}
CACHE=${CACHE:-$HOME/.cache/pix2pix-zero}
STEPS=${STEPS:-50}
REPEAT=${REPEAT:-2}
DEVICE=${DEVICE:-cuda}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
t0=$(date +%s)
python -m pix2pix_zero bench speed -m sdxl -m sd-1.x --steps "$STEPS" --device "$DEVICE" --dtype float16 \
  --targets 1 --repeat "$REPEAT" --threads 8 --cache-dir "$CACHE" -o "$OUT"
echo "done after $(( $(date +%s) - t0 ))s; report: $OUT/report.md"
