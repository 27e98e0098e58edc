#!/usr/bin/env bash
# Many `bench quality` jobs side by side on one GPU, until a deadline; each job resumes where it stopped.
#
#   workshop/scripts/quality_sweep_gpu.sh JOBS_FILE [WORK_DIR]
#
# JOBS_FILE holds one job per line, `TASK|bench quality options`, e.g.
#   circle->square|--sweep xa_guidance=0.05
#   circle->heart|--method "prompt-to-prompt (CFG 2)"
# (blank lines and lines starting with # are skipped).  Each job scores NUM_SCENES scenes of
# scene set SCENE_SET in WORK_DIR/<slug of its line>, so a second run with the same file
# continues every job; WORKERS jobs run at once and each stops BUDGET seconds after the start
# (a row is written per edit, so a stopped job keeps what it did).  The small ShapesWorld
# model leaves a GPU idle between kernels, so several processes share it well: on one H100,
# 14 workers scored 1.4 to 1.7 edits per second together.  At the end a table per
# task compares the jobs on the scenes they all reached.
set -uo pipefail

JOBS=${1:?usage: workshop/scripts/quality_sweep_gpu.sh JOBS_FILE [WORK_DIR]}
WORK=${2:-runs/quality-sweep}
DEVICE=${DEVICE:-cuda}
WORKERS=${WORKERS:-14}
BUDGET=${BUDGET:-600}
NUM_SCENES=${NUM_SCENES:-100}
SCENE_SET=${SCENE_SET:-1}
PYTHON=${PYTHON:-python3}
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
mkdir -p "$WORK"
deadline=$(( $(date +%s) + BUDGET ))

run_job() {  # run_job LINE: one job, stopped at the deadline
  local task=${1%%|*} options=${1#*|}
  local slug; slug=$(printf '%s' "$1" | tr -c 'A-Za-z0-9_.=' '-' | tr -s '-'); slug=${slug%-}
  local left=$(( deadline - $(date +%s) ))
  if (( left < 30 )); then echo "not started (deadline): $1"; return; fi
  local t0; t0=$(date +%s)
  eval "timeout $left $PYTHON -m pix2pix_zero bench quality -q --device $DEVICE --num-scenes $NUM_SCENES \
    --scene-set $SCENE_SET --task \"\$task\" $options -o \"\$WORK/\$slug\"" >"$WORK/$slug.log" 2>&1
  local rc=$?
  echo "$(( $(date +%s) - t0 ))s rc=$rc rows=$(wc -l <"$WORK/$slug/rows.jsonl" 2>/dev/null || echo 0): $1"
}

while IFS= read -r line; do
  [[ -z ${line// } || $line == \#* ]] && continue
  while (( $(jobs -rp | wc -l) >= WORKERS )); do sleep 1; done
  run_job "$line" </dev/null &  # the jobs file stays the loop's alone
done <"$JOBS"
wait

# Per task, only the scenes every job of that task reached, so the rows compare like with like.
$PYTHON - "$WORK" <<'PY'
import json, sys
from pathlib import Path
from pix2pix_zero.bench import quality
rows = [json.loads(line) for path in sorted(Path(sys.argv[1]).glob("*/rows.jsonl")) for line in path.open()]
cases = [c for path in sorted(Path(sys.argv[1]).glob("*/cases.jsonl")) for c in quality.read_cases(path)]
for task in dict.fromkeys(r["task"] for r in rows):
    per_method = {}
    for r in rows:
        if r["task"] == task:
            per_method.setdefault(r["method"], set()).add(r["id"])
    common = set.intersection(*per_method.values())
    print(f"\n## {task}: the {len(common)} scenes every job reached\n")
    chosen = [r for r in rows if r["task"] == task and r["id"] in common]
    print(quality.format_table(quality.summarize(chosen), task))
    by_size = quality.format_by_size(chosen, cases, task)
    if by_size:
        print(f"\n### {task}, by object size\n\n{by_size}")
PY
