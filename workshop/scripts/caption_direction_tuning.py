"""The tuning runs behind the bundled model's caption-direction `default` (docs/quality-local-edits.md, "The caption
direction in default"): each variant edits the tuning scenes (scene set 1, sizes in turn) and is scored by the bench's
ShapesWorld scorer; rows go to OUT/rows.jsonl (resumable), each edit to OUT/<variant>-<case>.png.

    python workshop/scripts/caption_direction_tuning.py "VARIANT|VARIANT" "TASK|TASK" SCENES OUT [SIZES]

SIZES: "in turn" (the default: small, medium and large objects in turn), "as drawn" (the scene set's own sizes), or
"small" / "medium and large" (of the first SCENES scenes as drawn, those whose edited object has that size).

A variant is a name of VARIANTS below: settings on top of the bundled model's `default`, the edit direction given
as the caption's word swap (`word_swap`, what `direction_from="caption"` builds; the automatic mask then reads how far
the maps moved, as for any given direction), or a bench method.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import torch

from pix2pix_zero import EditOptions, Pix2PixZero, editing, guidance
from pix2pix_zero.bench import quality
from pix2pix_zero.config import override

# the settings of the caption-direction `default` before the negative prompt's runs; the negative prompt and late
# guidance are named so that every variant means the same whatever the bundled model's `default` is now
NEW = {
    "guidance_scale": 2.0,
    "negative_prompt": "caption",
    "exact_inversion": True,
    "self_attention_injection": 0.5,
    "late_guidance_factor": 1.0,
    "late_guidance_xa": 1.0,
}


# the caption direction with CFG 4 against the empty prompt (the bundled model's `default`, late guidance off)
CFG4 = {**NEW, "direction_from": "caption", "negative_prompt": "empty", "guidance_scale": 4.0}


def late_guidance(area: float, movement: float, **more: float) -> dict:
    """CFG 4, ×1.5 from half the steps for the edits found small by the source word's `area` or by how little they
    have moved (`movement`); 0 turns a test off."""
    late = {"late_guidance_factor": 1.5, "late_guidance_area": area, "late_guidance_movement": movement}
    return {"changes": {**CFG4, **late, **more}}


VARIANTS: dict[str, dict] = {
    "DDIM + word swap (no CFG)": {"method": "DDIM + word swap (no CFG)"},
    "prompt-to-prompt (CFG 2)": {"method": "prompt-to-prompt (CFG 2)"},
    "prompt-to-prompt (CFG 2), exact inversion": {"method": "prompt-to-prompt (CFG 2), exact inversion"},
    "DDIM + word swap (CFG 5)": {"method": "DDIM + word swap (CFG 5)"},
    "prompt-to-prompt (CFG 7.5)": {"method": "prompt-to-prompt (CFG 7.5)"},
    "sentence-direction default": {"changes": quality.SENTENCE_DEFAULT},
    "sentences, CFG 2, exact inversion, injection 0.5": {"changes": {**NEW, "direction_from": "sentences"}},
    "word swap, sentence-direction default otherwise": {"word_swap": True, "changes": quality.SENTENCE_DEFAULT},
    "word swap, CFG 2, exact inversion, injection 0.5": {"word_swap": True, "changes": NEW},
    "word swap, CFG 1": {"word_swap": True, "changes": {**NEW, "guidance_scale": 1.0}},
    "word swap, CFG 1.5": {"word_swap": True, "changes": {**NEW, "guidance_scale": 1.5}},
    "word swap, CFG 3": {"word_swap": True, "changes": {**NEW, "guidance_scale": 3.0}},
    "word swap, λ_xa 0": {"word_swap": True, "changes": {**NEW, "xa_guidance": 0.0}},
    "word swap, λ_xa 0.06": {"word_swap": True, "changes": {**NEW, "xa_guidance": 0.06}},
    "word swap, injection 0.3": {"word_swap": True, "changes": {**NEW, "self_attention_injection": 0.3}},
    "word swap, injection 0.8": {"word_swap": True, "changes": {**NEW, "self_attention_injection": 0.8}},
    "word swap, auto mask threshold 0.15": {"word_swap": True, "changes": {**NEW, "auto_mask_threshold": 0.15}},
    "word swap, no auto mask": {"word_swap": True, "changes": {**NEW, "auto_mask": False}},
    "caption direction (the words' mask)": {"changes": {**NEW, "direction_from": "caption"}},
    "caption direction, no exact inversion": {
        "changes": {**NEW, "direction_from": "caption", "exact_inversion": False}
    },
    "caption direction, no exact inversion, CFG 2.5": {
        "changes": {**NEW, "direction_from": "caption", "exact_inversion": False, "guidance_scale": 2.5}
    },
    **{
        f"caption direction, empty negative prompt, CFG {scale}": {
            "changes": {**NEW, "direction_from": "caption", "negative_prompt": "empty", "guidance_scale": scale}
        }
        for scale in (2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
    },
    # late guidance for every edit (a movement threshold above any movement)
    "caption direction, empty negative prompt, CFG 4.0 then 6.0 from half the steps": late_guidance(0.0, 100.0),
    # weaker guidance late is not an option of the editor: `weaker_late_guidance` below
    "caption direction, empty negative prompt, CFG 6.0 then 4.0 from half the steps": {
        "changes": {**NEW, "direction_from": "caption", "negative_prompt": "empty", "guidance_scale": 6.0},
        "late_scale": 4.0,
    },
    # CFG ×1.5 from half the steps on for the edits that have moved the latent less than 0.0575 by then, or whose
    # source word covers less than 0.085 of the image
    "caption direction, empty negative prompt, CFG 4.0, late guidance ×1.5 below 0.0575": late_guidance(0.0, 0.0575),
    "caption direction, empty negative prompt, CFG 4.0, late guidance ×1.5 below area 0.085": late_guidance(0.085, 0.0),
    # without cross-attention guidance, which holds the source word's maps where they were
    "caption direction, empty negative prompt, CFG 4.0, λ_xa 0": {"changes": {**CFG4, "xa_guidance": 0.0}},
    "caption direction, empty negative prompt, CFG 4.0, λ_xa 0.015": {"changes": {**CFG4, "xa_guidance": 0.015}},
    **{
        f"caption direction, empty negative prompt, CFG 4.0, strength {strength}": {
            "changes": {**CFG4, "strength": strength}
        }
        for strength in (1.5, 2.0)
    },
    # cross-attention guidance on every token but the edited word's, whose map (the source's outline) it would hold
    "caption direction, empty negative prompt, CFG 4.0, guidance off the edited word": {
        "changes": CFG4,
        "free_edited_word": True,
    },
    "caption direction, empty negative prompt, CFG 4.0, λ_xa 0, late guidance ×1.5 below area 0.085": late_guidance(
        0.085, 0.0, xa_guidance=0.0
    ),
    # the same for the small edits alone (found by the source word's area), an option of the editor; with and without
    # late CFG ×1.5
    **{
        f"caption direction, empty negative prompt, CFG 4.0, late λ_xa ×{xa} below area 0.085": {
            "changes": {**CFG4, "late_guidance_xa": xa, "late_guidance_area": 0.085, "late_guidance_movement": 0.0}
        }
        for xa in (0.0, 0.5)
    },
    "caption direction, empty negative prompt, CFG 4.0, late guidance ×1.5 and late λ_xa ×0.0 below area 0.085": (
        late_guidance(0.085, 0.0, late_guidance_xa=0.0)
    ),
    # cross-attention guidance for the first half of the steps only (`late_xa_off` below): the layout is held while it
    # forms, the shape is free to change after
    "caption direction, empty negative prompt, CFG 4.0, λ_xa 0 from half the steps": {
        "changes": CFG4,
        "late_xa_off": True,
    },
    # a shorter self-attention injection, which holds the input's layout (a small circle's outline) for fewer steps
    **{
        f"caption direction, empty negative prompt, CFG 4.0, injection {fraction}": {
            "changes": {**CFG4, "self_attention_injection": fraction}
        }
        for fraction in (0.0, 0.25)
    },
    # CFG 4 throughout (both tests off: no edit is strengthened), with how far each edit had moved at half the steps
    # recorded: the threshold is chosen from these and the rows of "CFG 4.0 then 6.0 from half the steps"
    # (workshop/scripts/late_guidance_threshold.py)
    "caption direction, empty negative prompt, CFG 4.0, movement at half the steps recorded": late_guidance(0.0, 0.0),
    "caption direction, empty negative prompt, CFG 4.0, no exact inversion": {
        "changes": {**CFG4, "exact_inversion": False}
    },
    "caption direction, empty negative prompt, CFG 4.0, no auto mask": {
        "changes": {
            **NEW,
            "direction_from": "caption",
            "negative_prompt": "empty",
            "guidance_scale": 4.0,
            "auto_mask": False,
        }
    },
    # synthetic mode without the automatic mask unless the name says so (synthetic mode had none before)
    "synthetic mode, caption direction, CFG 2": {
        "synthetic": {
            "direction_from": "caption",
            "guidance_scale": 2.0,
            "negative_prompt": "caption",
            "self_attention_injection": 0.5,
            "auto_mask": False,
            "late_guidance_factor": 1.0,
        }
    },
    "synthetic mode, caption direction, empty negative prompt, CFG 3": {
        "synthetic": {
            "direction_from": "caption",
            "guidance_scale": 3.0,
            "negative_prompt": "empty",
            "self_attention_injection": 0.5,
            "auto_mask": False,
            "late_guidance_factor": 1.0,
        }
    },
    **{
        f"synthetic mode, caption direction, empty negative prompt, CFG {scale}, λ_xa {xa}"
        + ", automatic mask" * mask: {
            "synthetic": {
                "direction_from": "caption",
                "guidance_scale": scale,
                "negative_prompt": "empty",
                "self_attention_injection": 0.5,
                "xa_guidance": xa,
                "auto_mask": mask,
                "late_guidance_factor": 1.0,
            }
        }
        for scale, xa, mask in ((4.0, 0.03, False), (4.0, 0.0, False), (5.0, 0.03, False), (4.0, 0.03, True))
    },
    "synthetic mode, caption direction, empty negative prompt, CFG 4.0, λ_xa 0.03, automatic mask, late guidance ×1.5 "
    "below 0.0575": {
        "synthetic": {
            "direction_from": "caption",
            "guidance_scale": 4.0,
            "negative_prompt": "empty",
            "self_attention_injection": 0.5,
            "xa_guidance": 0.03,
            "auto_mask": True,
            "late_guidance_factor": 1.5,
            "late_guidance_area": 0.0,
            "late_guidance_movement": 0.0575,
        }
    },
}


@contextmanager
def weaker_late_guidance(scale: float | None, num_steps: int = 50):
    """A probe, not an option of the editor (whose late guidance only strengthens): the edit branch's CFG scale
    becomes `scale` from half the steps on."""
    if scale is None:
        yield
        return
    calls, step = editing._Calls.edit, iter(range(num_steps))

    def edit(self, branch, *args, **kwargs):
        if next(step) >= num_steps // 2:
            branch = replace(branch, c=replace(branch.c, scale=scale))
        return calls(self, branch, *args, **kwargs)

    editing._Calls.edit = edit
    try:
        yield
    finally:
        editing._Calls.edit = calls


@contextmanager
def late_xa_off(off: bool, num_steps: int = 50):
    """A probe, not an option of the editor: cross-attention guidance takes no step from half the steps on."""
    if not off:
        yield
        return
    step, calls = editing.xa_guidance_step, iter(range(num_steps))

    def guidance(model, recorder, x, t, target, ref_maps, step_size):
        late = next(calls) >= num_steps // 2
        return step(model, recorder, x, t, target, ref_maps, 0.0 if late else step_size)

    editing.xa_guidance_step = guidance
    try:
        yield
    finally:
        editing.xa_guidance_step = step


@contextmanager
def edited_word_unguided(positions: list[int] | None):
    """A probe, not an option of the editor: the cross-attention loss leaves out the tokens at `positions`."""
    if not positions:
        yield
        return
    loss = guidance.xa_loss

    def without_word(maps, ref_maps):
        if maps.keys() != ref_maps.keys():
            return loss(maps, ref_maps)
        tokens = next(iter(maps.values())).shape[-1]
        kept = torch.ones(tokens)
        kept[positions] = 0.0
        return sum(((maps[k] - ref_maps[k]) ** 2 * kept).sum(dim=(-2, -1)).mean(dim=-1) for k in maps)

    guidance.xa_loss = without_word
    try:
        yield
    finally:
        guidance.xa_loss = loss


def run(editor: Pix2PixZero, table: dict, variant: dict, case: quality.Case, image) -> object:
    if "method" in variant:
        return table[variant["method"]].run(editor, image, case)
    base = editor.preset.edit
    if "synthetic" in variant:
        config = override(base, **{"xa_guidance": editor.preset.synthetic_xa_guidance, **variant["synthetic"]})
        return editor.generate_and_edit(case.caption, case.source, case.target, seed=case.seed, config=config)
    swap = editor.word_swap_direction(case.caption, case.source, case.target) if variant.get("word_swap") else None
    options = EditOptions(
        config=override(base, **variant["changes"]), caption=case.caption, seed=case.seed, direction=swap
    )
    free = editor.components.token_positions(case.caption, case.source) if variant.get("free_edited_word") else None
    with (
        weaker_late_guidance(variant.get("late_scale")),
        late_xa_off(variant.get("late_xa_off", False)),
        edited_word_unguided(free),
    ):
        return editor.edit(image, case.source, case.target, options)


def main(names: str, tasks: str, scenes: str, out: str, sizes: str = "in turn") -> None:
    kept_sizes = {"in turn": None, "as drawn": None, "small": {"small"}, "medium and large": {"medium", "large"}}
    if sizes not in kept_sizes:
        raise SystemExit(f"SIZES must be one of {', '.join(map(repr, kept_sizes))}, got {sizes!r}")
    torch.set_num_threads(1)
    editor = Pix2PixZero.from_pretrained(progress=False)
    table, folder = quality.methods(50), Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    cases = quality.shapesworld_cases(tasks.split("|"), int(scenes), scene_set=1, stratify_sizes=sizes == "in turn")
    if kept_sizes[sizes] is not None:
        cases = [c for c in cases if c.scene["objects"][c.edit_object]["size"] in kept_sizes[sizes]]
    scorer = quality.ShapesWorldScorer(str(editor.components.model_dir / "clip"))
    rows = folder / "rows.jsonl"
    done = {(r["method"], r["id"]) for r in map(json.loads, rows.read_text().splitlines())} if rows.is_file() else set()
    for name in names.split("|"):
        for case in cases:
            if (name, case.id) in done:
                continue
            started = time.perf_counter()
            result = run(editor, table, VARIANTS[name], case, quality._case_image(case))
            row = {"method": name, "id": case.id, "task": case.task, "status": "ok", **scorer(case, result)}
            if result.edits[0].get("late_guidance"):
                row["late_guidance"] = result.edits[0]["late_guidance"]
            row["seconds"] = time.perf_counter() - started
            result.images[0].save(folder / f"{name.replace(' ', '_').replace('/', '-')}-{case.id}.png")
            with rows.open("a") as log:
                log.write(json.dumps(row, default=float) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
