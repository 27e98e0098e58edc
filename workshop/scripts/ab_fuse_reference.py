"""Edit time with `fuse_reference` on and off, 1 and 3 targets, alternating in one process.

    python scripts/ab_fuse_reference.py MODEL DEVICE DTYPE STEPS REPEATS
    python scripts/ab_fuse_reference.py sd-1.x cuda float16 50 2
    python scripts/ab_fuse_reference.py sd-small cpu float32 25 2

MODEL is a `bench speed` architecture (random weights). The pipeline's settings (CFG 5 with the
caption as negative, xa_guidance 0.1 on the summed loss). Pass 0 runs every configuration once,
untimed in the summary (GPU kernels load and tune); then REPEATS passes, each in the opposite
order of the one before, and the fastest run of each configuration is kept.
"""

import sys
import tempfile
import time
from pathlib import Path

import torch

from pix2pix_zero.api import EditOptions
from pix2pix_zero.bench.speed import CAPTION, bench_image, prepare_editor, resolve_bench_model
from pix2pix_zero.config import EditConfig, InversionConfig


def main(arch: str, device: str, dtype: str, steps: int, repeats: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    folder, size = resolve_bench_model(arch, tmp)
    editor, source, targets = prepare_editor(folder, device, dtype, 3, tmp)
    image = bench_image(size, tmp)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    inversion = editor.invert(
        image, caption=CAPTION, config=InversionConfig(num_steps=steps, reg_loss_scale="mean"), use_cache=False
    )
    best: dict[tuple[int, bool], float] = {}
    for rep in range(repeats + 1):
        for k in (1, 3):
            for fuse in (False, True) if rep % 2 == 0 else (True, False):
                cfg = EditConfig(
                    num_steps=steps, guidance_scale=5.0, xa_guidance=0.1, xa_loss_scale="sum", fuse_reference=fuse
                )
                sync()
                started = time.perf_counter()
                editor.edit(inversion, source, targets[:k], EditOptions(config=cfg))
                sync()
                seconds = time.perf_counter() - started
                if rep > 0:
                    best[(k, fuse)] = min(seconds, best.get((k, fuse), float("inf")))
                print(f"pass {rep} targets={k} fuse_reference={fuse}: edit {seconds:.2f} s", flush=True)
    for fuse in (False, True):
        one, three = best[(1, fuse)], best[(3, fuse)]
        print(
            f"fuse_reference={fuse}: 1 target {one:.2f} s, 3 targets {three:.2f} s, "
            f"each extra target {(three - one) / 2 / one:.2f}x the first"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
