"""Issue #24's targets (item 7) from `bench quality` rows: per task, `default` against the best baseline on each
metric (the best of the baselines at their papers' and at tuned settings, chosen per metric and task), against the
target caption drawn from noise (landing), against the VAE round trip (PSNR outside the object) and against the
absolute targets (colour kept, the right object changed), with a paired
bootstrap interval over the scenes for each gap, so a gap of a few thousandths can be told from the scenes' spread.

    python workshop/scripts/quality_targets.py [--first N] ROWS.jsonl|RUN_FOLDER [...] > targets.md

Rows of the same (method, case) in several files count once (the last read); a task's cases are those every method
named here has a row of.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

OURS = "pix2pix-zero"
BASELINES = (
    "DDIM + word swap (no CFG)",
    "DDIM + word swap (CFG 5)",
    "prompt-to-prompt (CFG 2)",
    "prompt-to-prompt (CFG 7.5)",
    "SDEdit + word swap (0.75, CFG 7.5)",
)
FROM_NOISE = "reference: target caption from noise (CFG 5)"
ROUND_TRIP = "reference: no edit (VAE round trip)"
# metric, label, higher is better, format of a value
METRICS = (
    ("landed", "landed", True, "{:.1%}"),
    ("landed_cleanly", "landed cleanly", True, "{:.1%}"),
    ("iou_ideal", "IoU ideal", True, "{:.4f}"),
    # a circle's rotation is not in the image, yet the ideal edit is drawn at it: circle->X also at any rotation
    ("iou_ideal_any_rotation", "IoU ideal, any rotation", True, "{:.4f}"),
    ("psnr_outside", "PSNR outside dB", True, "{:.2f}"),
    ("structure", "structure", False, "{:.5f}"),
    ("psnr_other", "PSNR other dB", True, "{:.2f}"),
)
# metric, label, the least it must be (the absolute targets)
AT_LEAST = (("color_kept", "colour kept", 0.99), ("right_object", "right object changed", 0.95))
PSNR_CAP = 60.0  # as `bench quality`'s tables: an unchanged region's infinite PSNR counts as 60 dB
BOOTSTRAP_DRAWS = 2000


def load(paths: list[Path], first: int | None) -> dict[str, dict[str, dict[str, dict]]]:
    """{task: {method: {case id: row}}} of the ok rows, on the first `first` scenes of each task if given."""
    rows: dict[str, dict[str, dict[str, dict]]] = {}
    for path in paths:
        for line in (path / "rows.jsonl" if path.is_dir() else path).read_text().splitlines():
            row = json.loads(line)
            if row.get("status") != "ok" or (first is not None and int(row["id"].rsplit("-", 1)[1]) >= first):
                continue
            rows.setdefault(row["task"], {}).setdefault(row["method"], {})[row["id"]] = row
    return rows


def values(per_case: dict[str, dict], ids: list[str], key: str) -> np.ndarray | None:
    if not all(per_case[i].get(key) is not None for i in ids):
        return None
    return np.minimum(np.array([float(per_case[i][key]) for i in ids]), PSNR_CAP)


def _same_as_ideal(methods: dict[str, dict[str, dict]]) -> bool:
    """Whether every edit scored the same at any rotation as at the ideal's (a source whose rotation shows)."""
    return all(r.get("iou_ideal_any_rotation") == r.get("iou_ideal") for m in methods.values() for r in m.values())


def interval(ours: np.ndarray, theirs: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95 % paired bootstrap interval of mean(ours - theirs) over the scenes."""
    gaps = ours - theirs
    draws = rng.integers(0, len(gaps), size=(BOOTSTRAP_DRAWS, len(gaps)))
    means = gaps[draws].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def task_table(task: str, methods: dict[str, dict[str, dict]], rng: np.random.Generator) -> str:
    named = [m for m in (OURS, *BASELINES, FROM_NOISE, ROUND_TRIP) if m in methods]
    ids = sorted(set.intersection(*(set(methods[m]) for m in named)))
    lines = [
        f"**{task}** ({len(ids)} scenes; gap = `default` minus the other, 95 % paired bootstrap interval)",
        "",
        "| metric | `default` | best baseline | gap | met? |",
        "|---|---|---|---|---|",
    ]
    for key, label, higher, fmt in METRICS:
        ours = values(methods[OURS], ids, key)
        scored = {m: v for m in BASELINES if m in methods and (v := values(methods[m], ids, key)) is not None}
        if ours is None or not scored or (key == "iou_ideal_any_rotation" and _same_as_ideal(methods)):
            continue
        best = (max if higher else min)(scored, key=lambda m: scored[m].mean())
        low, high = interval(ours, scored[best], rng)
        gap = ours.mean() - scored[best].mean()
        met = gap >= 0 if higher else gap <= 0
        lines.append(
            f"| {label} | {fmt.format(ours.mean())} | {fmt.format(scored[best].mean())} ({best}) | "
            f"{gap:+.4g} [{low:+.4g}, {high:+.4g}] | {'yes' if met else 'no'} |"
        )
    for key, label, least in AT_LEAST:
        ours = values(methods[OURS], ids, key)
        if ours is not None:
            met = "yes" if ours.mean() >= least else "no"
            lines.append(f"| {label} | {ours.mean():.1%} | – | – | {met} (≥ {least * 100:.0f} %) |")
    if FROM_NOISE in methods:
        ours, drawn = values(methods[OURS], ids, "landed"), values(methods[FROM_NOISE], ids, "landed")
        if ours is not None and drawn is not None and drawn.mean() > 0:
            ratio = ours.mean() / drawn.mean()
            lines.append(
                f"| landed / target caption from noise | {ours.mean():.1%} | {drawn.mean():.1%} | "
                f"{ratio:.0%} of it | {'yes' if ratio >= 0.95 else 'no'} (≥ 95 %) |"
            )
    if ROUND_TRIP in methods:
        ours, trip = values(methods[OURS], ids, "psnr_outside"), values(methods[ROUND_TRIP], ids, "psnr_outside")
        low, high = interval(ours, trip, rng)
        gap = ours.mean() - trip.mean()
        lines.append(
            f"| PSNR outside / VAE round trip | {ours.mean():.2f} | {trip.mean():.2f} | "
            f"{gap:+.4g} [{low:+.4g}, {high:+.4g}] | {'yes' if gap >= 0 else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="+", type=Path, help="rows.jsonl files or bench quality output folders")
    parser.add_argument("--first", type=int, default=None, help="only the first N scenes of each task")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap's draws")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    rows = load(args.rows, args.first)
    print("\n\n".join(task_table(task, methods, rng) for task, methods in rows.items() if OURS in methods))


if __name__ == "__main__":
    main()
