"""`pix2pix-zero shapesworld`: the bundled miniature world's commands.

`render` and `info` ship with the product. The training commands (`train`, `pool`, `export`, `report`) live in
the repository's workshop package and join this group when it is installed (`pip install -e ./workshop`
from a checkout), through the entry point group `pix2pix_zero.shapesworld_commands`.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import entry_points
from pathlib import Path

import click

from ..cli_common import user_errors

COMMAND_GROUP = "pix2pix_zero.shapesworld_commands"


@click.group(
    name="shapesworld",
    help="ShapesWorld, the bundled miniature world: what it knows (info), render scenes; with the workshop "
    "package installed (pip install -e ./workshop from a checkout) also train, pool, export and report.",
)
def shapesworld() -> None:
    pass


MAX_SCENES = 100_000
MAX_SCALE = 16  # 64 px x 16 = 1024 px
SCENE_FILE = re.compile(r"scene_\d{3,}\.(png|json)")  # the files `render` names scene_000.png, scene_000.json, ...
CAPTIONS_FILE = "captions.txt"


def _scene_name(i: int, suffix: str) -> str:
    return f"scene_{i:03d}.{suffix}"


@shapesworld.command("render", help="Write example scenes (PNG), their ground truth (JSON) and captions to a folder.")
@click.argument("out", type=click.Path(file_okay=False))
@click.option("--num", type=click.IntRange(1, MAX_SCENES), default=8, show_default=True, help="Number of scenes.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Scene seed.")
@click.option(
    "--scale",
    type=click.IntRange(1, MAX_SCALE),
    default=1,
    show_default=True,
    help="Nearest-neighbour upscaling factor of the PNGs (64 px each side times this).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an earlier render in OUT, removing its scene files this one does not rewrite (default: refuse).",
)
@user_errors
def render_cmd(out, num, seed, scale, overwrite):
    import io

    import numpy as np
    from PIL import Image

    from ..files import atomic_write
    from . import world as W

    out = Path(out)
    planned = [_scene_name(i, suffix) for i in range(num) for suffix in ("png", "json")] + [CAPTIONS_FILE]
    earlier = sorted(p.name for p in out.glob("scene_*") if SCENE_FILE.fullmatch(p.name)) if out.is_dir() else []
    if not overwrite:  # before writing anything: a render over an earlier one would leave a mix of both
        clash = next((out / name for name in planned if (out / name).exists()), None)
        if clash is None and earlier:
            clash = out / earlier[0]
        if clash is not None:
            raise click.ClickException(
                f"{clash} exists already (an earlier render?); choose another folder or pass --overwrite"
            )
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(num):
        sc = W.sample_scene(rng)
        im = Image.fromarray(W.render(sc).image)
        if scale > 1:
            im = im.resize((64 * scale, 64 * scale), Image.Resampling.NEAREST)
        png = io.BytesIO()
        im.save(png, format="PNG")
        atomic_write(out / _scene_name(i, "png"), png.getvalue(), overwrite=overwrite)
        caps = [W.canonical_caption(sc)] + W.captions(sc, rng, 3)
        truth = json.dumps({"scene": sc.to_dict(), "captions": caps}, indent=2)
        atomic_write(out / _scene_name(i, "json"), truth.encode(), overwrite=overwrite)
        lines.append(f"{_scene_name(i, 'png')}\t{caps[0]}")
    for name in sorted(set(earlier) - set(planned)):  # --overwrite: the earlier render's scenes beyond this one's
        (out / name).unlink(missing_ok=True)
    atomic_write(out / CAPTIONS_FILE, ("\n".join(lines) + "\n").encode(), overwrite=overwrite)
    click.echo(f"wrote {num} scenes to {out}")


def world_facts() -> dict:
    """What the bundled model knows, read from world.py's tables: the words it was trained on, its palette and sizes."""
    from . import BUNDLED_MODEL_DIR
    from . import world as W

    banks = sorted(p.stem for p in (BUNDLED_MODEL_DIR / "sentences").glob("*.txt"))
    return {
        "image_size": [W.IMAGE_SIZE, W.IMAGE_SIZE],
        "shapes": list(W.SHAPES),
        "object_colors": {name: list(rgb) for name, rgb in W.OBJECT_COLORS.items()},
        "background_colors": {name: list(rgb) for name, rgb in W.BACKGROUND_COLORS.items()},
        "background_styles": list(W.BACKGROUND_STYLES),
        "sizes": {name: {"radius_px": radius} for name, radius in W.SIZES.items()},
        "regions": list(W.REGIONS),
        "max_rotation_degrees": W.MAX_ROTATION,
        "objects_per_scene": [1, 2],
        "sentence_banks": banks,
        "words": W.world_words(),
        "example_caption": W.canonical_caption(W.scene_from_seed(0)),
    }


@shapesworld.command(
    "info",
    help="What the bundled model knows: its words, palette (RGB), object sizes and image "
    "size; concepts outside these words get template sentences it was never trained on.",
)
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
def info_cmd(as_json: bool) -> None:
    facts = world_facts()
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    size = facts["image_size"]
    click.echo(
        f"image:        {size[0]}x{size[1]} pixels, square (a non-square input is padded with its border colour "
        "to a square, then cropped back)"
    )
    click.echo(f"shapes:       {', '.join(facts['shapes'])}")
    click.echo("object colours (RGB; the model knows only these: use colours close to them):")
    for name, rgb in facts["object_colors"].items():
        click.echo(f"  {name:10s} {tuple(rgb)}")
    click.echo("background colours (RGB):")
    for name, rgb in facts["background_colors"].items():
        click.echo(f"  {name:10s} {tuple(rgb)}")
    click.echo(f"backgrounds:  {', '.join(facts['background_styles'])}")
    click.echo(
        "sizes:        " + ", ".join(f"{name} (radius {s['radius_px']:g} px)" for name, s in facts["sizes"].items())
    )
    click.echo(f"positions:    {', '.join(facts['regions'])}; rotated up to ±{facts['max_rotation_degrees']:g}°")
    click.echo("objects:      one or two per scene")
    click.echo(
        f"banks:        {', '.join(facts['sentence_banks'])} (edit concepts: `pix2pix-zero direction list --banks`)"
    )
    click.echo(f"words:        {' '.join(facts['words'])}")
    click.echo(f"caption:      e.g. '{facts['example_caption']}'")


def attach_installed_commands(group: click.Group) -> None:
    """Add the commands other installed packages register for this group (the workshop's training commands)."""
    for entry in entry_points(group=COMMAND_GROUP):
        if entry.name not in group.commands:
            group.add_command(entry.load(), entry.name)


attach_installed_commands(shapesworld)
