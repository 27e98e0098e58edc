"""Each local-edit option on one bundled example (50 steps): time per edit, reconstruction PSNR against the input,
PSNR outside the object (non-background pixels grown by 4 px), the judge's shapes and the mask's cover.

    python workshop/scripts/local_edit_options.py [EXAMPLE]   (default red_circle_white)

Times are wall-clock of one edit after a warm-up edit; on a shared machine compare them only within one run.
"""

import sys
import time

import numpy as np
import torch

from pix2pix_zero import EditOptions, Pix2PixZero, shapesworld
from pix2pix_zero.config import override
from pix2pix_zero.shapesworld.judge import Judge

VARIANTS = {
    "default": ({}, None),
    "exact inversion": ({"exact_inversion": True}, None),
    "self-attention 0.3": ({"self_attention_injection": 0.3}, None),
    "auto mask": ({}, "auto"),
    "all three": ({"exact_inversion": True, "self_attention_injection": 0.3}, "auto"),
}


def psnr(image, reference: np.ndarray, where: np.ndarray | None = None) -> float:
    error = (np.asarray(image, float) - reference.astype(float)) ** 2
    error = error[where] if where is not None else error
    return float(10 * np.log10(255**2 / max(error.mean(), 1e-10)))


def main() -> None:
    torch.set_num_threads(1)
    example = sys.argv[1] if len(sys.argv) > 1 else "red_circle_white"
    editor = Pix2PixZero.from_pretrained("shapesworld", progress=False)
    judge = Judge.load(editor.components.model_dir / "judge")
    picture, _, caption = shapesworld.load_example(example)
    inversion = editor.invert(picture, caption, use_cache=False)
    reference = np.asarray(inversion.image)
    objects = np.abs(reference.astype(int) - reference[0, 0].astype(int)).sum(-1) > 30
    grown = torch.nn.functional.max_pool2d(torch.tensor(objects)[None, None].float(), 9, 1, 4)[0, 0].numpy() > 0
    for name, (changes, mask) in VARIANTS.items():
        options = EditOptions(config=override(editor.preset.edit, **changes), mask=mask)
        editor.edit(inversion, "circle", "square", options)  # warm-up
        started = time.perf_counter()
        result = editor.edit(inversion, "circle", "square", options)
        seconds = time.perf_counter() - started
        cover = f", mask covers {(np.asarray(result.masks[0]) > 0).mean():.0%}" if result.masks else ""
        print(
            f"{name}: {seconds:.2f} s/edit, reconstruction {psnr(result.reconstruction, reference):.1f} dB, outside "
            f"the "
            f"object {psnr(result.image, reference, ~grown):.1f} dB, judge "
            f"{judge.predict([result.image])[0]['shapes']}{cover}",
            flush=True,
        )


if __name__ == "__main__":
    main()
