"""The threshold of late guidance (EditConfig.late_guidance_threshold), read off tuning rows: for each threshold, the
edits `caption_direction_tuning.py` would strengthen (those whose latent had moved less than it at half the steps,
as recorded by the variant "..., movement at half the steps recorded") take their row of "CFG 4.0 then 6.0 from half
the steps", the others keep their CFG 4 row. Both variants are identical up to half the steps, so this is what late
guidance with that threshold gives on those scenes.

    python workshop/scripts/late_guidance_threshold.py ROWS.jsonl [ROWS.jsonl ...]
"""

from __future__ import annotations

import json
import sys
from statistics import mean

PREFIX = "caption direction, empty negative prompt, CFG 4.0"
MEASURED = f"{PREFIX}, movement at half the steps recorded"
STRONGER = f"{PREFIX} then 6.0 from half the steps"
THRESHOLDS = (0.045, 0.05, 0.0525, 0.055, 0.0575, 0.06, 0.065)


def main(*paths: str) -> None:
    rows = [json.loads(line) for path in paths for line in open(path) if line.strip()]
    measured = {r["id"]: r for r in rows if r["method"] == MEASURED}
    stronger = {r["id"]: r for r in rows if r["method"] == STRONGER}
    cases = sorted(set(measured) & set(stronger))
    print("| task | threshold | n | strengthened | landed | landed cleanly | IoU ideal | structure |")
    print("|---|---|---|---|---|---|---|---|")
    for task in sorted({measured[c]["task"] for c in cases}):
        ids = [c for c in cases if measured[c]["task"] == task]
        for threshold in (0.0, *THRESHOLDS, float("inf")):
            picked = [stronger[c] if measured[c]["late_guidance"]["moved"] < threshold else measured[c] for c in ids]
            print(
                f"| {task} | {'all' if threshold == float('inf') else threshold} | {len(ids)} "
                f"| {sum(p is stronger[c] for p, c in zip(picked, ids))} "
                f"| {sum(p['landed'] for p in picked):.0f} | {sum(p['landed_cleanly'] for p in picked):.0f} "
                f"| {mean(p['iou_ideal'] for p in picked):.3f} | {mean(p['structure'] for p in picked):.4f} |"
            )


if __name__ == "__main__":
    main(*sys.argv[1:])
