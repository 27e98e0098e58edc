"""Shape fidelity on clean ShapesWorld renders, and on renders of each other shape fitted as the target: the data
behind bench quality's CLEAN_FIDELITY threshold (docs/quality-local-edits.md, "Shape fidelity").

    python workshop/scripts/fidelity_on_renders.py 40 docs/quality-local-edits/fidelity-on-renders.json
"""

from __future__ import annotations

import json
import sys

import numpy as np

from pix2pix_zero.bench.metrics import shape_fidelity
from pix2pix_zero.bench.quality import CLEAN_FIDELITY
from pix2pix_zero.shapesworld import world


def main(per_shape: int, path: str) -> None:
    rng = np.random.default_rng(0)
    scores: dict[str, list[float]] = {}
    for shape in world.SHAPES:
        for _ in range(per_shape):
            scene = world.sample_scene(rng, num_objects=1, shape=shape)
            mask = world.render(scene).masks[0]
            clean = shape_fidelity(mask, shape)
            for key in (f"clean {shape}", f"clean {shape} {scene.objects[0].size}", "clean, all"):
                scores.setdefault(key, []).append(clean)
            for other in world.SHAPES:
                if other != shape:
                    wrong = shape_fidelity(mask, other)
                    for key in (f"{shape} fitted as {other}", "another shape, all"):
                        scores.setdefault(key, []).append(wrong)
    summary = {
        k: {
            "n": len(v),
            "min": min(v),
            "p3": float(np.percentile(v, 3)),
            "mean": float(np.mean(v)),
            "max": max(v),
            f"share >= {CLEAN_FIDELITY}": float(np.mean(np.array(v) >= CLEAN_FIDELITY)),
        }
        for k, v in sorted(scores.items())
    }
    with open(path, "w") as f:
        json.dump(summary, f, indent=1)
    for key, row in summary.items():
        print(f"{key:32s} " + "  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
