"""Typed, frozen run configuration and the two named presets.

Every default cites its source: the paper (Parmar et al. 2023, arXiv 2302.03027), the authors'
code (pix2pixzero/pix2pix-zero, HEAD 16e5c1d) or the diffusers port. Field metadata carries the
help text that the CLI shows, so flags and docs never drift apart. Every output records
`asdict()` of the configs that made it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

MAX_STEPS = 1000  # the DDPM training schedule of every supported model has 1000 timesteps
MAX_IMAGE_SIDE = 2048  # 4x SD 1.x's native 512 px, 2x SDXL's 1024 px; larger sides outgrow any machine's memory


def _opt(default: Any, help: str, **extra: Any) -> Any:
    """A dataclass field whose metadata holds the CLI help text."""
    return field(default=default, metadata={"help": help, **extra})


class ConfigValueError(ValueError):
    """A config field holds a value outside its range; `field` names it (the CLI turns it into the flag's name)."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name} {message}")
        self.field = field_name
        self.reason = message


def _check_bounds(cfg: Any) -> None:
    """Every numeric field with `bounds` metadata: the right type, finite, and within [low, high]."""
    for f in fields(cfg):
        if "bounds" not in f.metadata:
            continue
        value, (low, high) = getattr(cfg, f.name), f.metadata["bounds"]
        if value is None and f.default is None:
            continue
        whole = f.type in ("int", "int | None", int)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (whole and not isinstance(value, int)):
            raise ConfigValueError(f.name, f"must be {'a whole number' if whole else 'a number'}, got {value!r}")
        if not math.isfinite(value) or not low <= value <= high:
            raise ConfigValueError(f.name, f"must be a finite number from {low:g} to {high:g}, got {value!r}")


@dataclass(frozen=True)
class InversionConfig:
    """Regularized DDIM inversion (paper §3.1; authors' `src/utils/ddim_inv.py`)."""

    num_steps: int = _opt(
        50,
        "DDIM inversion steps (authors' CLI --num_ddim_steps 50; the paper used 100).",
        bounds=(1, MAX_STEPS),
    )
    grid: Literal["mirror", "official"] = _opt(
        "mirror",
        "Inversion timestep grid. 'mirror': the exact reverse of the sampling grid, num_steps UNet calls. "
        "'official': the authors' grid, num_steps-2 calls with eps at the less noisy timestep "
        "(docs/method.md#the-ddim-grid).",
        choices=("mirror", "official"),
    )
    lambda_ac: float = _opt(
        20.0,
        "Weight of the auto-correlation regularizer on the predicted noise (authors' default 20).",
        bounds=(0, 1e6),
    )
    lambda_kl: float = _opt(
        20.0,
        "Weight of the KL regularizer on the predicted noise (authors' default 20).",
        bounds=(0, 1e6),
    )
    num_reg_steps: int = _opt(5, "Regularization rounds per inversion step (authors' default 5).", bounds=(1, 100))
    num_ac_rolls: int = _opt(
        5,
        "Auto-correlation gradient steps per round, each with fresh random rolls (authors' default 5).",
        bounds=(1, 100),
    )
    ac_min_roll: int = _opt(
        1,
        "Smallest roll offset of the auto-correlation loss (authors' fix of 2024-09-05: 1; a roll of 0 penalizes "
        "variance).",
        bounds=(1, 64),
    )
    ac_min_size: int = _opt(
        8,
        "The auto-correlation pyramid stops after the level whose side is at most this (authors: 8).",
        bounds=(1, 1024),
    )
    latent_sampling: Literal["mean", "sample"] = _opt(
        "mean",
        "How the VAE posterior becomes a latent: 'mean' (deterministic) or 'sample' (the authors' choice; seeded "
        "here).",
        choices=("mean", "sample"),
    )
    reg_loss_scale: Literal["mean", "sd512"] = _opt(
        "sd512",
        "Scale of the two regularizer losses. 'mean': means over the noise map, the authors' formula, so each gradient "
        "step per element grows as the latent shrinks (16x on a 4x16x16 latent against SD 1.x's 4x64x64). 'sd512': the "
        "same per-element steps as the authors' on SD 1.x at 512 px (identical there): lambda times elements / 16384 "
        "(on ShapesWorld: circle->square edits landed 64 -> 80 %, docs/quality.md).",
        choices=("mean", "sd512"),
    )

    def __post_init__(self) -> None:
        _check_bounds(self)
        if self.grid == "official" and self.num_steps < 3:
            raise ValueError("grid='official' drops the first and last timestep; it needs num_steps >= 3")


@dataclass(frozen=True)
class EditConfig:
    """Cross-attention guided editing (paper §3.2; authors' `src/utils/edit_pipeline.py`)."""

    num_steps: int = _opt(50, "DDIM sampling steps (authors' CLI --num_ddim_steps 50).", bounds=(1, MAX_STEPS))
    guidance_scale: float = _opt(
        5.0,
        "Classifier-free guidance scale: how far the edit is pushed toward the edited prompt and away from the "
        "negative prompt (authors' --negative_guidance_scale 5).",
        bounds=(0, 100),
    )
    xa_guidance: float = _opt(
        0.1,
        "Step size of the cross-attention guidance on the latent (authors: 0.1 for real images, 0.15 for synthetic).",
        bounds=(0, 100),
    )
    strength: float = _opt(
        1.0,
        "Multiplier of the edit direction: 0 edits nothing, above 1 pushes further, below 0 edits the other way "
        "(the authors' web demo offers 0 to 2).",
        bounds=(-10, 10),
    )
    direction_from: Literal["sentences", "caption"] = _opt(
        "sentences",
        "Where the edit direction comes from. 'sentences': the difference of the two concepts' mean sentence-bank "
        "embeddings, added to the whole caption (paper §3.2). 'caption': when the caption names the source concept, "
        "the caption with that word replaced by the target, minus the caption, so the edit acts on the named object "
        "and not on every word of the sentence (the prompt-pair direction PIE-Bench runs pix2pix-zero with); the "
        "sentence banks when the caption does not name it. Each output records which one was used.",
        choices=("sentences", "caption"),
    )
    negative_prompt: Literal["caption", "empty"] = _opt(
        "caption",
        "Negative prompt of CFG: the source caption (the authors' choice for real images: guidance pushes away from "
        "the "
        "unedited description) or the empty prompt (standard CFG; the authors' synthetic mode).",
        choices=("caption", "empty"),
    )
    guidance_mode: Literal["edited", "official"] = _opt(
        "edited",
        "Which attention loss moves the latent. 'edited': the edited prompt's maps vs the reference, as the paper "
        "writes "
        "it; both CFG halves then see the moved latent. 'official': the authors' CFG pair, where the carried latent "
        "is the "
        "negative half, moved by the negative prompt's maps (docs/method.md#the-guidance-step).",
        choices=("edited", "official"),
    )
    xa_layers: Literal["all", "encoder"] = _opt(
        "all",
        "Cross-attention layers the guidance compares. 'all': every one, as the authors (16 in SD 1.x). 'encoder': the "
        "down blocks and the mid block only, so the guided forward stops at the bottleneck and its backward skips the "
        "decoder half (faster; changes the result).",
        choices=("all", "encoder"),
    )
    xa_loss_scale: Literal["sum", "sd512"] = _opt(
        "sd512",
        "Scale of the attention loss the guidance step acts on. 'sum': summed over layers, pixels and tokens, the "
        "authors' "
        "formula, so the step size that works depends on how many maps there are and how large. 'sd512': the mean over "
        "those elements times their count in SD 1.x at 512 px (16 layers, 77 tokens), the same as 'sum' there, so one "
        "step size means the same on any model and resolution (on ShapesWorld: structure distance 0.0020 -> 0.0012, "
        "docs/quality.md).",
        choices=("sum", "sd512"),
    )
    fuse_reference: bool = _opt(
        True,
        "Run the reference branch's next step in the same UNet call as this step's CFG pair: the reference never "
        "depends "
        "on the edit, so the result is the same (up to float rounding) with one UNet call fewer per step. Off: a call "
        "of its own, as the authors.",
    )

    exact_inversion: bool = _opt(
        False,
        "Direct Inversion (Ju et al., ICLR 2024): after every step the reference branch is put back on the stored "
        "inversion trajectory and the edit branch gets the same correction, so a zero edit returns the input's VAE "
        "round trip exactly. Needs the 'mirror' inversion grid; no extra UNet calls.",
    )
    self_attention_injection: float = _opt(
        0.0,
        "Fraction of the first steps in which the edit branch's self-attention maps are the reference branch's (its "
        "queries and keys, with the edit's own values; Plug-and-Play, Tumanyan et al. 2023), so the layout of the "
        "input is kept while the content changes. 0 = off.",
        bounds=(0, 1),
    )
    auto_mask: bool = _opt(
        False,
        "With no --mask given, find one automatically, as --mask auto does: the input's own pixels (in synthetic mode "
        "the generation's) are kept where the edit does not act. Off in both presets as written; the bundled model's "
        "default turns it on (docs/quality-local-edits.md).",
    )
    auto_mask_threshold: float = _opt(
        0.3,
        "With --mask auto: a latent cell may change where the response, scaled to 0..1 between its lowest and highest "
        "value, is at least this (lower = a larger mask). With the caption's direction the response is where the "
        "source word attends in the reference and the target word in the edit (prompt-to-prompt's local blend); with "
        "the sentence banks' it is how much the edit changes the cross-attention maps, summed over tokens; both are "
        "averaged over layers and steps (docs/local-edits.md).",
        bounds=(0, 1),
    )
    mask_feather: int = _opt(
        2,
        "With a mask: width in pixels of the soft edge where the decoded edit is blended into the input; farther "
        "outside the mask the pixels are the input's exactly.",
        bounds=(0, 256),
    )
    late_guidance_factor: float = _opt(
        1.0,
        "From half the steps on, the CFG scale of an edit judged small by --late-guidance-area or "
        "--late-guidance-movement is multiplied by this: shapes are decided late, so a stronger CFG there can land a "
        "small object the edit would leave as it was; the other edits keep theirs (docs/local-edits.md). 1 = off.",
        bounds=(1, 10),
    )
    late_guidance_xa: float = _opt(
        1.0,
        "From half the steps on, the cross-attention guidance step (--xa-guidance) of an edit judged small by "
        "--late-guidance-area or --late-guidance-movement is multiplied by this: guidance that holds the source word's "
        "maps where they were also holds a small object's outline, so a small circle stays a circle "
        "(docs/local-edits.md). 0 = no guidance there; 1 = off.",
        bounds=(0, 1),
    )
    late_guidance_area: float = _opt(
        0.085,
        "With --late-guidance-factor or --late-guidance-xa: an edit is small when the source word's cross-attention "
        "in the reference branch, at half the steps, is at least half its peak on less than this fraction of the "
        "image (on the UNet's layers at half the latent's resolution; 0.085 chosen on the bundled model's tuning "
        "scenes). Needs the caption to name the source word. 0 = not this test.",
        bounds=(0, 1),
    )
    late_guidance_movement: float = _opt(
        0.0,
        "With --late-guidance-factor or --late-guidance-xa: an edit is small when its latent differs from the "
        "reference's by less than this at half the steps (mean absolute difference per latent element; in the model's "
        "latent units). 0 = not this test.",
        bounds=(0, 100),
    )

    def __post_init__(self) -> None:
        _check_bounds(self)


@dataclass(frozen=True)
class ImageConfig:
    """How an input image becomes model input."""

    size: int | None = _opt(
        None,
        "Long side in pixels after resizing (default: the model's native size, 512 for SD 1.x).",
        bounds=(8, MAX_IMAGE_SIDE),
    )
    keep_aspect: bool = _opt(
        True,
        "Keep the aspect ratio (long side = size, both sides rounded to the model's multiple); off = square (the "
        "authors' CLI).",
    )
    max_input_pixels: int = _opt(
        64_000_000,
        "Refuse input images with more pixels than this (decompression-bomb guard).",
        bounds=(1, 178_956_970),  # the most Pillow opens at all: 2 × its Image.MAX_IMAGE_PIXELS
    )

    def __post_init__(self) -> None:
        _check_bounds(self)


@dataclass(frozen=True)
class Preset:
    """A complete, named set of configs. `synthetic` holds the changes for generated images."""

    name: str
    inversion: InversionConfig
    edit: EditConfig
    image: ImageConfig
    description: str
    synthetic_xa_guidance: float = 0.15  # authors' edit_synthetic.py default
    # the edit's CFG negative prompt in synthetic mode; None: the edit's own (`edit.negative_prompt`)
    synthetic_negative_prompt: Literal["caption", "empty"] | None = None
    tuning: dict[str, Any] | None = None  # a model's own measured changes (see `tuned`), None for the preset as written

    def synthetic_edit(self) -> EditConfig:
        """The edit config of synthetic mode (`generate`): the edit's, with the synthetic guidance step and negative
        prompt."""
        return override(
            self.edit, xa_guidance=self.synthetic_xa_guidance, negative_prompt=self.synthetic_negative_prompt
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "preset": self.name,
            "inversion": asdict(self.inversion),
            "edit": asdict(self.edit),
            "image": asdict(self.image),
            "synthetic_xa_guidance": self.synthetic_xa_guidance,
            "synthetic_negative_prompt": self.synthetic_edit().negative_prompt,
            **({"tuning": self.tuning} if self.tuning else {}),
        }


PRESETS: dict[str, Preset] = {
    "default": Preset(
        name="default",
        inversion=InversionConfig(),
        # PIE-Bench's best pix2pix-zero row (Ju et al., ICLR 2024, Table 1, SD 1.x): Direct Inversion with the
        # prompt-pair direction, structure 61.68 -> 49.22 and background PSNR 20.44 -> 21.53 against DDIM inversion
        edit=EditConfig(direction_from="caption", exact_inversion=True),
        image=ImageConfig(),
        description=(
            "Our best version: a mirrored inversion grid (50 UNet calls each way), the VAE posterior mean, exact "
            "inversion (the edit follows the stored inversion trajectory), the direction from the caption's own words "
            "when it names the source concept (the sentence banks otherwise), and guidance from the edited prompt's "
            "attention maps, as the paper describes it, with the attention loss per map element and the regularizer "
            "losses per noise element in SD-512 units (the authors' steps on SD 1.x at 512 px, the same steps per "
            "element elsewhere)."
        ),
    ),
    "official": Preset(
        name="official",
        inversion=InversionConfig(grid="official", latent_sampling="sample", reg_loss_scale="mean"),
        edit=EditConfig(guidance_mode="official", xa_loss_scale="sum"),
        image=ImageConfig(keep_aspect=False),
        synthetic_negative_prompt="empty",  # edit_synthetic.py: CFG against "" for both branches
        description=(
            "The authors' code step for step: their inversion grid (48 calls for 50 steps), a (seeded) posterior "
            "sample, "
            "regularizer losses as means over the map, square resize, and the CFG-pair guidance on the summed "
            "attention "
            "loss that carries the negative half forward."
        ),
    ),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None


def tuned(preset: Preset, tuning: Mapping[str, Any]) -> Preset:
    """`preset` with a model's own measured settings on top (a model folder's `pix2pix_zero.json`, see
    `components.preset_for`): {"edit": {...}, "inversion": {...}, "image": {...}, "synthetic_xa_guidance": x,
    "synthetic_negative_prompt": "caption" | "empty", "why": "where it was measured"}. The name stays, so `default`
    means the best measured version on each model."""
    sections = {"edit": preset.edit, "inversion": preset.inversion, "image": preset.image}
    synthetic_keys = ("synthetic_xa_guidance", "synthetic_negative_prompt")
    unknown = set(tuning) - {*sections, *synthetic_keys, "why"}
    if unknown:
        expected = ", ".join([*sorted(sections), *synthetic_keys, "why"])
        raise ValueError(f"unknown preset tuning keys {sorted(unknown)}; expected {expected}")
    changed = {name: override(config, **tuning.get(name, {})) for name, config in sections.items()}
    synthetic = float(tuning.get("synthetic_xa_guidance", preset.synthetic_xa_guidance))
    negative = tuning.get("synthetic_negative_prompt", preset.synthetic_negative_prompt)
    if negative not in (None, "caption", "empty"):
        raise ValueError(f"synthetic_negative_prompt must be 'caption' or 'empty', got {negative!r}")
    why = f" Tuned for this model: {tuning['why']}" if "why" in tuning else ""
    return replace(
        preset,
        **changed,
        synthetic_xa_guidance=synthetic,
        synthetic_negative_prompt=negative,
        description=preset.description + why,
        tuning=dict(tuning),
    )


def override(config: Any, **changes: Any) -> Any:
    """`dataclasses.replace` that ignores None values (unset CLI flags) and unknown-field typos loudly."""
    names = {f.name for f in fields(config)}
    unknown = set(changes) - names
    if unknown:
        raise ValueError(f"unknown {type(config).__name__} fields: {sorted(unknown)}")
    return replace(config, **{k: v for k, v in changes.items() if v is not None})
