"""How much self-attention injection moves an edit on one bundled example, per injected fraction of the steps.

python workshop/scripts/self_attention_example.py [EXAMPLE] [STEPS]   (default red_circle_white, 20 steps)
"""

import sys

import numpy as np
import torch

from pix2pix_zero import EditOptions, Pix2PixZero, shapesworld
from pix2pix_zero.config import override
from pix2pix_zero.shapesworld.judge import Judge


def main() -> None:
    torch.set_num_threads(1)
    example = sys.argv[1] if len(sys.argv) > 1 else "red_circle_white"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    editor = Pix2PixZero.from_pretrained("shapesworld", progress=False)
    judge = Judge.load(editor.components.model_dir / "judge")
    picture, _, caption = shapesworld.load_example(example)
    inversion = editor.invert(picture, caption, config=override(editor.preset.inversion, num_steps=steps))
    base = editor.edit(inversion, "circle", "square", EditOptions(config=override(editor.preset.edit, num_steps=steps)))
    for fraction in (0.3, 0.6, 1.0):
        config = override(editor.preset.edit, num_steps=steps, self_attention_injection=fraction)
        result = editor.edit(inversion, "circle", "square", EditOptions(config=config))
        moved = np.abs(np.asarray(result.image, int) - np.asarray(base.image, int))
        print(
            f"{fraction}: mean {moved.mean():.2f}, max {moved.max()} of 255 from default's edit; "
            f"judge {judge.predict([result.image])[0]['shapes']}"
        )


if __name__ == "__main__":
    main()
