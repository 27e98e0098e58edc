"""How often synthetic mode (`generate`) lands circle->square on the bundled model, per edit-setting variant.

    python workshop/scripts/synthetic_landing.py SEEDS NAME='{"xa_guidance": 0.03}' NAME2='{...}'

Each variant's JSON changes the preset's synthetic edit config; two prompts, seeds 0..SEEDS-1; an edit lands when the
bundled judge sees exactly a square where the generation had a circle.
"""

import json
import sys
import time

import torch

from pix2pix_zero import Pix2PixZero
from pix2pix_zero.config import override
from pix2pix_zero.shapesworld.judge import Judge

PROMPTS = ["a large red circle in the center on a white background", "a medium blue circle in the center on a gray background"]


def main() -> None:
    torch.set_num_threads(1)
    editor = Pix2PixZero.from_pretrained("shapesworld", progress=False)
    judge = Judge.load(editor.components.model_dir / "judge")
    variants = {name: json.loads(changes) for name, changes in (arg.split("=", 1) for arg in sys.argv[2:])}
    for name, changes in variants.items():
        landed = with_circle = 0
        started = time.time()
        for prompt in PROMPTS:
            for seed in range(int(sys.argv[1])):
                base = override(editor.preset.edit, xa_guidance=editor.preset.synthetic_xa_guidance)
                result = editor.generate_and_edit(prompt, "circle", "square", seed=seed, config=override(base, **changes))
                generated, edited = judge.predict([result.input, result.image])
                landed += "circle" in generated["shapes"] and edited["shapes"] == ["square"]
                with_circle += "circle" in generated["shapes"]
        print(f"{name}: landed {landed}/{with_circle} (generations with a circle), {time.time() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main()
