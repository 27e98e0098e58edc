"""How much a perfect circle->X edit loses on `iou_ideal` for drawing X at the wrong rotation.

The renderer draws the ideal edit at the circle's rotation, which is random (within the world's
range) and invisible. This renders the ideal of each quality-benchmark case upright (rotation 0)
and at the circle's rotation, and prints the mean and worst IoU between the two.

    python scripts/ideal_rotation_iou.py --task "circle->heart" --num-scenes 20
"""

import argparse

import numpy as np

from pix2pix_zero.bench import metrics, quality
from pix2pix_zero.shapesworld import world

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--task", default="circle->heart", help="a quality-benchmark task, SOURCE->TARGET")
parser.add_argument("--num-scenes", type=int, default=20, help="the first N cases of the task")
args = parser.parse_args()
for target in dict.fromkeys((args.task.partition("->")[2], "square")):  # the task's target, and a square beside it
    ious = []
    for case in quality.shapesworld_cases([args.task], args.num_scenes):
        scene = world.Scene.from_dict(case.scene)
        ideal = world.render(world.edit_scene(scene, 0, shape=target)).masks[0]
        upright = world.render(world.edit_scene(scene, 0, shape=target, rotation=0.0)).masks[0]
        ious.append(metrics.mask_iou(ideal, upright))
    print(
        f"{target}: IoU of the upright ideal with the rotated one, mean {np.mean(ious):.4f}, "
        f"worst {np.min(ious):.4f} ({len(ious)} cases)"
    )
