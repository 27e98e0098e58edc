"""ShapesWorld: a procedural 64x64 world of coloured shapes with captions.

Pure numpy / PIL; no model code.  Everything is deterministic given a
``numpy.random.Generator`` (sampling) or a :class:`Scene` (rendering).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 64
SUPERSAMPLE = 4

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "heart")

# Object colours and background colours are disjoint word sets with clearly
# distinct RGB values, so a caption word always says what it colours.
OBJECT_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (250, 220, 30),
    "green": (30, 160, 50),
    "blue": (30, 80, 230),
    "purple": (140, 40, 190),
}
BACKGROUND_COLORS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
    "brown": (120, 75, 40),
    "cyan": (80, 210, 220),
    "pink": (250, 170, 200),
}
COLORS: tuple[str, ...] = tuple(OBJECT_COLORS)
BG_COLORS: tuple[str, ...] = tuple(BACKGROUND_COLORS)
BACKGROUND_STYLES: tuple[str, ...] = ("plain", "gradient_h", "gradient_v", "stripes_h", "stripes_v")
SIZES: dict[str, float] = {"small": 6.0, "medium": 9.0, "large": 12.0}
SIZE_NAMES: tuple[str, ...] = tuple(SIZES)
REGIONS: tuple[str, ...] = (
    "top left",
    "top center",
    "top right",
    "center left",
    "center",
    "center right",
    "bottom left",
    "bottom center",
    "bottom right",
)
_REGION_COORDS = (13.0, 32.0, 51.0)
MAX_JITTER = 2.0
MAX_ROTATION = 30.0  # degrees, both directions
STRIPE_WIDTH = 8


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str = "medium"
    region: str = "center"
    dx: float = 0.0  # jitter in pixels from the region centre
    dy: float = 0.0
    rotation: float = 0.0  # degrees, counter-clockwise

    def __post_init__(self):
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; choose from {SHAPES}")
        if self.color not in OBJECT_COLORS:
            raise ValueError(f"unknown object colour {self.color!r}; choose from {COLORS}")
        if self.size not in SIZES:
            raise ValueError(f"unknown size {self.size!r}; choose from {SIZE_NAMES}")
        if self.region not in REGIONS:
            raise ValueError(f"unknown region {self.region!r}; choose from {REGIONS}")

    @property
    def center(self) -> tuple[float, float]:
        i = REGIONS.index(self.region)
        return (_REGION_COORDS[i % 3] + self.dx, _REGION_COORDS[i // 3] + self.dy)

    @property
    def radius(self) -> float:
        return SIZES[self.size]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Scene:
    objects: tuple[SceneObject, ...]
    background: str = "white"
    background_style: str = "plain"

    def __post_init__(self):
        object.__setattr__(self, "objects", tuple(self.objects))
        if not 1 <= len(self.objects) <= 2:
            raise ValueError("a scene has one or two objects")
        if self.background not in BACKGROUND_COLORS:
            raise ValueError(f"unknown background colour {self.background!r}; choose from {BG_COLORS}")
        if self.background_style not in BACKGROUND_STYLES:
            raise ValueError(f"unknown background style {self.background_style!r}")

    def to_dict(self) -> dict:
        return {
            "background": self.background,
            "background_style": self.background_style,
            "objects": [o.to_dict() for o in self.objects],
        }

    @classmethod
    def from_dict(cls, d: dict) -> Scene:
        return cls(
            objects=tuple(SceneObject(**o) for o in d["objects"]),
            background=d["background"],
            background_style=d["background_style"],
        )


class Rendering(NamedTuple):
    image: np.ndarray  # uint8 (64, 64, 3)
    masks: np.ndarray  # bool (n_objects, 64, 64); visible pixels (>= 50 % coverage) of each object
    objects: list  # per-object attribute dicts (shape, color, size, region, center, radius, rotation, area)


# --------------------------------------------------------------------------- geometry
@cache
def _unit_outline(shape: str) -> np.ndarray:
    """Outline of a shape of 'radius' 1 centred at the origin, y pointing down."""
    if shape == "circle":
        t = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        pts = np.stack([np.cos(t), np.sin(t)], 1)
    elif shape == "square":
        s = 0.82
        pts = np.array([[-s, -s], [s, -s], [s, s], [-s, s]])
    elif shape == "triangle":
        ang = np.deg2rad(np.array([-90.0, 30.0, 150.0]))
        pts = np.stack([np.cos(ang), np.sin(ang)], 1) * 1.08
        pts[:, 1] += 0.12
    elif shape == "star":
        ang = np.deg2rad(-90.0 + 36.0 * np.arange(10))
        r = np.where(np.arange(10) % 2 == 0, 1.08, 0.45)
        pts = np.stack([np.cos(ang) * r, np.sin(ang) * r], 1)
        pts[:, 1] += 0.06
    elif shape == "heart":
        t = np.linspace(0, 2 * np.pi, 72, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = 13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t)
        pts = np.stack([x, -y], 1) / 16.5
        pts[:, 1] += 0.1
    else:  # pragma: no cover - guarded by SceneObject
        raise ValueError(shape)
    return pts.astype(np.float64)


def shape_outline(shape: str, center: tuple[float, float], radius: float, rotation: float = 0.0) -> np.ndarray:
    """Polygon of ``shape`` with this centre, 'radius' and rotation (degrees, counter-clockwise) in pixels."""
    pts = _unit_outline(shape) * radius
    a = np.deg2rad(rotation)
    rot = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # ccw on screen (y down)
    return pts @ rot.T + np.asarray(center, dtype=np.float64)


def object_outline(obj: SceneObject, scale: float = 1.0) -> np.ndarray:
    """Polygon of ``obj`` in pixel coordinates (times ``scale``)."""
    return shape_outline(obj.shape, obj.center, obj.radius, obj.rotation) * scale


def polygon_coverage(points: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a polygon (pixel coordinates) at 64x64 (drawn at 4x, box-downsampled)."""
    big = IMAGE_SIZE * SUPERSAMPLE
    im = Image.new("L", (big, big), 0)
    pts = points * SUPERSAMPLE - 0.5  # pixel centres
    ImageDraw.Draw(im).polygon([tuple(p) for p in pts], fill=255)
    small = im.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _coverage(obj: SceneObject) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of ``obj`` at 64x64."""
    return polygon_coverage(object_outline(obj))


#: Rotation (degrees) after which each shape looks the same again; 0: every rotation looks the same.
SHAPE_SYMMETRY: dict[str, float] = {"circle": 0.0, "square": 90.0, "triangle": 120.0, "star": 72.0, "heart": 360.0}


def unit_area_and_centroid(shape: str) -> tuple[float, np.ndarray]:
    """Area and centroid of the shape's outline at radius 1 (shoelace formula)."""
    p, q = _unit_outline(shape), np.roll(_unit_outline(shape), -1, 0)
    cross = p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]
    area = cross.sum() / 2
    return abs(area), ((p + q) * cross[:, None]).sum(0) / (6 * area)


