"""`pix2pix-zero bench quality`: methods × tasks over a declarative case list, scored like the paper's Table 1.

ShapesWorld (default): one-object scenes with fixed seeds per task; the renderer draws the ideal
edit, so beyond CLIP accuracy and structure distance we score mask IoU with the ideal edit,
centroid shift, colour kept and PSNR outside the object. A user's folder of images with a real
checkpoint gets CLIP accuracy and DINO structure distance. Rows go to a JSONL file one by one; a
rerun skips the (method, case) pairs already there, and only under the settings that made them
(run.json: the model's weights, the presets as tuned for it, the steps).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor
from tqdm.auto import tqdm

from .. import baselines
from ..api import EditOptions, EditResult, Pix2PixZero, has_word
from ..batch import ResultsLog
from ..components import preset_for
from ..config import PRESETS, EditConfig, ImageConfig, InversionConfig
from ..files import atomic_write, safe_name
from ..images import labelled_grid, load_image, save_png
from . import metrics

DEFAULT_TASKS = ("circle->square", "square->circle", "triangle->star", "heart->circle")


@dataclass(frozen=True)
class Case:
    id: str
    task: str
    source: str
    target: str
    caption: str
    image: str | None = None  # a file, for real images
    mask: str | None = (
        None  # a file, for real images: white where the edit may change the image (PIE-Bench's convention)
    )
    scene: dict[str, Any] | None = None  # ShapesWorld ground truth
    seed: int = 0
    edit_object: int = 0  # ShapesWorld: which of the scene's objects the edit is asked to change


@dataclass(frozen=True)
class Method:
    """A named method and its settings; `run(editor, image, case)` returns an EditResult."""

    name: str
    run: Callable[[Pix2PixZero, Any, Case], EditResult]
    settings: dict[str, Any]
    needs_source_word: bool = False  # a word swap: with no source word in the caption it leaves the image as it is


def _p2pz(
    preset: str = "default", mask: str | None = None, **changes: Any
) -> Callable[[Pix2PixZero, Any, Case], EditResult]:
    """Our method under `preset` with `changes` to its configs; `mask` 'user' gives the edit the renderer's mask of the
    edited object, dilated as a user's brush stroke would be (ShapesWorld cases only), 'auto' the automatic mask."""

    def run(editor: Pix2PixZero, image: Any, case: Case) -> EditResult:
        from ..config import override

        # the preset with the model's own measured settings, as `edit` uses it (the editor holds its own already)
        p = editor.preset if editor.preset.name == preset else preset_for(preset, editor.components.model_dir)
        inversion = override(
            p.inversion, **{k: v for k, v in changes.items() if k in InversionConfig.__dataclass_fields__}
        )
        edit = override(p.edit, **{k: v for k, v in changes.items() if k in EditConfig.__dataclass_fields__})
        direction = (
            editor.word_swap_direction(case.caption, case.source, case.target) if changes.get("word_swap") else None
        )
        options = EditOptions(
            config=edit,
            inversion=inversion,
            caption=case.caption,
            seed=case.seed,
            direction=direction,
            mask=user_mask(case) if mask == "user" else mask,
        )
        return editor.edit(image, case.source, case.target, options)

    return run


# `default`'s edit settings on the bundled model before the caption direction (docs/quality-local-edits.md): the
# sentence-bank direction on the whole caption, CFG 5 against the caption, no exact inversion or injection, the
# automatic mask
SENTENCE_DEFAULT = {
    "direction_from": "sentences",
    "guidance_scale": 5.0,
    "negative_prompt": "caption",
    "exact_inversion": False,
    "self_attention_injection": 0.0,
    "xa_guidance": 0.03,
    "auto_mask": True,
}

USER_MASK_DILATION = 4  # pixels of a 64-pixel scene around the object: a brush stroke that covers any target shape


def user_mask(case: Case) -> Image.Image:
    """What a user would paint over the object to edit: the renderer's mask of it, dilated by USER_MASK_DILATION."""
    from ..shapesworld import world

    if case.scene is None:
        raise ValueError(f"case {case.id} has no ShapesWorld scene to take a user mask from")
    mask = world.render(world.Scene.from_dict(case.scene)).masks[case.edit_object]
    return Image.fromarray((_dilate(mask, USER_MASK_DILATION) * 255).astype(np.uint8), mode="L")


