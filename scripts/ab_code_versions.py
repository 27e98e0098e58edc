"""Invert and edit time of two or more checkouts of this project, side by side on one machine.

    python scripts/ab_code_versions.py STEPS PASSES CHECKOUT [CHECKOUT ...]
    python scripts/ab_code_versions.py 10 4 /tmp/old .

Each run is a fresh process with PYTHONPATH=<checkout>/src (2 torch threads), on the `bench speed`
sd-small model (random weights, seed 0) and its settings: CFG 5 with the caption as negative,
xa_guidance 0.1 on the summed attention loss, the regularizer losses as means. The checkouts take
turns, in the opposite order on every other pass; the fastest run of each is printed at the end.
Use it to tell a slower machine from slower code: the numbers of different days do not compare.
"""

import os
import subprocess
import sys

CHILD = r"""
import sys, tempfile, time
from pathlib import Path
import torch
torch.set_num_threads(2)
from pix2pix_zero.api import Pix2PixZero
from pix2pix_zero.bench.random_models import ARCHITECTURES, build_random_sd
from pix2pix_zero.bench.speed import CAPTION, SOURCE_SENTENCES, TARGET_SENTENCES, bench_image
from pix2pix_zero.config import EditConfig, InversionConfig
steps, tmp = int(sys.argv[1]), Path(tempfile.mkdtemp())
folder = build_random_sd(tmp / "model", "sd-small")
image = bench_image(ARCHITECTURES["sd-small"]["latent"] * 8, tmp)
editor = Pix2PixZero.from_pretrained(str(folder), captioner=lambda im: CAPTION, cache_dir=tmp / "cache", progress=False)
(tmp / "source.txt").write_text("\n".join(SOURCE_SENTENCES))
(tmp / "target.txt").write_text("\n".join(TARGET_SENTENCES))
editor.direction(str(tmp / "source.txt"), str(tmp / "target.txt"))  # embed the banks before the clock starts
means = {"reg_loss_scale": "mean"} if "reg_loss_scale" in InversionConfig.__dataclass_fields__ else {}  # older checkouts lack it
started = time.perf_counter()
inversion = editor.invert(image, CAPTION, InversionConfig(num_steps=steps, **means), use_cache=False)
inverted = time.perf_counter()
editor.edit(inversion, str(tmp / "source.txt"), str(tmp / "target.txt"),
            config=EditConfig(num_steps=steps, xa_guidance=0.1, xa_loss_scale="sum"))
print("RESULT", inverted - started, time.perf_counter() - inverted)
"""


def main(steps: str, passes: int, checkouts: list[str]) -> None:
    times: dict[str, list[tuple[float, float]]] = {c: [] for c in checkouts}
    for p in range(passes):
        for checkout in checkouts if p % 2 == 0 else checkouts[::-1]:
            env = {**os.environ, "PYTHONPATH": os.path.join(checkout, "src"), "OMP_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1"}
            run = subprocess.run([sys.executable, "-c", CHILD, steps], env=env, capture_output=True, text=True)
            result = [line for line in run.stdout.splitlines() if line.startswith("RESULT")]
            if not result:
                sys.exit(f"{checkout} failed:\n{run.stderr[-3000:]}")
            invert, edit = map(float, result[0].split()[1:])
            times[checkout].append((invert, edit))
            print(f"pass {p} {checkout}: invert {invert:.2f} s, edit {edit:.2f} s", flush=True)
    for checkout, runs in times.items():
        edits = [e for _, e in runs]
        print(f"{checkout}: fastest invert {min(i for i, _ in runs):.2f} s, fastest edit {min(edits):.2f} s "
              f"(mean edit {sum(edits) / len(edits):.2f} s over {len(edits)})")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
