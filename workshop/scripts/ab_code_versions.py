"""Invert and edit time of two or more checkouts of this project, side by side on one machine.

    python scripts/ab_code_versions.py STEPS PASSES CHECKOUT [CHECKOUT ...]
    python scripts/ab_code_versions.py 10 4 /tmp/old .

Each run is a fresh process with PYTHONPATH=<checkout>/src (2 torch threads) that times one target
with that checkout's own `bench speed` worker (`run_ours`: the sd-small model with random weights,
the pipeline's settings). The checkouts take turns, in the opposite order on every other pass; the
fastest run of each is printed at the end.
Use it to tell a slower machine from slower code: the numbers of different days do not compare.
"""

import os
import subprocess
import sys

CHILD = r"""
import sys, tempfile
from pathlib import Path
import torch
torch.set_num_threads(2)
from pix2pix_zero.bench.random_models import ARCHITECTURES, build_random_sd
from pix2pix_zero.bench.speed import bench_image, run_ours
steps, tmp = int(sys.argv[1]), Path(tempfile.mkdtemp())
folder = build_random_sd(tmp / "model", "sd-small")
image = bench_image(ARCHITECTURES["sd-small"]["latent"] * 8, tmp)
stages = run_ours(str(folder), image, steps, "cpu", "float32", 1, tmp).stages  # each checkout's own bench settings
print("RESULT", stages["invert"].seconds, stages["edit"].seconds)
"""


def main(steps: str, passes: int, checkouts: list[str]) -> None:
    times: dict[str, list[tuple[float, float]]] = {c: [] for c in checkouts}
    for p in range(passes):
        for checkout in checkouts if p % 2 == 0 else checkouts[::-1]:
            env = {
                **os.environ,
                "PYTHONPATH": os.path.join(checkout, "src"),
                "OMP_NUM_THREADS": "2",
                "HF_HUB_OFFLINE": "1",
            }
            run = subprocess.run([sys.executable, "-c", CHILD, steps], env=env, capture_output=True, text=True)
            result = [line for line in run.stdout.splitlines() if line.startswith("RESULT")]
            if not result:
                sys.exit(f"{checkout} failed:\n{run.stderr[-3000:]}")
            invert, edit = map(float, result[0].split()[1:])
            times[checkout].append((invert, edit))
            print(f"pass {p} {checkout}: invert {invert:.2f} s, edit {edit:.2f} s", flush=True)
    for checkout, runs in times.items():
        edits = [e for _, e in runs]
        print(
            f"{checkout}: fastest invert {min(i for i, _ in runs):.2f} s, fastest edit {min(edits):.2f} s "
            f"(mean edit {sum(edits) / len(edits):.2f} s over {len(edits)})"
        )


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3:])
