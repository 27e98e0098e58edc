"""The thresholds of late guidance (EditConfig.late_guidance_area and late_guidance_movement), read off tuning rows.

Two variants of `caption_direction_tuning.py` are the same edit up to half the steps: CFG 4 throughout, with each
edit's movement at half the steps recorded ("..., movement at half the steps recorded"), and CFG 4 then 6 for every
edit ("CFG 4.0 then 6.0 from half the steps"). For each threshold, the edits it would strengthen take their CFG 4
then 6 row, the others keep their CFG 4 row: what late guidance with that threshold gives on those scenes. The
source word's area is read from any row that recorded it (it is the reference branch's, the same in every variant).

    python workshop/scripts/late_guidance_threshold.py area|movement ROWS.jsonl [ROWS.jsonl ...]
"""

from __future__ import annotations

import json
import sys
from statistics import mean

PREFIX = "caption direction, empty negative prompt, CFG 4.0"
MEASURED = f"{PREFIX}, movement at half the steps recorded"
STRONGER = f"{PREFIX} then 6.0 from half the steps"
THRESHOLDS = {
    "area": (0.05, 0.07, 0.085, 0.1, 0.12),
    "movement": (0.045, 0.05, 0.0525, 0.055, 0.0575, 0.06, 0.065),
}


def main(signal: str, *paths: str) -> None:
    if signal not in THRESHOLDS:
        raise SystemExit(f"the first argument is the signal, 'area' or 'movement', got {signal!r}")
    rows = [json.loads(line) for path in paths for line in open(path) if line.strip()]
    measured = {r["id"]: r for r in rows if r["method"] == MEASURED}
    stronger = {r["id"]: r for r in rows if r["method"] == STRONGER}
    key = "moved" if signal == "movement" else "area"
    value = {r["id"]: r["late_guidance"][key] for r in rows if (r.get("late_guidance") or {}).get(key) is not None}
    cases = sorted(set(measured) & set(stronger) & set(value))
    print(f"| task | {signal} below | n | strengthened | landed | landed cleanly | IoU ideal | structure |")
    print("|---|---|---|---|---|---|---|---|")
    for task in sorted({measured[c]["task"] for c in cases}):
        ids = [c for c in cases if measured[c]["task"] == task]
        for threshold in (0.0, *THRESHOLDS[signal], float("inf")):
            picked = [stronger[c] if value[c] < threshold else measured[c] for c in ids]
            print(
                f"| {task} | {'every edit' if threshold == float('inf') else threshold} | {len(ids)} "
                f"| {sum(p is stronger[c] for p, c in zip(picked, ids))} "
                f"| {sum(p['landed'] for p in picked):.0f} | {sum(p['landed_cleanly'] for p in picked):.0f} "
                f"| {mean(p['iou_ideal'] for p in picked):.3f} | {mean(p['structure'] for p in picked):.4f} |"
            )


if __name__ == "__main__":
    main(*sys.argv[1:])
