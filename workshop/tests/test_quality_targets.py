"""The targets script reads `default` against the best baseline per metric, the absolute targets and the scenes'
spread the way docs/quality-local-edits.md reports them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _row(method: str, scene: int, **metrics: float) -> dict:
    return {"method": method, "id": f"circle2square-{scene:04d}", "task": "circle->square", "status": "ok", **metrics}


def _rows(path: Path) -> Path:
    rows = []
    for scene in range(6):
        # ours: lands every edit, keeps less IoU than the word swap; the word swap lands half, p2p lands all
        rows.append(_row("pix2pix-zero", scene, landed=1.0, iou_ideal=0.80, structure=0.004, psnr_outside=54.0))
        rows.append(
            _row("DDIM + word swap (no CFG)", scene, landed=float(scene % 2), iou_ideal=0.82, structure=0.005)
            | {"psnr_outside": float("inf") if scene == 0 else 50.0}  # an unchanged region counts as 60 dB
        )
        rows.append(_row("prompt-to-prompt (CFG 2)", scene, landed=1.0, iou_ideal=0.81, structure=0.006))
        rows.append(_row("reference: target caption from noise (CFG 5)", scene, landed=1.0))
        rows.append(_row("reference: no edit (VAE round trip)", scene, psnr_outside=55.0))
    rows.append(_row("pix2pix-zero", 6, landed=0.0, iou_ideal=0.1))  # no baseline row of scene 6: left out
    rows.append({"method": "prompt-to-prompt (CFG 2)", "id": "x-0000", "task": "circle->square", "status": "error"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _verdicts(table: str) -> dict[str, list[str]]:
    lines = [line.split(" | ") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return {cells[0].lstrip("| "): [c.strip(" |") for c in cells[1:]] for cells in lines[1:]}


def test_default_against_the_best_baseline_per_metric(tmp_path, load_script):
    targets = load_script("quality_targets")
    rows = targets.load([_rows(tmp_path / "rows.jsonl")], first=None)
    table = targets.task_table("circle->square", rows["circle->square"], np.random.default_rng(0))
    assert "(6 scenes;" in table
    verdicts = _verdicts(table)
    assert verdicts["landed"][1].startswith("100.0% (prompt-to-prompt (CFG 2))") and verdicts["landed"][-1] == "yes"
    assert verdicts["IoU ideal"][1].startswith("0.8200 (DDIM + word swap (no CFG))")
    assert verdicts["IoU ideal"][2].startswith("-0.02 [-0.02, -0.02]") and verdicts["IoU ideal"][-1] == "no"
    assert verdicts["structure"][1].startswith("0.00500 (DDIM + word swap (no CFG))")  # lower is better
    assert verdicts["structure"][-1] == "yes"
    # the word swap's unchanged scene counts at 60 dB: (60 + 5 × 50) / 6
    assert verdicts["PSNR outside dB"][1].startswith("51.67") and verdicts["PSNR outside dB"][-1] == "yes"
    assert verdicts["landed / target caption from noise"][-1].startswith("yes")
    assert verdicts["PSNR outside / VAE round trip"][2].startswith("-1 [-1, -1]")
    assert verdicts["PSNR outside / VAE round trip"][-1] == "no"


def test_first_scenes_only(tmp_path, load_script):
    targets = load_script("quality_targets")
    rows = targets.load([_rows(tmp_path / "rows.jsonl")], first=2)
    assert {len(per_case) for per_case in rows["circle->square"].values()} == {2}