def methods(num_steps: int = 50) -> dict[str, Method]:
    """Our method, its ablations (paper Table 2) and the baselines (Table 1), at their papers' and at tuned settings,
    and two references each metric is read against: the input unchanged (through the VAE), the floor, and the target
    caption drawn from fresh noise, which keeps nothing of the input but shows how often the generator can draw the
    target for this scene at all, the ceiling of "landed"."""

    def m(name: str, run: Callable[..., EditResult], word_swap: bool = False, **settings: Any) -> Method:
        return Method(name, run, settings, needs_source_word=word_swap)

    s = num_steps

    def ours(name: str, **changes: Any) -> Method:
        """`default` with `changes` to its configs, recorded as the row's settings."""
        return m(name, _p2pz("default", num_steps=s, **changes), **changes)

    table = [
        m("pix2pix-zero", _p2pz("default", num_steps=s), preset="default"),
        m("pix2pix-zero (official)", _p2pz("official", num_steps=s), preset="official"),
        ours("pix2pix-zero, encoder-layer guidance", xa_layers="encoder"),
        ours("pix2pix-zero, authors' guidance step", guidance_mode="official"),
        # exact inversion retraces the mirror grid only
        ours("pix2pix-zero, authors' inversion grid", grid="official", exact_inversion=False),
        ours("pix2pix-zero, posterior sample", latent_sampling="sample"),
        ours("ablation: no xa guidance", xa_guidance=0.0),
        m(
            "ablation: no inversion regularization",
            _p2pz("default", num_steps=s, lambda_ac=0.0, lambda_kl=0.0),
            lambdas=0.0,
        ),
        m(
            "ablation: word swap for the direction",
            _p2pz("default", num_steps=s, word_swap=True),
            direction="word swap",
            word_swap=True,
        ),
        m(
            "DDIM + word swap (CFG 5)",
            lambda e, i, c: baselines.ddim_word_swap(e, i, c.source, c.target, c.caption, s, 5.0, c.seed),
            guidance_scale=5.0,
            word_swap=True,
        ),
        m(
            "DDIM + word swap (no CFG)",
            lambda e, i, c: baselines.ddim_word_swap(e, i, c.source, c.target, c.caption, s, 1.0, c.seed),
            guidance_scale=1.0,
            word_swap=True,
        ),
        m(
            "SDEdit + word swap (0.75, CFG 7.5)",
            lambda e, i, c: baselines.sdedit_word_swap(e, i, c.source, c.target, c.caption, s, 0.75, 7.5, c.seed),
            strength=0.75,
            guidance_scale=7.5,
            word_swap=True,
        ),
        m(
            "SDEdit + word swap (0.5, CFG 2)",
            lambda e, i, c: baselines.sdedit_word_swap(e, i, c.source, c.target, c.caption, s, 0.5, 2.0, c.seed),
            strength=0.5,
            guidance_scale=2.0,
            word_swap=True,
        ),
        m(
            "prompt-to-prompt (CFG 7.5)",
            lambda e, i, c: baselines.prompt_to_prompt_word_swap(
                e, i, c.source, c.target, c.caption, s, 7.5, seed=c.seed
            ),
            guidance_scale=7.5,
            cross_replace=0.8,
            self_replace=0.4,
            word_swap=True,
        ),
        m(
            "prompt-to-prompt (CFG 2)",
            lambda e, i, c: baselines.prompt_to_prompt_word_swap(
                e, i, c.source, c.target, c.caption, s, 2.0, seed=c.seed
            ),
            guidance_scale=2.0,
            cross_replace=0.8,
            self_replace=0.4,
            word_swap=True,
        ),
        ours("pix2pix-zero, caption direction", direction_from="caption"),
        ours("pix2pix-zero, sentence direction", direction_from="sentences"),
        ours("pix2pix-zero, sentence-direction default", **SENTENCE_DEFAULT),
        # and before the negative prompt's runs: the caption's direction with CFG 2 against the caption
        ours("pix2pix-zero, CFG 2 against the caption", guidance_scale=2.0, negative_prompt="caption"),
        # late guidance, CFG x1.5 from half the steps for small objects, by either test, at the thresholds chosen on
        # the bundled model's tuning scenes (docs/quality-local-edits.md, "Late guidance")
        ours("pix2pix-zero, late guidance by area", late_guidance_factor=1.5, late_guidance_area=0.085),
        ours(
            "pix2pix-zero, late guidance by movement",
            late_guidance_factor=1.5,
            late_guidance_area=0.0,
            late_guidance_movement=0.0575,
        ),
        # no cross-attention guidance from half the steps for small objects, by the source word's area
        ours("pix2pix-zero, late cross-attention guidance off by area", late_guidance_xa=0.0, late_guidance_area=0.085),
        # the options of local edits, alone and together (ablation rows of the exact-inversion / injection / mask work)
        ours("pix2pix-zero, exact inversion", exact_inversion=True),
        ours("pix2pix-zero, self-attention injection 0.5", self_attention_injection=0.5),
        m("pix2pix-zero, user mask", _p2pz("default", "user", num_steps=s), mask="user (object, dilated)"),
        m("pix2pix-zero, auto mask", _p2pz("default", "auto", num_steps=s), mask="auto"),
        m(
            "pix2pix-zero, exact inversion + injection 0.5",
            _p2pz("default", num_steps=s, exact_inversion=True, self_attention_injection=0.5),
            exact_inversion=True,
            self_attention_injection=0.5,
        ),
        m(
            "pix2pix-zero, exact inversion + injection 0.5 + user mask",
            _p2pz("default", "user", num_steps=s, exact_inversion=True, self_attention_injection=0.5),
            exact_inversion=True,
            self_attention_injection=0.5,
            mask="user (object, dilated)",
        ),
        m(
            "pix2pix-zero, exact inversion + injection 0.5 + auto mask",
            _p2pz("default", "auto", num_steps=s, exact_inversion=True, self_attention_injection=0.5),
            exact_inversion=True,
            self_attention_injection=0.5,
            mask="auto",
        ),
        m(
            "DDIM + word swap (no CFG), exact inversion",
            lambda e, i, c: baselines.ddim_word_swap(
                e, i, c.source, c.target, c.caption, s, 1.0, c.seed, exact_inversion=True
            ),
            guidance_scale=1.0,
            exact_inversion=True,
            word_swap=True,
        ),
        m(
            "prompt-to-prompt (CFG 2), exact inversion",
            lambda e, i, c: baselines.prompt_to_prompt_word_swap(
                e, i, c.source, c.target, c.caption, s, 2.0, seed=c.seed, exact_inversion=True
            ),
            guidance_scale=2.0,
            cross_replace=0.8,
            self_replace=0.4,
            exact_inversion=True,
            word_swap=True,
        ),
        m(
            "pix2pix-zero, synthetic mode (generate from the caption)",
            lambda e, i, c: e.generate_and_edit(c.caption, c.source, c.target, seed=c.seed),
            mode="synthetic",
        ),
        m(  # synthetic mode as it ran before it honoured the automatic mask
            "pix2pix-zero, synthetic mode, no automatic mask",
            lambda e, i, c: e.generate_and_edit(c.caption, c.source, c.target, seed=c.seed, auto_mask=False),
            mode="synthetic",
            auto_mask=False,
        ),
        m(
            "reference: no edit (VAE round trip)",
            lambda e, i, c: baselines.no_edit(e, i, c.source, c.target, c.caption),
        ),
        m(
            "reference: target caption from noise (CFG 5)",
            lambda e, i, c: baselines.target_from_noise(e, i, c.source, c.target, c.caption, s, 5.0, c.seed),
            guidance_scale=5.0,
            word_swap=True,
        ),
    ]
    return {method.name: method for method in table}


