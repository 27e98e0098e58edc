"""Two-object tasks under `bench quality --captions captioner`: how often each method changed the right object, split
by whether the captioner's caption names the edited object (the source shape named once, at the edited object's
region) or not (misnamed, missing, or named at the other object's place), so a caption's error is told from the
method's.

    python workshop/scripts/captioner_right_object.py RUN_FOLDER [RUN_FOLDER ...]

Each folder is a `bench quality` output folder (its cases.jsonl holds the captions used, rows.jsonl the verdicts).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from pix2pix_zero.shapesworld import world

# "a small red circle in the top left" -> (size, colour, shape, region), as world.canonical_caption phrases an object;
# the longest regions first, so "center left" is not read as "center"
OBJECT = re.compile(
    rf"an? ({'|'.join(world.SIZE_NAMES)}) (\w+) ({'|'.join(world.SHAPES)}) in the "
    rf"({'|'.join(sorted(world.REGIONS, key=len, reverse=True))})\b"
)


def names_edited_object(case: dict) -> bool:
    edited = case["scene"]["objects"][case["edit_object"]]
    named = [o for o in OBJECT.findall(case["caption"]) if o[2] == case["source"]]
    return len(named) == 1 and named[0][3] == edited["region"]


def report(folder: Path) -> str:
    cases = {c["id"]: c for c in map(json.loads, (folder / "cases.jsonl").read_text().splitlines())}
    tally: dict[tuple[str, str, bool], list[float]] = {}
    for row in map(json.loads, (folder / "rows.jsonl").read_text().splitlines()):
        case = cases.get(row["id"])
        if row.get("status") != "ok" or case is None or "right_object" not in row:
            continue
        key = (row["task"], row["method"], names_edited_object(case))
        tally.setdefault(key, []).append(row["right_object"])
    lines = [
        "| task | method | caption names the edited object: right object | caption does not: right object |",
        "|---|---|---|---|",
    ]
    for task, method in dict.fromkeys((t, m) for t, m, _ in tally):
        cells = []
        for named in (True, False):
            verdicts = tally.get((task, method, named), [])
            cells.append(f"{sum(verdicts):.0f} of {len(verdicts)}")
        lines.append(f"| {task} | {method} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print("\n\n".join(report(Path(arg)) for arg in sys.argv[1:]))
