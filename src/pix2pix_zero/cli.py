"""The `pix2pix-zero` command line. A thin layer over the public API (api.py).

Config flags are generated from the config dataclasses, so every flag's help is the field's
documented source, and an unset flag keeps the preset's value.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import click

# transformers warns about optional vision backends on import; the CLI shows errors only.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from .cli_common import USER_ERRORS, quiet_libraries, user_errors  # noqa: F401 (USER_ERRORS: public name)
from .config import (
    MAX_IMAGE_SIDE,
    MAX_STEPS,
    PRESETS,
    ConfigValueError,
    EditConfig,
    ImageConfig,
    InversionConfig,
    Preset,
    override,
)
from .files import check_folder

RENAMED = {
    (EditConfig, "num_steps"): "steps",
    (InversionConfig, "num_steps"): "inversion-steps",
    (InversionConfig, "grid"): "inversion-grid",
}
SEED = click.IntRange(0, 2**63 - 1)  # what torch.Generator.manual_seed takes


class FiniteFloat(click.ParamType):
    """A float that is neither NaN nor infinite (click's FLOAT takes both), optionally within [low, high]."""

    name = "float"

    def __init__(self, low: float | None = None, high: float | None = None, low_open: bool = False) -> None:
        self.low, self.high, self.low_open = low, high, low_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if number != number or number in (float("inf"), float("-inf")):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        too_low = self.low is not None and (number <= self.low if self.low_open else number < self.low)
        if too_low or (self.high is not None and number > self.high):
            low = "" if self.low is None else f"{'above' if self.low_open else 'at least'} {self.low:g}"
            high = "" if self.high is None else f"at most {self.high:g}"
            self.fail(f"{value!r} must be {' and '.join(part for part in (low, high) if part)}", param, ctx)
        return number


def check_device(ctx: click.Context | None, param: click.Parameter | None, value: str) -> str:
    """--device: one torch knows and this machine has (components.check_device), as a click error naming the flag."""
    from .components import check_device as check

    try:
        return check(value)
    except ValueError as error:
        raise click.BadParameter(str(error), ctx, param) from None


def utf8_text(ctx: click.Context | None, param: click.Parameter | None, value: Any) -> Any:
    """Text options (captions, prompts, concepts) must be valid UTF-8: bytes that are not arrive as lone surrogates."""
    for text in value if isinstance(value, tuple) else (value,):
        if isinstance(text, str):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise click.BadParameter(
                    f"{text.encode('utf-8', 'replace').decode()!r} is not valid UTF-8 text; "
                    "retype it or set a UTF-8 locale",
                    ctx,
                    param,
                ) from None
    return value


SECTIONS = {InversionConfig: "inversion", EditConfig: "edit", ImageConfig: "image"}
BUNDLED_MODEL = "shapesworld"  # what --model defaults to


def preset_default_text(cls: type, name: str) -> str:
    """An unset flag's default in --help: each preset's value for the bundled model, and as written where a
    model folder's own tuning (pix2pix_zero.json) changes it."""
    from .components import preset_for

    parts = []
    for preset in sorted(PRESETS):
        written = getattr(getattr(preset_for(preset, None), SECTIONS[cls]), name)
        bundled = getattr(getattr(preset_for(preset, BUNDLED_MODEL), SECTIONS[cls]), name)
        parts.append(
            f"{preset} {bundled}"
            if bundled == written
            else f"{preset} {bundled} on {BUNDLED_MODEL}, {written} on other models"
        )
    return (
        f"[default: the --preset's value for --model: {'; '.join(parts)}; `pix2pix-zero presets -m MODEL` shows them]"
    )


def _config_options(
    cls: type, hidden: frozenset[str] = frozenset()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """click options for every field of a config dataclass, defaulting to None (= the preset's value for the model);
    fields in `hidden` keep a working flag that --help does not list."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(fields(cls)):
            flag = RENAMED.get((cls, f.name), f.name.replace("_", "-"))
            default = f.default if f.default is not MISSING else None
            bounds = f.metadata.get("bounds")
            within = f" [range: {bounds[0]:g} to {bounds[1]:g}]" if bounds else ""
            common = dict(
                default=None,
                help=f"{f.metadata.get('help', '')}{within} {preset_default_text(cls, f.name)}",
                hidden=f.name in hidden,
            )
            dest = f"{cls.__name__}__{f.name}"
            if f.type in ("bool", bool):
                command = click.option(f"--{flag}/--no-{flag}", dest, **common)(command)
            elif "choices" in f.metadata:
                command = click.option(f"--{flag}", dest, type=click.Choice(f.metadata["choices"]), **common)(command)
            else:
                kind = float if isinstance(default, float) or f.type == "float" else int
                command = click.option(f"--{flag}", dest, type=kind, **common)(command)
        return command

    return decorate


def _configs_from(options: dict[str, Any], preset: Preset) -> tuple[InversionConfig, EditConfig, ImageConfig]:
    picked: dict[type, dict[str, Any]] = {InversionConfig: {}, EditConfig: {}, ImageConfig: {}}
    for key, value in options.items():
        cls_name, _, name = key.partition("__")
        for cls in picked:
            if cls.__name__ == cls_name:
                picked[cls][name] = value
    if picked[InversionConfig].get("num_steps") is None:  # --steps sets both loops unless --inversion-steps is given
        picked[InversionConfig]["num_steps"] = picked[EditConfig].get("num_steps")
    made = {}
    for cls, base in ((EditConfig, preset.edit), (ImageConfig, preset.image), (InversionConfig, preset.inversion)):
        try:  # the edit first: --steps also sets the inversion's steps, and its error must name --steps
            made[cls] = override(base, **picked[cls])
        except ConfigValueError as error:  # named as the user typed it, before any model is loaded
            flag = RENAMED.get((cls, error.field), error.field.replace("_", "-"))
            raise click.BadParameter(error.reason, param_hint=f"'--{flag}'") from None
    return made[InversionConfig], made[EditConfig], made[ImageConfig]


def _saved_direction(
    path: Path | None, targets: Sequence[str], extra: Sequence[tuple[str, str, float]]
) -> tuple[Any, dict[str, str]] | None:
    """A direction file given with --direction, checked before the model loads: (direction, its metadata)."""
    from .directions import read_direction

    if path is None:
        return None
    if not path.is_file():
        raise click.BadParameter(f"no such file: {path}", param_hint="'--direction'")
    if len(targets) != 1 or extra:
        raise click.UsageError("--direction edits along one saved direction: give one --target and no --add")
    return read_direction(path)


def _warn_far_from_native(size: int | None, editor: Any) -> None:
    """A --size far above the model's own runs slowly and outside what the model learned: say so, and go on."""
    native = editor.components.native_size
    if size is not None and size > 4 * native:
        click.echo(
            f"warning: --size {size} is {size / native:g} times this model's native {native} px: the run is slower "
            "and the model was not trained at that size",
            err=True,
        )


def _refuse_inversion_settings(inversions: dict[Path, Any], given: dict[str, Any]) -> None:
    """Settings of captioning, preparing or inverting (`given` by flags) that differ from what a saved inversion was
    made with would do nothing to its edit: refused, not silently dropped."""
    given = {name: value for name, value in given.items() if name != "max_input_pixels"}  # a limit on reading images
    for path, inversion in inversions.items():
        made = {**asdict(inversion.config), "caption": inversion.caption, "seed": inversion.seed}
        differ = [name for name, value in given.items() if name not in made or made[name] != value]
        if differ:
            flags = ", ".join(f"--{RENAMED.get((InversionConfig, n), n.replace('_', '-'))}" for n in differ)
            raise click.UsageError(
                f"{flags} set how an image is captioned, prepared and inverted; {path} was inverted already (caption "
                f"{inversion.caption!r}, seed {inversion.seed}, other settings): edit it without them, or invert the "
                "image again"
            )


def _given_fields(options: dict[str, Any]) -> list[tuple[str, Any]]:
    """(field, value) of the inversion and image config fields set by a flag (not left at the preset's)."""
    picked = [(key.partition("__"), value) for key, value in options.items()]
    inverting = (InversionConfig.__name__, ImageConfig.__name__)
    return [(field, value) for (name, _, field), value in picked if name in inverting and value is not None]


def _given(parameter: str) -> bool:
    """Whether the user gave `parameter` (not its default)."""
    return click.get_current_context().get_parameter_source(parameter) is not click.core.ParameterSource.DEFAULT


def _refuse_existing_outputs(
    output: Path, stems: Sequence[str], targets: Sequence[str], masked: bool, overwrite: bool
) -> None:
    """Before any work (an edit that ends in "exists already" wastes the whole run): refuse when a file the run may
    write exists, unless --overwrite. `masked`: the run may write masks (one for all targets, or one per target)."""
    from .api import EditResult

    check_folder(output)
    if overwrite:
        return
    masks = [EditResult.mask_name(), *map(EditResult.mask_name, targets)] if masked else []
    for stem in stems:
        for planned in EditResult.output_paths(output, stem, targets, masks):
            for existing in (planned, planned.with_suffix(".json")):
                if existing.exists():
                    raise click.ClickException(
                        f"{existing} exists already; choose another --output or pass --overwrite"
                    )


@dataclass(frozen=True)
class ModelOptions:
    """The options every model-using command shares; `editor()` loads the model once."""

    model: str
    vae: str | None
    device: str
    dtype: str
    preset: str
    cache_dir: Path | None
    captioner: str | None
    safety_checker: bool
    sentence_model: Path | None
    quiet: bool
    verbose: bool

    def preset_settings(self) -> Preset:
        """--preset as it applies to --model: with the model folder's own measured settings, if it records any."""
        from .components import preset_for

        return preset_for(self.preset, self.model)

    def editor(self) -> Any:
        from .api import Pix2PixZero

        quiet_libraries(not self.verbose)
        return Pix2PixZero.from_pretrained(
            self.model,
            device=self.device,
            dtype=self.dtype,
            vae=self.vae,
            captioner=self.captioner,
            safety_checker=self.safety_checker,
            preset=self.preset,
            cache_dir=self.cache_dir,
            progress=not self.quiet,
            sentence_model=self.sentence_model,
        )


def _model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared model options; the command receives them packed as `opts: ModelOptions`."""

    @functools.wraps(command)
    def packed(*args: Any, **kwargs: Any) -> Any:
        opts = ModelOptions(**{name: kwargs.pop(name) for name in ModelOptions.__dataclass_fields__})
        return command(*args, opts=opts, **kwargs)

    options = [
        click.option(
            "--model",
            "-m",
            default=BUNDLED_MODEL,
            show_default=True,
            help="Stable Diffusion 1.x/2.x or SDXL model: a hub id (e.g. CompVis/stable-diffusion-v1-4, "
            "stabilityai/stable-diffusion-xl-base-1.0), a local diffusers folder, a single-file checkpoint "
            "(.safetensors/.ckpt) diffusers can convert, or 'shapesworld' (the bundled offline model).",
        ),
        click.option(
            "--vae",
            default=None,
            help="Use this VAE instead of the model's (hub id or folder), e.g. an fp16-fixed SDXL VAE that runs in "
            "half precision [default: the model's own; SDXL's runs in float32 under --dtype float16].",
        ),
        click.option(
            "--device",
            default="cpu",
            show_default=True,
            callback=check_device,
            help="Torch device: cpu, cuda, cuda:1, mps.",
        ),
        click.option(
            "--dtype",
            type=click.Choice(["float32", "float16", "bfloat16"]),
            default="float32",
            show_default=True,
            help="Model weights' dtype; float16/bfloat16 halve memory on a GPU.",
        ),
        click.option(
            "--preset",
            type=click.Choice(sorted(PRESETS)),
            default="default",
            show_default=True,
            help="'default': our best version; 'official': the authors' code step for step (see `pix2pix-zero "
            "presets`).",
        ),
        click.option(
            "--cache-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Where concept embeddings and inversions are cached [default: $PIX2PIX_ZERO_CACHE or "
            "~/.cache/pix2pix-zero].",
        ),
        click.option(
            "--captioner",
            default=None,
            help="BLIP captioning model (hub id or folder) [default: the model folder's captioner/, else "
            "Salesforce/blip-image-captioning-large].",
        ),
        click.option(
            "--safety-checker/--no-safety-checker",
            default=False,
            show_default=True,
            help="Run the model's NSFW safety checker and blank flagged outputs (off: its false positives give black "
            "images).",
        ),
        click.option(
            "--sentence-model",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            default=None,
            help="Local transformers language model (folder) that writes sentences for concepts without a bank "
            "[default: offline template sentences].",
        ),
        click.option(
            "--quiet",
            "-q",
            is_flag=True,
            help="No progress bars (shown by default for inversion, edit and sentence embedding).",
        ),
        click.option(
            "--verbose",
            "-v",
            is_flag=True,
            help="Also show diffusers' and transformers' weight-loading bars and "
            "messages (off by default: loading is not a long step).",
        ),
    ]
    for option in reversed(options):
        packed = option(packed)
    return packed


def _parse_extra(values: tuple[str, ...]) -> list[tuple[str, str, float]]:
    extra = []
    for value in values:
        parts = value.split(":")
        if len(parts) != 3:
            raise click.BadParameter(f"{value!r} is not SOURCE:TARGET:WEIGHT", param_hint="--add")
        try:
            weight = float(parts[2])
        except ValueError:
            raise click.BadParameter(f"weight {parts[2]!r} is not a number", param_hint="--add") from None
        if not -10 <= weight <= 10:  # also refuses NaN and infinities
            raise click.BadParameter(f"weight {parts[2]!r} must be a finite number from -10 to 10", param_hint="--add")
        extra.append((parts[0], parts[1], weight))
    return extra


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="pix2pix-zero")
def main() -> None:
    """pix2pix-zero: zero-shot image-to-image translation (Parmar et al., SIGGRAPH 2023).

    Give an image and an edit such as cat → dog: the image is captioned, inverted to noise with
    regularized DDIM inversion, and denoised with an edit direction in the text-embedding space (from
    the caption's own words when it names the object, else from two banks of sentences), under
    cross-attention guidance that keeps the input's structure. `default` also retraces the stored
    inversion path exactly; options share the input's self-attention and keep the input's pixels
    outside a mask (`edit --help`: --self-attention-injection, --mask; `presets` shows what a model's
    `default` turns on).
    """


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--source",
    "-s",
    required=True,
    callback=utf8_text,
    help="Concept to edit away: a word with a sentence bank (cat), any word (template sentences; the bundled model "
    "takes only the words it was trained on, `pix2pix-zero shapesworld info`), or a sentence file (.txt).",
)
@click.option(
    "--target",
    "-t",
    "targets",
    required=True,
    multiple=True,
    callback=utf8_text,
    help="Concept to edit toward; repeat for several edits of each image (one inversion, batched edits).",
)
@click.option("--caption", default=None, callback=utf8_text, help="Use this caption instead of running the captioner.")
@click.option(
    "--add",
    "extra",
    multiple=True,
    metavar="SOURCE:TARGET:WEIGHT",
    help="Add another weighted direction to every edit, e.g. --add 'cat:cat wearing a hat:0.5'; repeatable.",
)
@click.option(
    "--seed",
    type=SEED,
    default=0,
    show_default=True,
    help="Seed of every random draw (regularizer rolls, VAE sampling).",
)
@click.option(
    "--mask",
    default=None,
    metavar="FILE|auto",
    help="Where the edit may act: a mask image (white = may change; any size, resized to the image) or 'auto' "
    "(found from where the edit changes the cross-attention maps). Outside it the input's pixels are kept; "
    "written as <stem>.mask.png and shown in the grid [default: the whole image].",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Output folder.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing output files (default: refuse).")
@click.option("--no-cache", is_flag=True, help="Do not read or write the inversion cache.")
@click.option(
    "--direction",
    "direction_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Edit along a direction saved by `direction build -o` on the same model, instead of building one; "
    "--target then names the edit (one target).",
)
@_config_options(ImageConfig)
@_config_options(InversionConfig)
@_config_options(EditConfig)
@_model_options
@user_errors
def edit(
    images: tuple[Path, ...],
    source: str,
    targets: tuple[str, ...],
    caption: str | None,
    extra: tuple[str, ...],
    seed: int,
    mask: str | None,
    output: Path,
    overwrite: bool,
    no_cache: bool,
    direction_file: Path | None,
    opts: ModelOptions,
    **config_flags: Any,
) -> None:
    """Edit IMAGES (files, or inversions saved by `invert`) from --source to each --target.

    Writes, per image, <stem>.input/.reconstruction/.edit-<target>/.grid PNGs (and .mask with a mask) with the run's
    metadata embedded and in JSON sidecars.
    """
    from .api import EditOptions, Inversion
    from .files import remove_stale_temp_files
    from .images import load_image

    inversion_cfg, edit_cfg, image_cfg = _configs_from(config_flags, opts.preset_settings())
    extra_directions = _parse_extra(extra)
    saved = _saved_direction(direction_file, targets, extra_directions)
    stems = [
        p.name.removesuffix(".safetensors").removesuffix(".inversion") if p.suffix == ".safetensors" else p.stem
        for p in images
    ]
    if len(set(stems)) != len(stems):
        raise click.UsageError("two inputs share a file name; their outputs would collide")
    for path in images:
        if path.is_dir():
            raise click.ClickException(f"{path} is a folder, not an image (`pix2pix-zero batch` edits a folder)")
        if not path.is_file():
            raise click.ClickException(f"image file not found: {path}")
    masked = mask is not None or edit_cfg.auto_mask
    _refuse_existing_outputs(output, stems, targets, masked, overwrite)
    inversions = {}
    for path in images:  # every input checked before the model loads: a bad file costs no model time
        if path.suffix == ".safetensors":
            inversions[path] = Inversion.load(path)
        else:
            load_image(path, max_pixels=image_cfg.max_input_pixels)
    given = {**dict(_given_fields(config_flags)), **({"caption": caption} if caption is not None else {})}
    _refuse_inversion_settings(inversions, {**given, **({"seed": seed} if _given("seed") else {})})
    remove_stale_temp_files(output)
    editor = opts.editor()
    _warn_far_from_native(image_cfg.size, editor)
    if saved is not None and saved[1].get("model_fingerprint", editor.components.fingerprint()) != (
        editor.components.fingerprint()
    ):
        raise click.ClickException(
            f"{direction_file} was built on the model {saved[1].get('model')!r}, not on {opts.model!r}: directions "
            "belong to the text encoder they were built with; build it again with `direction build -m`"
        )
    for path, stem in zip(images, stems):
        source_image = inversions.pop(path, None) or path
        inverted = isinstance(source_image, Inversion)  # its own caption, settings and seed
        options = EditOptions(
            config=edit_cfg,
            inversion=None if inverted else inversion_cfg,
            image=None if inverted else image_cfg,
            caption=None if inverted else caption,
            seed=seed,
            mask=mask,
            extra=extra_directions,
            use_cache=not no_cache,
            direction=None if saved is None else saved[0],
        )
        result = editor.edit(source_image, source, list(targets), options)
        written = result.save(output, stem=stem, overwrite=overwrite)
        click.echo(f"{path}: caption '{result.caption}'")
        for file in written:
            click.echo(f"  wrote {file}")
        click.echo("  time: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))


@main.command()
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--caption", default=None, callback=utf8_text, help="Use this caption instead of running the captioner.")
@click.option(
    "--seed", type=SEED, default=0, show_default=True, help="Seed of the regularizer's rolls and of VAE sampling."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Inversion file to write [default: <image stem>.inversion.safetensors].",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option(
    "--steps",
    "EditConfig__num_steps",
    type=click.IntRange(1, MAX_STEPS),
    default=None,
    help="DDIM steps of the inversion; the later edit must use the same number "
    + preset_default_text(InversionConfig, "num_steps"),
)
@_config_options(ImageConfig)
@_config_options(InversionConfig, hidden=frozenset({"num_steps"}))  # --inversion-steps: a deprecated alias of --steps
@_model_options
@user_errors
def invert(
    image: Path,
    caption: str | None,
    seed: int,
    output: Path | None,
    overwrite: bool,
    opts: ModelOptions,
    **config_flags: Any,
) -> None:
    """Caption and invert IMAGE once; `edit` then takes the saved file and skips inversion."""
    if config_flags.get("InversionConfig__num_steps") is not None:
        click.echo("warning: `invert --inversion-steps` is deprecated; use --steps (the same setting)", err=True)
        if config_flags.get("EditConfig__num_steps") not in (None, config_flags["InversionConfig__num_steps"]):
            raise click.UsageError("--steps and --inversion-steps disagree; give only --steps")
    inversion_cfg, _, image_cfg = _configs_from(config_flags, opts.preset_settings())
    from .images import load_image

    output = output or Path(f"{image.stem}.inversion.safetensors")
    if output.suffix.lower() != ".safetensors":  # `edit` reads an inversion by this suffix
        raise click.BadParameter(f"{output} must end in .safetensors", param_hint="'--output'")
    check_folder(output.parent)
    if output.exists() and not overwrite:
        raise click.ClickException(f"{output} exists already; choose another --output or pass --overwrite")
    load_image(image, max_pixels=image_cfg.max_input_pixels)  # a bad image costs no model time
    editor = opts.editor()
    _warn_far_from_native(image_cfg.size, editor)
    inversion = editor.invert(image, caption=caption, config=inversion_cfg, image_config=image_cfg, seed=seed)
    inversion.save(output)
    click.echo(f"{image}: caption '{inversion.caption}'\n  wrote {output}")


@main.command()
@click.option(
    "--prompt",
    "-p",
    required=True,
    callback=utf8_text,
    help="Text prompt of the generated image (it is also the edit's caption).",
)
@click.option("--source", "-s", required=True, callback=utf8_text, help="Concept to edit away (see `edit --help`).")
@click.option(
    "--target",
    "-t",
    "targets",
    required=True,
    multiple=True,
    callback=utf8_text,
    help="Concept to edit toward; repeatable.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of the initial noise.")
@click.option(
    "--size",
    type=click.IntRange(8, MAX_IMAGE_SIDE),
    default=None,
    help="Image side in pixels, a multiple of the VAE's scale (8 on Stable Diffusion, 4 on the bundled model), "
    f"8 to {MAX_IMAGE_SIDE} [default: the model's native size].",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Output folder.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@_config_options(EditConfig)
@_model_options
@user_errors
def generate(
    prompt: str,
    source: str,
    targets: tuple[str, ...],
    seed: int,
    size: int | None,
    output: Path,
    overwrite: bool,
    opts: ModelOptions,
    **config_flags: Any,
) -> None:
    """Synthetic mode: generate from --prompt and --seed, then edit the generation.

    The edit's cross-attention guidance step and negative prompt are the preset's synthetic ones unless
    --xa-guidance or --negative-prompt is given (`presets` shows them; `official`: the authors' 0.15 and
    the empty prompt).
    """
    preset = opts.preset_settings()
    _, edit_cfg, _ = _configs_from(config_flags, replace(preset, edit=preset.synthetic_edit()))
    _refuse_existing_outputs(output, [f"seed{seed}"], targets, edit_cfg.auto_mask, overwrite)
    editor = opts.editor()
    _warn_far_from_native(size, editor)
    result = editor.generate_and_edit(prompt, source, list(targets), seed=seed, config=edit_cfg, size=size)
    for file in result.save(output, stem=f"seed{seed}", overwrite=overwrite):
        click.echo(f"wrote {file}")


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--source",
    "-s",
    default=None,
    callback=utf8_text,
    help="Concept to edit away, for every image without its own in the manifest.",
)
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    callback=utf8_text,
    help="Concept to edit toward, for every image without its own; repeatable.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output folder: images/, results.jsonl and settings.json; rerun the same command to resume (a rerun with "
    "other settings is refused: use another folder).",
)
@click.option(
    "--export-pairs",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also write input/edit pairs (A/<id>.png, B/<target>/<id>.png) for training a distilled model.",
)
@click.option("--retry-failed", is_flag=True, help="On resume, retry images recorded as failed.")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Search INPUT folders recursively.")
@click.option(
    "--seed", type=SEED, default=0, show_default=True, help="Seed of every random draw, the same for each image."
)
@click.option(
    "--mask",
    default=None,
    metavar="FILE|auto",
    help="Mask for every image without its own 'mask' column (see `edit --help`).",
)
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help="Run as a Ray Data job: one model replica per GPU (--gpus) or per CPU worker.",
)
@click.option(
    "--ray-address",
    default=None,
    help="Ray cluster address (e.g. auto, ray://host:10001) [default: start a local cluster].",
)
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    default=None,
    help="Model replicas on Ray [default: one per GPU, or one per --cpus-per-replica CPUs].",
)
@click.option("--gpus", is_flag=True, help="On Ray, give each replica one GPU (and run it on cuda).")
@click.option(
    "--cpus-per-replica",
    type=FiniteFloat(0, 1024, low_open=True),
    default=1.0,
    show_default=True,
    help="CPUs Ray reserves for each replica.",
)
@_config_options(ImageConfig)
@_config_options(InversionConfig)
@_config_options(EditConfig)
@_model_options
@user_errors
def batch(
    input_path: Path,
    source: str | None,
    targets: tuple[str, ...],
    output: Path,
    export_pairs: Path | None,
    retry_failed: bool,
    recursive: bool,
    seed: int,
    mask: str | None,
    use_ray: bool,
    ray_address: str | None,
    replicas: int | None,
    gpus: bool,
    cpus_per_replica: float,
    opts: ModelOptions,
    **config_flags: Any,
) -> None:
    """Edit a folder of images (png, jpg, webp, gif, tif, bmp) or a CSV/JSONL manifest (columns image, source,
    target, caption, mask, id).

    Resumable: results.jsonl records each finished image; rerunning skips them, and a rerun with other settings
    than settings.json records is refused. A bad image is
    recorded as failed and skipped; the command then exits with status 1.
    """
    from .batch import RESULTS_FILE, batch_settings, check_output, read_items, run_batch

    inversion_cfg, edit_cfg, image_cfg = _configs_from(config_flags, opts.preset_settings())
    skipped: list[str] = []
    items = read_items(
        input_path,
        source,
        targets,
        recursive,
        exclude=[output, *([export_pairs] if export_pairs else [])],
        on_skip=lambda path, reason: skipped.append(f"  skipped {path}: {reason}"),
        mask=mask,
    )
    for line in skipped[:20]:
        click.echo(line, err=True)
    if len(skipped) > 20:
        click.echo(f"  ... and {len(skipped) - 20} more files that are not images", err=True)
    edit_kwargs = dict(config=edit_cfg, inversion_config=inversion_cfg, image_config=image_cfg, seed=seed)
    settings = batch_settings(opts.model, opts.preset, inversion_cfg, edit_cfg, image_cfg, seed, items.defaults)
    check_output(output, settings, items, retry_failed)  # a rerun with other settings: refused before the model loads
    if use_ray:
        from .ray_batch import run_batch_on_ray

        editor_kwargs = dict(
            dtype=opts.dtype,
            vae=opts.vae,
            captioner=opts.captioner,
            preset=opts.preset,
            sentence_model=opts.sentence_model,
            cache_dir=opts.cache_dir,
        )
        summary = run_batch_on_ray(
            opts.model,
            items,
            output,
            export_pairs,
            retry_failed,
            replicas,
            gpus,
            cpus_per_replica,
            ray_address,
            not opts.quiet,
            editor_kwargs,
            **edit_kwargs,
        )
    else:
        summary = run_batch(
            opts.editor(), items, output, export_pairs, retry_failed, progress=not opts.quiet, **edit_kwargs
        )
    click.echo(
        f"{summary.done} edited, {summary.failed} failed, {summary.skipped} already done "
        f"in {summary.seconds:.1f}s; results: {output / RESULTS_FILE}"
    )
    for failure in summary.failures:
        click.echo(f"  failed {failure['id']}: {failure['error']}", err=True)
    if summary.failed:
        raise click.ClickException(
            f"{summary.failed} of {len(items)} images failed (see above and {output / RESULTS_FILE}); "
            "fix them and rerun with --retry-failed"
        )


@main.group()
def direction() -> None:
    """Build, list and delete edit directions (cached concept embeddings)."""


@direction.command("build")
@click.option(
    "--source", "-s", required=True, callback=utf8_text, help="Source concept: bank word, any word, or sentence file."
)
@click.option(
    "--target", "-t", required=True, callback=utf8_text, help="Target concept: bank word, any word, or sentence file."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also save the direction to this .safetensors file.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --output file (default: refuse).")
@_model_options
@user_errors
def direction_build(source: str, target: str, output: Path | None, overwrite: bool, opts: ModelOptions) -> None:
    """Embed both concepts' sentences (cached) and report the direction."""
    from .directions import save_direction

    if output is not None and output.exists() and not overwrite:
        raise click.ClickException(f"{output} exists already; choose another --output or pass --overwrite")
    editor = opts.editor()
    editor.check_concepts(source, [target])
    for concept in (source, target):
        sentences, origin = editor.sentences(concept)
        click.echo(f"{concept}: {len(sentences)} sentences ({origin})")
    delta = editor.direction(source, target)
    click.echo(f"direction {source} -> {target}: shape {tuple(delta.shape)}, norm {float(delta.norm()):.4f}")
    if output is not None:
        save_direction(
            output,
            delta,
            overwrite=overwrite,
            source=source,
            target=target,
            model=editor.components.model_id,
            model_fingerprint=editor.components.fingerprint(),
        )
        click.echo(f"wrote {output}")


@direction.command("list")
@click.option(
    "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Cache folder to list."
)
@click.option("--banks", is_flag=True, help="List the sentence banks instead: --model's own, then the shipped ones.")
@click.option(
    "--model",
    "-m",
    default=BUNDLED_MODEL,
    show_default=True,
    help="With --banks: the model whose own banks (its folder's sentences/) are listed first, as `edit` uses them.",
)
@user_errors
def direction_list(cache_dir: Path | None, banks: bool, model: str) -> None:
    """List cached concept embeddings (concept, sentences, model, norm), or the sentence banks a run can use."""
    from . import sentences
    from .components import resolve_model
    from .directions import ConceptCache

    if banks:
        own = Path(resolve_model(model)) / "sentences"
        own_banks = sentences.list_banks([own]) if own.is_dir() else {}
        model_banks = {key: path for key, path in own_banks.items() if path.parent == own}
        if model_banks:
            click.echo(f"banks of the model {model} (used first):")
            for key, path in model_banks.items():
                click.echo(f"  {key:22s} {len(sentences.read_sentence_file(path)):5d} sentences  {path}")
        else:
            click.echo(f"the model {model} has no banks of its own")
        click.echo("shipped banks (Stable Diffusion concepts):")
        for key, path in sentences.list_banks().items():
            shadowed = " (the model's own bank is used instead)" if key in model_banks else ""
            click.echo(f"  {key:22s} {len(sentences.read_sentence_file(path)):5d} sentences  {path}{shadowed}")
        return
    entries = ConceptCache(cache_dir).entries()
    if not entries:
        click.echo(
            "no cached concepts (they are made by `edit` and `direction build`; the bundled model's ship with it)"
        )
    for entry in entries:
        click.echo(
            f"{entry.concept:24s} {entry.num_sentences:5d} sentences  norm {entry.norm:9.3f}  {entry.model}  "
            f"{entry.path.name}"
        )


ORIGINS = {"bank": "bank", "file": "sentence file", "lm": "language model", "generated": "template generator (no bank)"}


@direction.command("show")
@click.argument("concept")
@click.option(
    "--num", "-n", type=click.IntRange(0, 100_000), default=10, show_default=True, help="How many sentences to print."
)
@_model_options
@user_errors
def direction_show(concept: str, num: int, opts: ModelOptions) -> None:
    """Show what `edit` uses for CONCEPT on --model: where its sentences come from, a sample, its stored embedding."""
    editor = opts.editor()
    found, origin = editor.sentences(concept)  # the call `edit` makes
    kind, _, where = origin.partition(":")
    click.echo(
        f"{concept}: {ORIGINS.get(kind, kind)}{' ' + where if where else ''}, {len(found)} sentences "
        f"(model {opts.model})"
    )
    for sentence in found[:num]:
        click.echo(f"  {sentence}")
    fingerprint = editor.components.fingerprint()
    stored = editor.concepts.find(concept, fingerprint, found)
    if stored is None:
        click.echo(f"not embedded yet: the first edit with it embeds the {len(found)} sentences once, then caches them")
        return
    for entry in editor.concepts.entries(fingerprint, include_shipped=True):
        if entry.path == stored:
            kind = "shipped with the model" if entry.shipped else "cached"
            click.echo(
                f"{kind}: {entry.num_sentences} sentences, model {entry.model}, norm {entry.norm:.3f}, "
                f"shape {entry.shape}, {entry.path}"
            )


@direction.command("delete")
@click.argument("concept")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Cache folder.")
def direction_delete(concept: str, cache_dir: Path | None) -> None:
    """Delete the cached embeddings of CONCEPT (all models)."""
    from .directions import ConceptCache

    removed = ConceptCache(cache_dir).delete(concept)
    if not removed:
        raise click.ClickException(f"no cached embedding for concept {concept!r}")
    for path in removed:
        click.echo(f"deleted {path}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the presets as JSON.")
@click.option(
    "--model",
    "-m",
    default=BUNDLED_MODEL,
    show_default=True,
    help="Show the presets as they apply to this model, as `edit` would use them: a folder may record its own "
    "measured settings in pix2pix_zero.json ('shapesworld', the bundled model, does).",
)
@click.option("--as-written", is_flag=True, help="Show the presets as written, without any model's own settings.")
@user_errors
def presets(as_json: bool, model: str, as_written: bool) -> None:
    """Show the presets side by side, with the values a run on --model uses."""
    from .components import preset_for

    presets_for_model = {name: preset_for(name, None if as_written else model) for name in sorted(PRESETS)}
    if not as_json:
        click.echo("presets as written (no model's own settings)" if as_written else f"presets for the model {model}")
    shown = {name: preset.to_dict() for name, preset in presets_for_model.items()}
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    names = list(shown)
    rows = []
    for section in ("inversion", "edit", "image"):
        for key in shown[names[0]][section]:
            rows.append([f"{section}.{key}"] + [str(shown[n][section][key]) for n in names])
    for key in ("synthetic_xa_guidance", "synthetic_negative_prompt"):
        rows.append([key] + [str(shown[n][key]) for n in names])
    widths = [max(len(r[i]) for r in rows + [["setting"] + names]) for i in range(len(names) + 1)]
    for row in [["setting"] + names] + rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    for name in names:
        click.echo(f"\n{name}: {presets_for_model[name].description}")


@main.command()
@click.option(
    "--image", type=click.Path(path_type=Path), default=None, help="Edit this image instead of a shipped example scene."
)
@click.option("--example", default=None, help="Name of the shipped example scene to edit [default: the first one].")
@click.option(
    "--source",
    "-s",
    default=None,
    callback=utf8_text,
    help="Concept to edit away [default: the shape the caption names].",
)
@click.option(
    "--target",
    "-t",
    "targets",
    multiple=True,
    callback=utf8_text,
    help="Concept to edit toward; repeatable [default: three other shapes].",
)
@click.option(
    "--model",
    "-m",
    default=BUNDLED_MODEL,
    show_default=True,
    help="Model: 'shapesworld' (bundled, offline) or any SD folder/hub id.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Seed of every random draw.")
@click.option(
    "--steps",
    type=click.IntRange(1, MAX_STEPS),
    default=50,
    show_default=True,
    help="DDIM steps of the inversion and the edits.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("pix2pix-zero-demo"),
    show_default=True,
    help="Output root; each run writes a new run-NNN folder inside it.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Cache folder for concept embeddings and inversions.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@user_errors
def demo(
    image: Path | None,
    example: str | None,
    source: str | None,
    targets: tuple[str, ...],
    model: str,
    seed: int,
    steps: int,
    output: Path,
    cache_dir: Path | None,
    quiet: bool,
) -> None:
    """Offline demo on the bundled ShapesWorld model: caption, invert, three edits, a labelled grid."""
    from .demo import run_demo

    check_folder(output)  # before the model loads and the edits run
    quiet_libraries()  # loading the bundled model takes a second; the inversion and edit bars stay
    run = run_demo(
        image, example, targets, source, model, output, seed, progress=not quiet, num_steps=steps, cache_dir=cache_dir
    )
    result = run.result
    click.echo(f"image:    {run.image_name} ({result.input.width}x{result.input.height})")
    click.echo(f"caption:  {result.caption}")
    click.echo("edits:    " + ", ".join(f"{e['source']} -> {e['target']}" for e in result.edits))
    click.echo(
        f"time:     load {run.load_seconds:.1f}s, " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items())
    )
    click.echo(f"grid:     {run.grid_path}")


def _attach_optional_commands() -> None:
    from .bench.commands import bench
    from .shapesworld.cli import shapesworld
    from .ui.command import ui  # imports gradio only when run

    main.add_command(bench)
    main.add_command(ui)
    main.add_command(shapesworld)


_attach_optional_commands()

if __name__ == "__main__":
    sys.exit(main())
