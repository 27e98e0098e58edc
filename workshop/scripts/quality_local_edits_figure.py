"""docs/quality-local-edits.png from the reported runs of docs/quality-local-edits.md ("The caption direction in
default"): each case's input, the sentence-direction `default` before, `default`, the best baseline and `default`'s
automatic mask; the runs' rows and examples are pooled into one folder first.

    python workshop/scripts/quality_local_edits_figure.py rep-base-A rep-default-A rep-base-B rep-default-B \
        docs/quality-local-edits.png
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from pix2pix_zero.bench.quality import comparison_figure

CASES = (
    "circle2square-0002",
    "heart2circle-0001",
    "circle2heart-two-0001",
    "circle2heart-two-0002",
    "square2circle-two-0000",
    "circle2square-0003",
    "triangle2star-0004",
)
COLUMNS = (
    ("before", "pix2pix-zero, sentence-direction default"),
    ("default", "pix2pix-zero"),
    ("p2p CFG 2", "prompt-to-prompt (CFG 2)"),
)
MASK = "pix2pix-zero"


def main(*arguments: str) -> None:
    *runs, figure = arguments
    with tempfile.TemporaryDirectory() as folder:
        pooled = Path(folder)
        (pooled / "examples" / "masks").mkdir(parents=True)
        with open(pooled / "rows.jsonl", "w") as rows:
            for run in map(Path, runs):
                rows.write((run / "rows.jsonl").read_text())
                for path in (run / "examples").rglob("*.png"):
                    shutil.copy(path, pooled / path.relative_to(run))
        print(comparison_figure(pooled, CASES, COLUMNS, MASK, Path(figure)))


if __name__ == "__main__":
    main(*sys.argv[1:])
