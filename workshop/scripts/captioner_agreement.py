"""How often the bundled captioner writes a scene's own caption back, per task. Where it does, `bench quality
--captions captioner` gives every method the same caption as `--captions exact`, so the same rows (the bench is
seeded); the condition needs its own run only where the captions differ.

    python workshop/scripts/captioner_agreement.py [--scene-set N] [--num-scenes N] TASK [TASK ...]

Prints, per task, how many captions are the scene's own word for word, how many name the same objects in another
order, and how many differ otherwise, with the ids of the last.
"""

from __future__ import annotations

import argparse
import re

import torch

from pix2pix_zero import Pix2PixZero
from pix2pix_zero.bench import quality

# "a small red circle in the top left and a large blue square in the center on a ..." -> its object phrases
_OBJECTS = re.compile(r"^(.*?) on an? ")


def agreement(exact: str, captioned: str) -> str:
    """'exact' (word for word), 'same objects' (the same object phrases in another order) or 'differs'."""
    if captioned == exact:
        return "exact"

    def objects_and_background(caption: str) -> tuple[list[str], str]:
        found = _OBJECTS.match(caption)
        head = found.group(1) if found else caption
        return sorted(head.split(" and ")), caption[len(head) :]

    return "same objects" if objects_and_background(exact) == objects_and_background(captioned) else "differs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="+", help="bench quality tasks, e.g. 'circle->square'")
    parser.add_argument("--scene-set", type=int, default=0, help="0 is the reported set")
    parser.add_argument("--num-scenes", type=int, default=100)
    args = parser.parse_args()
    torch.set_num_threads(1)
    editor = Pix2PixZero.from_pretrained(progress=False)
    print("| task | scenes | exact | same objects, another order | differs | differing scenes |")
    print("|---|---|---|---|---|---|")
    for task in args.tasks:
        cases = quality.shapesworld_cases([task], args.num_scenes, args.scene_set)
        captioned = quality.captioned_cases(editor, cases, "captioner")
        verdicts = [agreement(c.caption, d.caption) for c, d in zip(cases, captioned)]
        differing = [c.id for c, v in zip(cases, verdicts) if v == "differs"]
        counts = [verdicts.count(v) for v in ("exact", "same objects", "differs")]
        print(f"| {task} | {len(cases)} | {' | '.join(map(str, counts))} | {', '.join(differing) or '–'} |")


if __name__ == "__main__":
    main()
