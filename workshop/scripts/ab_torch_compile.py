"""Invert and edit time with some UNet modules under torch.compile (inductor) and without, alternating in one process.

    python scripts/ab_torch_compile.py STEPS PASSES PATTERN
    python scripts/ab_torch_compile.py 10 4 '.*resnets\\.\\d+'        # every ResNet block
    python scripts/ab_torch_compile.py 10 4 '.*\\.(ff|attn1)'         # feed-forward and self-attention

PATTERN is a regular expression matched against the whole module key (`unet.named_modules()`), so
modules are chosen by key. The guided cross-attention layers (attn2) hold this project's recording
processor, whose Python state and early exit do not trace, so they are left to eager mode.
sd-small with random weights, the pipeline's settings, one target, 2 torch threads. The first
(compiling) run is reported apart; then PASSES passes, compiled and eager in alternating order, the
same compiled code switched on and off, and the fastest and mean of each. The largest pixel
difference between a compiled and an eager edit is printed too.
"""

import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch._dynamo

from pix2pix_zero.api import EditOptions
from pix2pix_zero.bench.speed import CAPTION, bench_image, prepare_editor, resolve_bench_model
from pix2pix_zero.config import EditConfig, InversionConfig


def main(steps: int, passes: int, pattern: str) -> None:
    torch.set_num_threads(2)
    torch._dynamo.config.recompile_limit = 256  # blocks of one class share a code object: one compile per shape
    torch._dynamo.config.accumulated_recompile_limit = 4096
    tmp = Path(tempfile.mkdtemp())
    folder, size = resolve_bench_model("sd-small", tmp)
    editor, source, targets = prepare_editor(folder, "cpu", "float32", 1, tmp)
    image = bench_image(size, tmp)
    chosen = [m for key, m in editor.components.unet.named_modules() if re.fullmatch(pattern, key)]
    if not chosen:
        sys.exit(f"no UNet module key matches {pattern!r}")
    compiled = {}
    for module in chosen:
        module.compile(dynamic=False)
        compiled[module] = module._compiled_call_impl  # nn.Module.compile() keeps the compiled call here; None is eager

    def use_compiled(on: bool) -> None:
        for module in chosen:
            module._compiled_call_impl = compiled[module] if on else None

    inv_cfg = InversionConfig(num_steps=steps, reg_loss_scale="mean")
    edit_cfg = EditConfig(num_steps=steps, guidance_scale=5.0, xa_guidance=0.1, xa_loss_scale="sum")

    def run() -> tuple[float, float, np.ndarray]:
        started = time.perf_counter()
        inversion = editor.invert(image, caption=CAPTION, config=inv_cfg, use_cache=False)
        inverted = time.perf_counter()
        result = editor.edit(inversion, source, targets, EditOptions(config=edit_cfg))
        return inverted - started, time.perf_counter() - inverted, np.asarray(result.image, dtype=np.int16)

    use_compiled(True)
    first = run()
    print(f"{len(chosen)} modules; compiling run: invert {first[0]:.2f} s, edit {first[1]:.2f} s", flush=True)
    times: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
    images: dict[bool, np.ndarray] = {}
    for p in range(passes):
        for on in (True, False) if p % 2 == 0 else (False, True):
            use_compiled(on)
            invert, edit, images[on] = run()
            times[on].append((invert, edit))
            print(f"pass {p} {'compiled' if on else 'eager'}: invert {invert:.2f} s, edit {edit:.2f} s", flush=True)
    for on in (False, True):
        edits = [e for _, e in times[on]]
        print(
            f"{'compiled' if on else 'eager'}: fastest invert {min(i for i, _ in times[on]):.2f} s, fastest edit "
            f"{min(edits):.2f} s (mean edit {sum(edits) / len(edits):.2f} s over {len(edits)})"
        )
    print(f"largest pixel difference, compiled vs eager edit: {int(np.abs(images[True] - images[False]).max())} of 255")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