def sweep_methods(spec: str, num_steps: int = 50) -> list[Method]:
    """'xa_guidance=0.1,1,10': the `default` method once per value of one EditConfig or InversionConfig field."""
    name, _, values = spec.partition("=")
    defaults = {**asdict(EditConfig()), **asdict(InversionConfig())}
    if name not in defaults or name == "num_steps" or not values:
        raise ValueError(
            f"a sweep is FIELD=V1,V2,... over one of {sorted(k for k in defaults if k != 'num_steps')}; got {spec!r}"
        )
    kind = type(defaults[name])
    methods = []
    for text in values.split(","):
        value = _parse_bool(text) if kind is bool else text.strip() if kind is str else kind(text)
        methods.append(
            Method(
                f"pix2pix-zero, {name}={text.strip()}",
                _p2pz("default", num_steps=num_steps, **{name: value}),
                {name: value},
            )
        )
    return methods


def _parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
        raise ValueError(f"expected true or false, got {text!r}")
    return word in ("true", "1", "yes", "on")


TWO_OBJECTS = ", two objects"  # a task's suffix: scenes of two objects, one of them the source shape


def shapesworld_cases(
    tasks: Sequence[str] = DEFAULT_TASKS, num_scenes: int = 100, scene_set: int = 0, stratify_sizes: bool = False
) -> list[Case]:
    """`num_scenes` held-out scenes per task with the source shape; captions are the scenes' canonical ones.
    'circle->heart, two objects': scenes of two objects, one the source shape and the other neither the source nor the
    target, and the edit must change only the first. `scene_set` 0 is the reported set; any other draws other scenes
    from another seed (ids tagged with the set) to tune settings on; `stratify_sizes` makes the edited objects small,
    medium and large in turn (ids tagged 's'), so any first 3n cases hold n of each size."""
    from ..shapesworld import world

    cases = []
    for task in tasks:
        two = task.endswith(TWO_OBJECTS)
        source, _, target = task.removesuffix(TWO_OBJECTS).partition("->")
        if source not in world.SHAPES or target not in world.SHAPES:
            raise ValueError(f"ShapesWorld tasks swap shapes ({', '.join(world.SHAPES)}), got {task!r}")
        key = [world.EVAL_SEED_BASE + 500_000 + scene_set, world.SHAPES.index(source), world.SHAPES.index(target)]
        rng = np.random.default_rng(key + [2] if two else key)
        tag = (f"set{scene_set}" if scene_set else "") + ("s" if stratify_sizes else "")
        prefix = f"{source}2{target}" + ("-two" if two else "") + (f"-{tag}" if tag else "")
        while len([c for c in cases if c.task == task]) < num_scenes:
            scene = world.sample_scene(rng, num_objects=2 if two else 1, shape=source)
            edited = next(i for i, o in enumerate(scene.objects) if o.shape == source)
            others = [o.shape for i, o in enumerate(scene.objects) if i != edited]
            i = len([c for c in cases if c.task == task])
            wanted = world.SIZE_NAMES[i % len(world.SIZE_NAMES)] if stratify_sizes else scene.objects[edited].size
            if any(shape in (source, target) for shape in others) or scene.objects[edited].size != wanted:
                continue
            cases.append(
                Case(
                    f"{prefix}-{i:04d}",
                    task,
                    source,
                    target,
                    world.canonical_caption(scene),
                    scene=scene.to_dict(),
                    seed=i,
                    edit_object=edited,
                )
            )
    return cases


