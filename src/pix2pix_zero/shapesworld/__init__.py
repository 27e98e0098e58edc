"""ShapesWorld: a miniature offline text-to-image world for pix2pix-zero.

A procedural world of coloured shapes (:mod:`.world`) with captions, and a
bundled set of tiny models trained on it (``BUNDLED_MODEL_DIR``, a diffusers
``StableDiffusionPipeline`` folder plus ``clip/``, ``captioner/``, ``judge/`` and
``sentences/``), so every stage of pix2pix-zero runs offline on a CPU in seconds
with known ground truth.
"""

from __future__ import annotations

import json
from pathlib import Path

from .world import (
    BACKGROUND_COLORS,
    BACKGROUND_STYLES,
    BG_COLORS,
    COLORS,
    OBJECT_COLORS,
    REGIONS,
    SHAPES,
    SIZE_NAMES,
    Rendering,
    Scene,
    SceneObject,
    canonical_caption,
    captions,
    edit_scene,
    eval_scenes,
    ideal_edits,
    parse_caption,
    random_caption,
    render,
    render_pil,
    sample_scene,
    scene_from_seed,
    sentence_bank,
    short_caption,
    write_sentence_banks,
)

_ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUNDLED_MODEL_DIR = _ASSETS / "shapesworld"
EXAMPLES_DIR = _ASSETS / "shapesworld_examples"


def list_examples() -> list[str]:
    """Names of the shipped example scenes (PNG + JSON ground truth in ``EXAMPLES_DIR``)."""
    return sorted(p.stem for p in EXAMPLES_DIR.glob("*.png"))


def example_path(name: str) -> Path:
    return EXAMPLES_DIR / f"{name}.png"


def load_example(name: str):
    """``(PIL image, Scene, caption)`` of a shipped example."""
    from PIL import Image

    meta = json.loads((EXAMPLES_DIR / f"{name}.json").read_text())
    return Image.open(example_path(name)).convert("RGB"), Scene.from_dict(meta["scene"]), meta["caption"]


def sentences_path(word: str, model_dir: str | Path | None = None) -> Path:
    """``sentences/<word>.txt`` of the bundled (or given) model folder."""
    return Path(model_dir or BUNDLED_MODEL_DIR) / "sentences" / f"{word}.txt"


__all__ = [
    "BACKGROUND_COLORS",
    "BACKGROUND_STYLES",
    "BG_COLORS",
    "BUNDLED_MODEL_DIR",
    "COLORS",
    "EXAMPLES_DIR",
    "OBJECT_COLORS",
    "REGIONS",
    "SHAPES",
    "SIZE_NAMES",
    "Rendering",
    "Scene",
    "SceneObject",
    "canonical_caption",
    "captions",
    "edit_scene",
    "eval_scenes",
    "example_path",
    "ideal_edits",
    "list_examples",
    "load_example",
    "parse_caption",
    "random_caption",
    "render",
    "render_pil",
    "sample_scene",
    "scene_from_seed",
    "sentence_bank",
    "sentences_path",
    "short_caption",
    "write_sentence_banks",
]
