"""The automatic mask on one bundled example: its cover, the judge's verdict, and PSNR outside the object.

    python workshop/scripts/auto_mask_example.py [EXAMPLE] [STEPS]   (default red_circle_white, 20 steps)

Prints the response (scaled 0..1 on the latent grid), the mask, and, with and without it, the PSNR outside the
object (the non-background pixels grown by 4 px) and the shapes the judge sees; writes the outputs to /tmp/auto-mask.
"""

import sys

import numpy as np
import torch

import pix2pix_zero.editing as editing
from pix2pix_zero import EditOptions, Pix2PixZero, shapesworld
from pix2pix_zero.config import override
from pix2pix_zero.shapesworld.judge import Judge


def psnr_outside(image, reference: np.ndarray, inside: np.ndarray) -> float:
    error = ((np.asarray(image, float) - reference.astype(float)) ** 2)[~inside]
    return float(10 * np.log10(255**2 / max(error.mean(), 1e-10)))


def main() -> None:
    torch.set_num_threads(1)
    example = sys.argv[1] if len(sys.argv) > 1 else "red_circle_white"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    editor = Pix2PixZero.from_pretrained("shapesworld", progress=False)
    judge = Judge.load(editor.components.model_dir / "judge")
    picture, _, caption = shapesworld.load_example(example)
    inversion = editor.invert(picture, caption, config=override(editor.preset.inversion, num_steps=steps))
    responses = []
    mask_of = editing.AutoMask.mask

    def keep_response(auto: editing.AutoMask) -> torch.Tensor:
        responses.append(auto.response.clone())
        return mask_of(auto)

    editing.AutoMask.mask = keep_response
    config = override(editor.preset.edit, num_steps=steps)
    masked = editor.edit(inversion, "circle", "square", EditOptions(config=config, mask="auto"))
    plain = editor.edit(inversion, "circle", "square", EditOptions(config=config))
    response = responses[-1][0, 0]
    np.set_printoptions(precision=2, linewidth=200)
    print("response / peak:\n", (response / response.max()).numpy())
    reference = np.asarray(inversion.image)
    background = reference[0, 0].astype(int)
    objects = np.abs(reference.astype(int) - background).sum(-1) > 30
    grown = torch.nn.functional.max_pool2d(torch.tensor(objects)[None, None].float(), 9, 1, 4)[0, 0].numpy() > 0
    cover = (np.asarray(masked.masks[0]) > 0).mean()
    for name, result in (("auto mask", masked), ("no mask", plain)):
        print(
            f"{name}: PSNR outside the object {psnr_outside(result.image, reference, grown):.1f} dB, "
            f"judge {judge.predict([result.image])[0]['shapes']}"
        )
    print(f"mask covers {cover:.0%} of the image")
    masked.save("/tmp/auto-mask", stem=example, overwrite=True)


if __name__ == "__main__":
    main()