def folder_cases(
    folder: Path, tasks: Sequence[str], captions: dict[str, str] | None = None, masks: Path | None = None
) -> list[Case]:
    """Every image of a folder under every task ('cat->dog'); captions from a {file name: caption} map or the captioner;
    masks of the edited region, if given, from a folder of PNGs named after the images (cat.jpg -> cat.png)."""
    images = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"))
    if not images:
        raise ValueError(f"no images in {folder}")
    mask_files = {p: Path(masks) / f"{p.stem}.png" for p in images} if masks is not None else {}
    missing = [m.name for m in mask_files.values() if not m.is_file()]
    if missing:
        raise ValueError(
            f"no mask in {masks} for {len(missing)} images: "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
        )
    return [
        Case(
            f"{t.replace('->', '2')}-{p.stem}",
            t,
            t.partition("->")[0],
            t.partition("->")[2],
            (captions or {}).get(p.name, ""),
            image=str(p),
            mask=str(mask_files[p]) if p in mask_files else None,
        )
        for t in tasks
        for p in images
    ]


#: "Landed cleanly": landed, and the edited object's shape fidelity at least this. Chosen on renders
#: (docs/quality-local-edits.md, "Shape fidelity"): 97 % of clean renders of every shape and size score above it.
CLEAN_FIDELITY = 0.85


class ShapesWorldScorer:
    """Scores an edit against the renderer's ground truth, with the bundled CLIP for CLIP accuracy and structure,
    and the bundled judge (a CNN that reads renders at 100 %) for whether the edit landed."""

    def __init__(self, clip_folder: str, judge_folder: str | None = None) -> None:
        from ..shapesworld.judge import Judge

        self.clip = metrics.ClipScorer(clip_folder, templates=("a {}",))
        self.structure = self.clip.structure()
        judge = Path(judge_folder) if judge_folder else Path(clip_folder).parent / "judge"
        self.judge = Judge.load(judge) if (judge / "config.json").is_file() else None

    def __call__(self, case: Case, result: EditResult) -> dict[str, Any]:
        from ..shapesworld import world

        scene, k = world.Scene.from_dict(case.scene), case.edit_object
        if getattr(result, "config", {}).get("mode") == "synthetic":
            return self._synthetic(case, scene, result)
        ideal_scene, *other_rotations = world.ideal_edits(
            scene, k, shape=case.target
        )  # the circle's own rotation first
        source_render, ideal_render = world.render(scene), world.render(ideal_scene)
        background = np.asarray(world.background_image(scene))
        edited = np.asarray(result.image.resize(source_render.image.shape[1::-1]))
        near_edit = _dilate(source_render.masks[k] | ideal_render.masks[k], 2)
        others = [j for j in range(len(scene.objects)) if j != k]
        near_others = np.zeros_like(near_edit)
        for j in others:
            near_others |= _dilate(source_render.masks[j], 2)
        mask = metrics.object_mask(edited, background) & ~near_others  # the edited object's pixels
        ideal_mask = ideal_render.masks[k]
        judged: dict[str, Any] = {}
        if (
            self.judge is not None
        ):  # landed: the judge sees exactly the ideal edit's shapes, the target and not the source
            seen = self.judge.predict([edited])[0]["shapes"]
            landed, kept = (
                seen == sorted({o.shape for o in ideal_scene.objects}),
                seen == sorted({o.shape for o in scene.objects}),
            )
            judged = {
                "landed": float(landed),
                "kept_source": float(kept),
                "other_shape": float(not (landed or kept)),
                "judge_shapes": seen,
            }
        scores = {
            **judged,
            "clip_acc": float(self.clip.accuracy([result.image], case.source, case.target)[0]),
            "structure": float(self.structure.distance([result.input], [result.image])[0]),
            "iou_ideal": metrics.mask_iou(mask, ideal_mask),
            "iou_ideal_any_rotation": max(
                metrics.mask_iou(mask, m) for m in [ideal_mask] + [world.render(s).masks[k] for s in other_rotations]
            ),
            "iou_source": metrics.mask_iou(mask, source_render.masks[k]),
            "centroid_shift": metrics.centroid_shift(mask, ideal_mask),
            "color_kept": float(metrics.nearest_color(edited, mask, world.OBJECT_COLORS) == scene.objects[k].color),
            "fidelity": metrics.shape_fidelity(mask, case.target),
            "psnr_outside": metrics.psnr(edited, source_render.image, ~near_edit),
            "psnr_reconstruction": metrics.psnr(
                np.asarray(result.reconstruction.resize(source_render.image.shape[1::-1])), source_render.image
            ),
        }
        if "landed" in scores:
            scores["landed_cleanly"] = float(scores["landed"] and scores["fidelity"] >= CLEAN_FIDELITY)
        if others:
            scores.update(
                self._other_objects(scene, k, case.target, others, edited, background, source_render, near_edit)
            )
        return scores

    def _synthetic(self, case: Case, scene: Any, result: EditResult) -> dict[str, Any]:
        """Synthetic mode generates its own input from the caption, so there is no render to compare pixels with: the
        judge reads whether the generation drew the scene's shapes and whether the edit then shows the ideal edit's."""
        from ..shapesworld import world

        if self.judge is None:
            return {"clip_acc": float(self.clip.accuracy([result.image], case.source, case.target)[0])}
        ideal = sorted({o.shape for o in world.edit_scene(scene, case.edit_object, shape=case.target).objects})
        drawn, seen = (
            p["shapes"]
            for p in self.judge.predict(
                [np.asarray(im.convert("RGB").resize((64, 64))) for im in (result.input, result.image)]
            )
        )
        landed, kept = seen == ideal, seen == drawn
        return {
            "landed": float(landed),
            "kept_source": float(kept),
            "other_shape": float(not (landed or kept)),
            "generated_scene": float(drawn == sorted({o.shape for o in scene.objects})),
            # how much of its own input the edit kept, the edited object included (no render marks the object)
            "psnr_generation": metrics.psnr(result.image.convert("RGB"), result.input.convert("RGB")),
            "judge_shapes": seen,
            "clip_acc": float(self.clip.accuracy([result.image], case.source, case.target)[0]),
        }

    def _other_objects(
        self,
        scene: Any,
        k: int,
        target: str,
        others: list[int],
        edited: np.ndarray,
        background: np.ndarray,
        source_render: Any,
        near_edit: np.ndarray,
    ) -> dict[str, Any]:
        """Two-object scenes: what happened to the object not asked to change (its region's PSNR, its shape and colour),
        and which object changed, read by the judge on each object alone (its region pasted on the bare background)."""
        from ..shapesworld import world

        j = others[0]
        near_other = _dilate(source_render.masks[j], 2) & ~near_edit
        other_mask = metrics.object_mask(edited, background) & near_other
        scores = {
            "psnr_other": metrics.psnr(edited, source_render.image, near_other),
            "other_color_kept": float(
                metrics.nearest_color(edited, other_mask, world.OBJECT_COLORS) == scene.objects[j].color
            ),
            "other_iou": metrics.mask_iou(other_mask, source_render.masks[j]),
        }
        if self.judge is not None:
            alone = [np.where(region[..., None], edited, background) for region in (_dilate(near_edit, 1), near_other)]
            edited_read, other_read = (p["shapes"] for p in self.judge.predict(alone))
            other_kept = other_read == [scene.objects[j].shape]
            scores.update(
                {
                    "other_shape_kept": float(other_kept),
                    "edited_object_changed": float(edited_read != [scene.objects[k].shape]),
                    "right_object": float(edited_read == [target] and other_kept),
                    "wrong_object": float(not other_kept),
                }
            )
        return scores


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """`mask` grown by `radius` pixels (a square neighbourhood), stopping at the image's edges."""
    h, w = mask.shape
    padded = np.pad(mask, radius)
    out = np.zeros_like(mask)
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out |= padded[dy : dy + h, dx : dx + w]
    return out


