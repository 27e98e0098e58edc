"""`pix2pix-zero demo`: the whole method, offline, on the bundled ShapesWorld model.

Caption a shipped example scene (or any image), invert it once, and apply several shape edits in
one batched pass; write a labelled grid (input | reconstruction | edits) and report timings.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from .api import EditOptions, EditResult, Pix2PixZero
from .config import override
from .images import load_image


@dataclass
class DemoRun:
    result: EditResult
    source: str
    image_name: str
    grid_path: Path
    written: list[Path]
    load_seconds: float


def next_run_folder(root: Path) -> Path:
    """root/run-001, run-002, ...: each demo run gets a fresh folder, so nothing earlier is overwritten."""
    taken = [int(m.group(1)) for p in root.glob("run-*") if (m := re.fullmatch(r"run-(\d+)", p.name))]
    return root / f"run-{max(taken, default=0) + 1:03d}"


def find_shape(caption: str, shapes: tuple[str, ...]) -> str | None:
    words = re.findall(r"[a-z]+", caption.lower())
    return next((w for w in words if w in shapes), None)


def run_demo(
    image: str | Path | None = None,
    example: str | None = None,
    targets: tuple[str, ...] = (),
    source: str | None = None,
    model: str = "shapesworld",
    output: Path = Path("pix2pix-zero-demo"),
    seed: int = 0,
    progress: bool = True,
    num_steps: int = 50,
    **editor_kwargs: Any,
) -> DemoRun:
    from . import shapesworld

    if image is None:  # the picture first: a wrong name or file costs no model time
        names = shapesworld.list_examples()
        if not names:
            raise FileNotFoundError(f"no example scenes are shipped in {shapesworld.EXAMPLES_DIR}")
        name = example or names[0]
        if name not in names:
            raise ValueError(f"unknown example {name!r}; choose one of {names}")
        picture: Image.Image = load_image(shapesworld.example_path(name))
    else:
        name, picture = Path(image).stem, load_image(image)
    started = time.perf_counter()
    editor = Pix2PixZero.from_pretrained(model, progress=progress, **editor_kwargs)
    load_seconds = time.perf_counter() - started
    if source is not None:  # given concepts are checked before the inversion
        editor.check_concepts(source, list(targets) or [s for s in shapesworld.SHAPES if s != source][:1])
    started = time.perf_counter()
    inversion = editor.invert(picture, seed=seed, config=override(editor.preset.inversion, num_steps=num_steps))
    invert_seconds = time.perf_counter() - started
    found = find_shape(inversion.caption, tuple(shapesworld.SHAPES))
    if source is None and found is None:
        raise ValueError(f"the caption '{inversion.caption}' names no ShapesWorld shape; give --source")
    if source is None and found in targets:
        raise ValueError(f"the caption names a {found}, the shape edited when --source is not given: give --source")
    source = source or found
    targets = targets or tuple(s for s in shapesworld.SHAPES if s != source)[:3]
    options = EditOptions(config=override(editor.preset.edit, num_steps=num_steps))
    result = editor.edit(inversion, source=source, target=list(targets), options=options)
    result.timings["invert"] = invert_seconds  # inverted above, once, before the edit (which then reports 0)
    folder = next_run_folder(Path(output))
    written = result.save(folder, stem=name)
    grid_path = folder / f"{name}.grid.png"
    return DemoRun(result, source, name, grid_path, written, load_seconds)
