"""`pix2pix-zero shapesworld`: the bundled miniature world's commands.

`render` ships with the product. The training commands (`train`, `pool`, `export`, `report`) live in
the repository's workshop package and join this group when it is installed (`pip install -e ./workshop`
from a checkout), through the entry point group `pix2pix_zero.shapesworld_commands`.
"""

from __future__ import annotations

import json
from importlib.metadata import entry_points
from pathlib import Path

import click

COMMAND_GROUP = "pix2pix_zero.shapesworld_commands"


@click.group(name="shapesworld", help="ShapesWorld, the bundled miniature world: render scenes; with the workshop "
             "package installed (pip install -e ./workshop from a checkout) also train, pool, export and report.")
def shapesworld() -> None:
    pass


@shapesworld.command("render", help="Write example scenes (PNG), their ground truth (JSON) and captions to a folder.")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--num", type=int, default=8, show_default=True, help="Number of scenes.")
@click.option("--seed", type=int, default=0, show_default=True, help="Scene seed.")
@click.option("--scale", type=int, default=1, show_default=True, help="Nearest-neighbour upscaling factor of the PNGs.")
def render_cmd(out, num, seed, scale):
    import numpy as np
    from PIL import Image

    from . import world as W

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(num):
        sc = W.sample_scene(rng)
        im = Image.fromarray(W.render(sc).image)
        if scale > 1:
            im = im.resize((64 * scale, 64 * scale), Image.Resampling.NEAREST)
        im.save(out / f"scene_{i:03d}.png")
        caps = [W.canonical_caption(sc)] + W.captions(sc, rng, 3)
        (out / f"scene_{i:03d}.json").write_text(json.dumps({"scene": sc.to_dict(), "captions": caps}, indent=2))
        lines.append(f"scene_{i:03d}.png\t{caps[0]}")
    (out / "captions.txt").write_text("\n".join(lines) + "\n")
    click.echo(f"wrote {num} scenes to {out}")


def attach_installed_commands(group: click.Group) -> None:
    """Add the commands other installed packages register for this group (the workshop's training commands)."""
    for entry in entry_points(group=COMMAND_GROUP):
        if entry.name not in group.commands:
            group.add_command(entry.load(), entry.name)


attach_installed_commands(shapesworld)