class RealImageScorer:
    """CLIP accuracy and DINO structure distance for real images (checkpoints configurable); with a case's mask of the
    edited region, PSNR and (given an LPIPS network) LPIPS of the background."""

    def __init__(
        self,
        clip_model: str,
        dino_model: str,
        convention: str = "splice",
        device: str = "cpu",
        lpips: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> None:
        self.clip = metrics.ClipScorer(clip_model, device=device)
        self.structure = metrics.dino_structure(dino_model, convention, device)
        self.lpips = lpips

    def __call__(self, case: Case, result: EditResult) -> dict[str, float]:
        scores = {
            "clip_acc": float(self.clip.accuracy([result.image], case.source, case.target)[0]),
            "structure": float(self.structure.distance([result.input], [result.image])[0]),
        }
        if case.mask is not None:
            mask = load_image(case.mask).convert("L")
            (mw, mh), (w, h) = mask.size, load_image(case.image).size if case.image else mask.size
            if abs(mw / mh - w / h) > 0.01 * w / h:
                raise ValueError(f"mask {case.mask} is {mw}x{mh}, not the shape of its image ({w}x{h})")
            edited = np.asarray(mask.resize(result.input.size, Image.NEAREST)) >= 128
            scores["psnr_background"] = metrics.psnr(result.input, result.image, ~edited)
            if self.lpips is not None:
                scores["lpips_background"] = metrics.background_lpips(result.input, result.image, edited, self.lpips)
        return scores


RUN_FILE = "run.json"


def check_run_settings(editor: Pix2PixZero, output: Path, settings: Mapping[str, Any] | None = None) -> None:
    """Record in <output>/run.json what the rows depend on beyond each method's name (the model's weights, the presets
    as tuned for this model, `settings` such as the steps), and refuse to add rows made under anything else."""
    current = json.loads(
        json.dumps(
            {
                "model_fingerprint": editor.components.fingerprint(),
                "presets": {name: preset_for(name, editor.components.model_dir).to_dict() for name in PRESETS},
                **(settings or {}),
            },
            sort_keys=True,
            default=str,
        )
    )
    current = _without_reasons(current)
    path = output / RUN_FILE
    if path.is_file():
        recorded = _with_later_fields(_without_reasons(json.loads(path.read_text())))
        changed = sorted(k for k in {*recorded, *current} if recorded.get(k) != current.get(k))
        if changed:
            raise ValueError(
                f"{output} holds rows made with other settings ({', '.join(changed)} differ from {path}); "
                "choose another --output to keep both"
            )
        return
    if (output / "rows.jsonl").is_file():
        raise ValueError(
            f"{output / 'rows.jsonl'} has no {RUN_FILE} recording the settings that made its rows; "
            "choose another --output"
        )
    atomic_write(path, (json.dumps(current, indent=2, sort_keys=True) + "\n").encode(), overwrite=True)


def _without_reasons(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings without the prose that explains them (a tuned preset's `why`): rewording a reason changes no row."""
    presets = {
        name: {**preset, "tuning": {k: v for k, v in preset["tuning"].items() if k != "why"}}
        if "tuning" in preset
        else preset
        for name, preset in settings.get("presets", {}).items()
    }
    return {**settings, "presets": presets} if "presets" in settings else settings


def _with_later_fields(settings: dict[str, Any]) -> dict[str, Any]:
    """The recorded presets with every config field added since at its default: a new option comes in at the value
    that keeps the earlier behaviour, so rows made before it existed resume as long as it is left there."""
    sections = {"edit": EditConfig, "inversion": InversionConfig, "image": ImageConfig}
    defaults = {
        name: {f.name: f.default for f in fields(cls) if f.default is not MISSING} for name, cls in sections.items()
    }
    presets = {
        name: {
            **preset,
            **{k: {**defaults[k], **v} for k, v in preset.items() if k in sections and isinstance(v, dict)},
        }
        for name, preset in settings.get("presets", {}).items()
    }
    return json.loads(json.dumps({**settings, "presets": presets}, default=str)) if "presets" in settings else settings


def run_quality(
    editor: Pix2PixZero,
    cases: Sequence[Case],
    chosen: Sequence[Method],
    scorer: Callable[[Case, EditResult], dict[str, float]],
    output: Path,
    progress: bool = True,
    examples_per_task: int = 1,
    settings: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Run every (method, case) not yet in <output>/rows.jsonl, scoring each edit; returns all rows. Resuming needs the
    settings that made the earlier rows (`check_run_settings`); the cases go to <output>/cases.jsonl."""
    check_run_settings(editor, output, settings)
    write_cases(cases, output / "cases.jsonl")
    log = ResultsLog(output / "rows.jsonl")
    done = {(r["method"], r["id"]) for r in log.records()}
    todo = [(m, c) for m in chosen for c in cases if (m.name, c.id) not in done]
    example_ids = {
        c.id
        for task in dict.fromkeys(c.task for c in cases)
        for c in [x for x in cases if x.task == task][:examples_per_task]
    }
    for method, case in tqdm(todo, desc="bench quality", unit="edit", disable=not progress):
        image = _case_image(case)
        try:
            missing = method.needs_source_word and not has_word(case.caption, case.source)
            # a word swap with no source word in the caption has nothing to swap: the image stays as it is
            result = (
                baselines.no_edit(editor, image, case.source, case.target, case.caption)
                if missing
                else method.run(editor, image, case)
            )
            row = {"status": "ok", **scorer(case, result), "seconds": sum(result.timings.values())}
            if method.needs_source_word:
                row["source_word_missing"] = float(missing)
            if missing:  # not an edit, whatever the judge reads into the unchanged image
                row.update({k: 0.0 for k in ("landed", "landed_cleanly") if k in row})
            if case.id in example_ids:
                save_png(
                    result.image,
                    output / "examples" / f"{case.id}--{safe_name(method.name, 'method')}.png",
                    overwrite=True,
                )
                save_png(result.input, output / "examples" / f"{case.id}--input.png", overwrite=True)
                if getattr(result, "masks", None):  # where the edit could act
                    save_png(
                        result.masks[0],
                        output / "examples" / "masks" / f"{case.id}--{safe_name(method.name, 'method')}.png",
                        overwrite=True,
                    )
        except Exception as error:  # a failing case is a data point, not the end of the run
            row = {"status": "error", "error": f"{type(error).__name__}: {error}"}
        log.append({"method": method.name, "id": case.id, "task": case.task, **row})
    return log.records()


def captioned_cases(editor: Pix2PixZero, cases: Sequence[Case], captions: str) -> list[Case]:
    """The cases under a caption condition: 'exact' keeps each scene's own caption, 'captioner' gives every method the
    editor's captioner's caption of the input, as a user without a caption gets it."""
    if captions == "exact":
        return list(cases)
    if captions != "captioner":
        raise ValueError(f"captions are 'exact' or 'captioner', got {captions!r}")
    return [replace(c, caption=editor.caption(editor.prepare_image(_case_image(c)))) for c in cases]


def _case_image(case: Case) -> Image.Image:
    if case.image is not None:
        return load_image(case.image)
    from ..shapesworld import world

    return Image.fromarray(world.render(world.Scene.from_dict(case.scene)).image)


METRIC_LABELS = {
    "landed": ("landed (judge) ↑", "{:.1%}"),
    "landed_cleanly": ("landed cleanly ↑", "{:.1%}"),
    "fidelity": ("shape fidelity ↑", "{:.3f}"),
    "kept_source": ("source shape kept", "{:.1%}"),
    "other_shape": ("another shape", "{:.1%}"),
    "clip_acc": ("CLIP-Acc ↑", "{:.1%}"),
    "structure": ("Structure ↓", "{:.4f}"),
    "iou_ideal": ("IoU ideal ↑", "{:.3f}"),
    "iou_ideal_landed": ("IoU ideal, landed edits ↑", "{:.3f}"),
    "iou_ideal_any_rotation": ("IoU ideal, any rotation ↑", "{:.3f}"),
    "iou_source": ("IoU source", "{:.3f}"),
    "centroid_shift": ("centroid shift px ↓", "{:.2f}"),
    "color_kept": ("colour kept ↑", "{:.1%}"),
    "psnr_outside": ("PSNR outside dB ↑", "{:.1f}"),
    "psnr_background": ("PSNR background dB ↑", "{:.1f}"),
    "lpips_background": ("LPIPS background ↓", "{:.4f}"),
    "psnr_reconstruction": ("PSNR recon dB", "{:.1f}"),
    "source_word_missing": ("no source word in caption", "{:.1%}"),
    "generated_scene": ("generation drew the scene's shapes", "{:.1%}"),
    "landed_where_drawn": ("landed where the generation drew the scene ↑", "{:.1%}"),
    "psnr_generation": ("PSNR to the generation dB ↑", "{:.1f}"),
    "right_object": ("right object changed ↑", "{:.1%}"),
    "wrong_object": ("other object changed ↓", "{:.1%}"),
    "psnr_other": ("PSNR other object dB ↑", "{:.1f}"),
    "other_shape_kept": ("other shape kept ↑", "{:.1%}"),
    "other_color_kept": ("other colour kept ↑", "{:.1%}"),
}


# metrics read from a row's others: IoU with the ideal edit over the edits that landed only, since an edit that does
# not happen can overlap the ideal shape more than a drawn one (a circle left as it is against the ideal square);
# synthetic mode's landing over the inputs the generator drew as the caption says, since the editor cannot land the
# scene's edit on an input that lacks the scene's shapes
DERIVED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "iou_ideal_landed": lambda row: row.get("iou_ideal") if row.get("landed") else None,
    "landed_where_drawn": lambda row: row.get("landed") if row.get("generated_scene") else None,
}


def summarize(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, float]]:
    """Mean of each metric per (method, task), plus 'all' tasks; errors counted, infinite PSNRs capped at 60 dB."""
    table: dict[tuple[str, str], dict[str, list[float]]] = {}
    for row in rows:
        for task in (row["task"], "all"):
            cell = table.setdefault((row["method"], task), {"n": [], "errors": []})
            cell["n"].append(1.0)
            cell["errors"].append(float(row["status"] != "ok"))
            if row["status"] == "ok":
                for key in METRIC_LABELS:
                    value = DERIVED[key](row) if key in DERIVED else row.get(key)
                    if value is not None and not (isinstance(value, float) and math.isnan(value)):
                        cell.setdefault(key, []).append(min(float(value), 60.0))
    return {
        k: {m: (sum(v) if m in ("n", "errors") else float(np.mean(v))) for m, v in cell.items()}
        for k, cell in table.items()
    }


def format_table(summary: dict[tuple[str, str], dict[str, float]], task: str = "all") -> str:
    present = [k for k in METRIC_LABELS if any(k in cell for (_, t), cell in summary.items() if t == task)]
    lines = [
        "| method | n | " + " | ".join(METRIC_LABELS[k][0] for k in present) + " |",
        "|---|---|" + "---|" * len(present),
    ]
    for (method, t), cell in summary.items():
        if t == task:
            values = [METRIC_LABELS[k][1].format(cell[k]) if k in cell else "–" for k in present]
            errors = f" ({int(cell['errors'])} failed)" if cell["errors"] else ""
            lines.append(f"| {method} | {int(cell['n'])}{errors} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def format_by_size(rows: Sequence[dict[str, Any]], cases: Sequence[Case], task: str) -> str | None:
    """ShapesWorld only: per method, how often the edit landed on small, medium and large objects, with the failures
    as source shapes kept (k) and other shapes (o); None when no row of `task` has a scene and the judge's verdict."""
    sizes = {c.id: c.scene["objects"][c.edit_object]["size"] for c in cases if c.scene}
    counts: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        if row["task"] == task and row["status"] == "ok" and row["id"] in sizes and "landed" in row:  # judged rows
            cell = counts.setdefault(row["method"], {}).setdefault(sizes[row["id"]], [0, 0, 0, 0])
            for i, key in enumerate(("landed", "kept_source", "other_shape")):
                cell[i] += int(row[key])
            cell[3] += 1
    if not counts:
        return None
    from ..shapesworld.world import SIZES

    order = [s for s in SIZES if any(s in c for c in counts.values())]

    def shown(cell: list[int] | None) -> str:
        if cell is None:
            return "–"
        landed, kept, other, n = cell
        failures = ", ".join(f"{label} {v}" for label, v in (("k", kept), ("o", other)) if v)
        return f"{landed}/{n}" + (f" ({failures})" if failures else "")

    lines = ["| method | " + " | ".join(f"landed, {s}" for s in order) + " |", "|---|" + "---|" * len(order)]
    lines += [
        f"| {method} | " + " | ".join(shown(cells.get(s)) for s in order) + " |" for method, cells in counts.items()
    ]
    return "\n".join(lines)


def plot_quality(summary: dict[tuple[str, str], dict[str, float]], examples: Path, path: Path) -> Path | None:
    """A figure: one example row per task (input and each method), and bar charts of the main metrics."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    inputs = sorted(examples.glob("*--input.png"))
    grids = []
    for input_path in inputs:
        case_id = input_path.name.removesuffix("--input.png")
        method_images = sorted(p for p in examples.glob(f"{case_id}--*.png") if p != input_path)
        tiles = [load_image(input_path)] + [load_image(p) for p in method_images]
        labels = ["input"] + [p.stem.removeprefix(f"{case_id}--") for p in method_images]
        grids.append(labelled_grid(tiles, labels))
    keys = [
        k
        for k in (
            "landed",
            "clip_acc",
            "iou_ideal",
            "color_kept",
            "psnr_outside",
            "psnr_background",
            "lpips_background",
            "structure",
        )
        if any(k in c for c in summary.values())
    ]
    methods_all = [m for (m, t) in summary if t == "all"]
    if not grids and not keys:  # every edit failed: nothing to draw
        return None
    fig = plt.figure(figsize=(max(12, 1.3 * len(methods_all)), 3 * len(keys) + 2.2 * len(grids)))
    rows = len(grids) + len(keys)
    for i, grid in enumerate(grids):
        ax = fig.add_subplot(rows, 1, i + 1)
        ax.imshow(grid)
        ax.axis("off")
    for j, key in enumerate(keys):
        ax = fig.add_subplot(rows, 1, len(grids) + j + 1)
        values = [summary[(m, "all")].get(key, float("nan")) for m in methods_all]
        ax.bar(range(len(methods_all)), values, color="tab:blue", label=METRIC_LABELS[key][0])
        if key == "landed":  # stacked: where the edits that did not land went
            bottom = values
            for part, colour in (("kept_source", "tab:gray"), ("other_shape", "tab:orange")):
                heights = [summary[(m, "all")].get(part, 0.0) for m in methods_all]
                ax.bar(range(len(methods_all)), heights, bottom=bottom, color=colour, label=METRIC_LABELS[part][0])
                bottom = [b + h for b, h in zip(bottom, heights)]
            ax.legend(fontsize=7, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, frameon=False)  # above the bars
        ax.set_xticks(range(len(methods_all)), methods_all, rotation=20, ha="right", fontsize=7)
        ax.set_title(
            METRIC_LABELS[key][0] + (", the judge's reading of each edit" if key == "landed" else ""), fontsize=9
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def comparison_figure(
    output: Path, case_ids: Sequence[str], columns: Sequence[tuple[str, str]], mask_method: str | None, path: Path
) -> Path:
    """One PNG, a row per case: the input, each (label, method)'s saved example edit with the judge's verdict and the
    shape fidelity under it, and `mask_method`'s mask; from a run's examples/ and rows.jsonl (--examples-per-task)."""
    rows = {(r["method"], r["id"]): r for r in ResultsLog(output / "rows.jsonl").records() if r["status"] == "ok"}
    examples = output / "examples"
    lines = []
    for case_id in case_ids:
        tiles, labels = [load_image(examples / f"{case_id}--input.png")], [case_id.rsplit("-", 1)[0] + " input"]
        for label, method in columns:
            row = rows.get((method, case_id))
            if row is None:
                raise ValueError(f"{output} has no row of {method!r} on {case_id}")
            verdict = "landed" if row.get("landed") else "missed"
            verdict += f" {row['fidelity']:.2f}" if "fidelity" in row else ""
            verdict += (
                ", other kept"
                if row.get("other_shape_kept") == 1.0
                else ", other lost"
                if "other_shape_kept" in row
                else ""
            )
            tiles.append(load_image(examples / f"{case_id}--{safe_name(method, 'method')}.png"))
            labels.append(f"{label}: {verdict}")
        if mask_method is not None:
            tiles.append(
                load_image(examples / "masks" / f"{case_id}--{safe_name(mask_method, 'method')}.png").convert("RGB")
            )
            labels.append("mask")
        lines.append(labelled_grid(tiles, labels, tile=200))
    figure = Image.new("RGB", (max(g.width for g in lines), sum(g.height for g in lines)), "white")
    for i, grid in enumerate(lines):
        figure.paste(grid, (0, sum(g.height for g in lines[:i])))
    return atomic_write(path, lambda tmp: figure.save(tmp, format="PNG"), overwrite=True)


def write_cases(cases: Sequence[Case], path: Path) -> None:
    """Add `cases` to the list at `path`: a run with other tasks keeps the cases the earlier rows refer to."""
    kept = {c.id: c for c in (read_cases(path) if path.is_file() else [])}
    kept.update({c.id: c for c in cases})
    atomic_write(path, "".join(json.dumps(asdict(c)) + "\n" for c in kept.values()).encode(), overwrite=True)


def read_cases(path: Path) -> list[Case]:
    return [Case(**json.loads(line)) for line in Path(path).read_text().splitlines() if line.strip()]