def _shade(rgb: np.ndarray) -> np.ndarray:
    """A second tone of the same colour used for gradients and stripes."""
    lum = rgb @ np.array([0.299, 0.587, 0.114]) / 255.0
    target = 0.0 if lum > 0.5 else 255.0
    return rgb * 0.72 + target * 0.28


@cache
def _background(color: str, style: str) -> np.ndarray:
    c0 = np.array(BACKGROUND_COLORS[color], dtype=np.float32)
    c1 = _shade(c0).astype(np.float32)
    n = IMAGE_SIZE
    if style == "plain":
        w = np.zeros((n, n), np.float32)
    elif style in ("gradient_h", "gradient_v"):
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        w = np.tile(ramp[None, :], (n, 1)) if style == "gradient_h" else np.tile(ramp[:, None], (1, n))
    elif style in ("stripes_h", "stripes_v"):
        band = ((np.arange(n) // STRIPE_WIDTH) % 2).astype(np.float32)
        w = np.tile(band[:, None], (1, n)) if style == "stripes_h" else np.tile(band[None, :], (n, 1))
    else:  # pragma: no cover
        raise ValueError(style)
    img = c0[None, None] * (1 - w[..., None]) + c1[None, None] * w[..., None]
    img.setflags(write=False)
    return img


def render(scene: Scene) -> Rendering:
    """Render ``scene``; returns ``Rendering(image uint8 HxWx3, masks bool [n,H,W], objects)``.

    Objects are painted in order (the second one on top); masks are the visible
    pixels of each object (coverage >= 0.5 after occlusion)."""
    img = _background(scene.background, scene.background_style).copy()
    covs = []
    for obj in scene.objects:
        a = _coverage(obj)
        col = np.array(OBJECT_COLORS[obj.color], np.float32)
        img = img * (1 - a[..., None]) + col * a[..., None]
        covs.append(a)
    vis = []
    for i, a in enumerate(covs):
        v = a.copy()
        for b in covs[i + 1 :]:
            v = v * (1 - b)
        vis.append(v >= 0.5)
    masks = np.stack(vis, 0)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    objects = []
    for obj, m in zip(scene.objects, masks):
        d = obj.to_dict()
        d.update(center=obj.center, radius=obj.radius, area=int(m.sum()))
        objects.append(d)
    return Rendering(image, masks, objects)


def render_pil(scene: Scene) -> Image.Image:
    return Image.fromarray(render(scene).image)


def render_batch(scenes: Sequence[Scene]) -> np.ndarray:
    """uint8 array (B, 64, 64, 3)."""
    return np.stack([render(s).image for s in scenes], 0)


# --------------------------------------------------------------------------- sampling
def _overlap_fraction(a: SceneObject, b: SceneObject) -> float:
    ca, cb = _coverage(a) >= 0.5, _coverage(b) >= 0.5
    inter = float((ca & cb).sum())
    return inter / max(1.0, float(min(ca.sum(), cb.sum())))


def sample_object(
    rng: np.random.Generator,
    *,
    shape: str | None = None,
    color: str | None = None,
    size: str | None = None,
    region: str | None = None,
) -> SceneObject:
    return SceneObject(
        shape=shape or SHAPES[rng.integers(len(SHAPES))],
        color=color or COLORS[rng.integers(len(COLORS))],
        size=size or SIZE_NAMES[rng.integers(len(SIZE_NAMES))],
        region=region or REGIONS[rng.integers(len(REGIONS))],
        dx=float(np.round(rng.uniform(-MAX_JITTER, MAX_JITTER), 2)),
        dy=float(np.round(rng.uniform(-MAX_JITTER, MAX_JITTER), 2)),
        rotation=float(np.round(rng.uniform(-MAX_ROTATION, MAX_ROTATION), 1)),
    )


def sample_scene(
    rng: np.random.Generator,
    *,
    num_objects: int | None = None,
    p_two: float = 0.4,
    background: str | None = None,
    background_style: str | None = None,
    shape: str | None = None,
    color: str | None = None,
    max_overlap: float = 0.08,
) -> Scene:
    """Sample a random scene.  ``shape``/``color`` force the first object's attribute."""
    if num_objects is None:
        num_objects = 2 if rng.random() < p_two else 1
    bg = background or BG_COLORS[rng.integers(len(BG_COLORS))]
    style = background_style or BACKGROUND_STYLES[rng.integers(len(BACKGROUND_STYLES))]
    first = sample_object(rng, shape=shape, color=color)
    objs = [first]
    if num_objects == 2:
        for _ in range(100):
            second = sample_object(rng)
            if second.region != first.region and _overlap_fraction(first, second) <= max_overlap:
                break
        else:  # pragma: no cover - practically unreachable
            second = dataclasses.replace(second, size="small")
        objs.append(second)
        if rng.random() < 0.5:  # forced attribute is not always the first object
            objs = objs[::-1]
    return Scene(objects=tuple(objs), background=bg, background_style=style)


def scene_from_seed(seed: int, **kw) -> Scene:
    return sample_scene(np.random.default_rng(seed), **kw)


def edit_scene(scene: Scene, object_index: int = 0, **changes) -> Scene:
    """Same scene with object ``object_index`` changed (e.g. ``shape="square"``,
    ``color="blue"``); position, size, rotation and the rest stay as they were.
    This is the ideal result of an edit such as circle -> square."""
    allowed = {"shape", "color", "size", "region", "dx", "dy", "rotation"}
    bad = set(changes) - allowed
    if bad:
        raise ValueError(f"cannot change {sorted(bad)}; allowed: {sorted(allowed)}")
    objs = list(scene.objects)
    objs[object_index] = dataclasses.replace(objs[object_index], **changes)
    return dataclasses.replace(scene, objects=tuple(objs))


#: Shapes drawn the same at every rotation: an image of one shows no rotation to keep.
ROTATION_FREE_SHAPES: tuple[str, ...] = ("circle",)


def ideal_edits(scene: Scene, object_index: int = 0, rotation_step: float = 2.5, **changes) -> list[Scene]:
    """Every scene an ideal edit may show. Usually one, ``edit_scene(...)``; but when the object is a circle (and
    ``changes`` set no rotation), its rotation is invisible, so the edited object may take any rotation the world
    draws: its own, then every ``rotation_step`` degrees within ±MAX_ROTATION."""
    kept = edit_scene(scene, object_index, **changes)
    if scene.objects[object_index].shape not in ROTATION_FREE_SHAPES or "rotation" in changes:
        return [kept]
    count = int(round(2 * MAX_ROTATION / rotation_step)) + 1
    return [kept] + [
        edit_scene(scene, object_index, rotation=float(r), **changes)
        for r in np.linspace(-MAX_ROTATION, MAX_ROTATION, count)
    ]


# --------------------------------------------------------------------------- captions
def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _with_article(phrase: str) -> str:
    return f"{_article(phrase)} {phrase}"


def background_phrase(scene: Scene) -> str:
    c = scene.background
    if scene.background_style.startswith("gradient"):
        return f"{c} gradient"
    if scene.background_style.startswith("stripes"):
        return f"striped {c}"
    return c


def _object_phrase(obj: SceneObject, rng: np.random.Generator | None) -> str:
    if rng is None:
        return _with_article(f"{obj.size} {obj.color} {obj.shape}") + f" in the {obj.region}"
    k = rng.integers(6)
    if k == 0:
        core = _with_article(f"{obj.color} {obj.shape}")
    elif k == 1:
        core = _with_article(f"{obj.size} {obj.color} {obj.shape}")
    elif k == 2:
        core = _with_article(f"{obj.color} {obj.shape}") + f" in the {obj.region}"
    elif k == 3:
        core = _with_article(f"{obj.size} {obj.color} {obj.shape}") + f" in the {obj.region}"
    elif k == 4:
        core = _with_article(f"{obj.color} {obj.shape}") + f" at the {obj.region}"
    else:
        corner = obj.region in ("top left", "top right", "bottom left", "bottom right")
        where = f" in the {obj.region} corner" if corner else f" in the {obj.region}"
        core = _with_article(f"{obj.size} {obj.color} {obj.shape}") + where
    return core


_TEMPLATES = (
    "{objs} on {bg} background",
    "{objs} on {bg} background",
    "{objs}",
    "a picture of {objs} on {bg} background",
    "a photo of {objs} on {bg} background",
    "an image of {objs} with {bg} background",
    "a drawing of {objs}",
    "{bgcap} background with {objs}",
    "{objs} in front of {bg} background",
)


def captions(scene: Scene, rng: np.random.Generator, n: int = 1) -> list[str]:
    """``n`` random phrasings of the scene (varied templates; may omit size, position
    or background, never shape or colour)."""
    out = []
    for _ in range(n):
        objs = [_object_phrase(o, rng) for o in scene.objects]
        if len(objs) == 2 and rng.random() < 0.5:
            objs = objs[::-1]
        objs_s = " and ".join(objs)
        bgp = background_phrase(scene)
        t = _TEMPLATES[rng.integers(len(_TEMPLATES))]
        s = t.format(objs=objs_s, bg=_with_article(bgp), bgcap=_with_article(bgp))
        out.append(s)
    return out


def random_caption(scene: Scene, rng: np.random.Generator) -> str:
    return captions(scene, rng, 1)[0]


def canonical_caption(scene: Scene) -> str:
    """The one fixed phrasing, e.g. ``"a small red circle in the top left and a large
    blue star in the center on a striped gray background"``."""
    objs = " and ".join(_object_phrase(o, None) for o in scene.objects)
    return f"{objs} on {_with_article(background_phrase(scene))} background"


def short_caption(scene: Scene) -> str:
    """Shape and colour only, e.g. ``"a red circle and a blue star on a gray background"``."""
    objs = " and ".join(_with_article(f"{o.color} {o.shape}") for o in scene.objects)
    return f"{objs} on {_with_article(scene.background)} background"


def world_words() -> list[str]:
    """Every word the caption generators can emit (sorted)."""
    words: set[str] = set()
    for t in _TEMPLATES:
        words.update(w for w in re.findall(r"[a-z]+", t) if w not in ("objs", "bg", "bgcap"))
    words.update(SHAPES, COLORS, BG_COLORS, SIZE_NAMES)
    for r in REGIONS:
        words.update(r.split())
    words.update(["a", "an", "and", "in", "the", "at", "on", "corner", "gradient", "striped", "background", "with"])
    return sorted(words)


def caption_words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def parse_caption(text: str) -> dict:
    """Shape / object-colour / background-colour words found in a caption, in order."""
    ws = caption_words(text)
    return {
        "shapes": [w for w in ws if w in SHAPES],
        "colors": [w for w in ws if w in OBJECT_COLORS],
        "backgrounds": [w for w in ws if w in BACKGROUND_COLORS],
    }


# --------------------------------------------------------------------------- sentence banks
SENTENCE_BANK_SEED = 20_000_000  # disjoint from training (< 10M) and evaluation (>= 10M, < 20M) seeds


def sentence_bank(word: str, n: int = 750, seed: int = SENTENCE_BANK_SEED) -> list[str]:
    """``n`` distinct world captions of random scenes that contain ``word``
    (a shape, object colour or background colour).  Deterministic."""
    if word in SHAPES:
        kw = {"shape": word}
    elif word in OBJECT_COLORS:
        kw = {"color": word}
    elif word in BACKGROUND_COLORS:
        kw = {"background": word}
    else:
        raise ValueError(f"no sentence bank for {word!r}")
    rng = np.random.default_rng([seed, sum(ord(c) * 31**i for i, c in enumerate(word))])
    seen: dict[str, None] = {}
    tries = 0
    while len(seen) < n and tries < 50 * n:
        tries += 1
        sc = sample_scene(rng, max_overlap=1.0, **kw)
        s = random_caption(sc, rng)
        if word in caption_words(s):
            seen.setdefault(s, None)
    return list(seen)


def sentence_bank_words() -> list[str]:
    return list(SHAPES) + list(COLORS) + list(BG_COLORS)


def write_sentence_banks(folder, n: int = 750, seed: int = SENTENCE_BANK_SEED) -> list[str]:
    """(Re)generate ``folder/<word>.txt`` for every shape and colour word."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for w in sentence_bank_words():
        p = folder / f"{w}.txt"
        p.write_text("\n".join(sentence_bank(w, n=n, seed=seed)) + "\n")
        written.append(str(p))
    return written


# --------------------------------------------------------------------------- seeds
# Seed ranges: training scenes use per-step seeds below 10M, evaluation (report,
# tests) uses seeds from EVAL_SEED_BASE upward, sentence banks from 20M.
EVAL_SEED_BASE = 10_000_000


def eval_scenes(num: int, seed: int = 0, **kw) -> list[Scene]:
    """Held-out scenes (seed range disjoint from training)."""
    rng = np.random.default_rng([EVAL_SEED_BASE + seed])
    return [sample_scene(rng, **kw) for _ in range(num)]


def background_image(scene: Scene) -> np.ndarray:
    """The scene's background without its objects, uint8 (64, 64, 3): separates object pixels in scored edits."""
    return np.clip(np.rint(_background(scene.background, scene.background_style)), 0, 255).astype(np.uint8)
