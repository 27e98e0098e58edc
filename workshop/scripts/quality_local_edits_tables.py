"""Compact tables of `bench quality` runs for docs/quality-local-edits.md: per task, the columns that decide a
local edit (landed, landed cleanly, fidelity, IoU, PSNR outside, structure, colour; on two-object tasks what happened
to the other object; under the captioner, how often a word swap had no source word), on the cases every method
of the task has a row of (a method cut off short of the others is left out).

    python workshop/scripts/quality_local_edits_tables.py RUN_FOLDER [RUN_FOLDER ...] > tables.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from pix2pix_zero.batch import ResultsLog
from pix2pix_zero.bench.quality import summarize

COLUMNS = (
    ("landed", "landed", "{:.0%}"),
    ("landed_cleanly", "landed cleanly", "{:.0%}"),
    ("fidelity", "fidelity", "{:.3f}"),
    ("iou_ideal", "IoU ideal", "{:.3f}"),
    ("iou_ideal_landed", "IoU ideal, landed", "{:.3f}"),
    ("psnr_outside", "PSNR outside dB", "{:.1f}"),
    ("structure", "structure", "{:.4f}"),
    ("color_kept", "colour kept", "{:.0%}"),
    ("right_object", "right object", "{:.0%}"),
    ("psnr_other", "PSNR other dB", "{:.1f}"),
    ("other_shape_kept", "other shape kept", "{:.0%}"),
    ("other_color_kept", "other colour kept", "{:.0%}"),
    ("source_word_missing", "no source word", "{:.0%}"),
    ("generated_scene", "generation drew the scene", "{:.0%}"),
    ("landed_where_drawn", "landed where drawn", "{:.0%}"),
    ("psnr_generation", "PSNR to the generation dB", "{:.1f}"),
    ("seconds", "s / edit", "{:.0f}"),
)


def common_rows(rows: list[dict]) -> list[dict]:
    """The cases every method of a task has a row of, so each table compares the same scenes; a method that stopped
    short of the task's longest run (a run cut off at a deadline) is left out of that task's table."""
    kept = []
    for task in dict.fromkeys(r["task"] for r in rows):
        per_method: dict[str, set[str]] = {}
        for r in rows:
            if r["task"] == task:
                per_method.setdefault(r["method"], set()).add(r["id"])
        longest = max(len(ids) for ids in per_method.values())
        complete = {m: ids for m, ids in per_method.items() if len(ids) == longest}
        common = set.intersection(*complete.values())
        kept += [r for r in rows if r["task"] == task and r["method"] in complete and r["id"] in common]
    return kept


def tables(folder: Path) -> str:
    rows = common_rows(ResultsLog(folder / "rows.jsonl").records())
    for row in rows:  # seconds is no quality metric, so summarize leaves it out: carry it as one
        row.setdefault("seconds", None)
    summary = summarize(rows)
    seconds: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        if row["status"] == "ok" and row.get("seconds") is not None:
            for task in (row["task"], "all"):
                seconds.setdefault((row["method"], task), []).append(row["seconds"])
    out = [f"### {folder.name}"]
    for task in dict.fromkeys(r["task"] for r in rows):
        shown = [
            c
            for c in COLUMNS
            if any(
                c[0] in cell or (c[0] == "seconds" and key in seconds)
                for key, cell in summary.items()
                if key[1] == task
            )
        ]
        out += [
            "",
            f"**{task}**",
            "",
            "| method | n | " + " | ".join(c[1] for c in shown) + " |",
            "|---|---|" + "---|" * len(shown),
        ]
        for (method, t), cell in summary.items():
            if t != task:
                continue
            values = []
            for key, _, fmt in shown:
                value = (
                    sum(seconds[(method, t)]) / len(seconds[(method, t)])
                    if key == "seconds" and (method, t) in seconds
                    else cell.get(key)
                )
                values.append("–" if value is None else fmt.format(value))
            failed = f" ({int(cell['errors'])} failed)" if cell["errors"] else ""
            out.append(f"| {method} | {int(cell['n'])}{failed} | " + " | ".join(values) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    print("\n\n".join(tables(Path(arg)) for arg in sys.argv[1:]))
