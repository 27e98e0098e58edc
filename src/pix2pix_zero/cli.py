"""The `pix2pix-zero` command line. A thin layer over the public API (api.py).

Config flags are generated from the config dataclasses, so every flag's help is the field's
documented source, and an unset flag keeps the preset's value.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

import click

# transformers warns about optional vision backends on import; the CLI shows errors only.
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from .config import PRESETS, EditConfig, ImageConfig, InversionConfig, Preset, override

RENAMED = {(EditConfig, "num_steps"): "steps", (InversionConfig, "num_steps"): "inversion-steps",
           (InversionConfig, "grid"): "inversion-grid"}
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError)


def _config_options(cls: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """click options for every field of a config dataclass, defaulting to None (= the preset's value)."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for f in reversed(fields(cls)):
            flag = RENAMED.get((cls, f.name), f.name.replace("_", "-"))
            default = f.default if f.default is not MISSING else None
            help_text = f"{f.metadata.get('help', '')} [default preset: {default}]"
            dest = f"{cls.__name__}__{f.name}"
            if f.type in ("bool", bool):
                command = click.option(f"--{flag}/--no-{flag}", dest, default=None, help=help_text)(command)
            elif "choices" in f.metadata:
                command = click.option(f"--{flag}", dest, type=click.Choice(f.metadata["choices"]), default=None, help=help_text)(command)
            else:
                kind = float if isinstance(default, float) or f.type == "float" else int
                command = click.option(f"--{flag}", dest, type=kind, default=None, help=help_text)(command)
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
    return (override(preset.inversion, **picked[InversionConfig]), override(preset.edit, **picked[EditConfig]),
            override(preset.image, **picked[ImageConfig]))


@dataclass(frozen=True)
class ModelOptions:
    """The options every model-using command shares; `editor()` loads the model once."""

    model: str
    device: str
    dtype: str
    preset: str
    cache_dir: Path | None
    captioner: str | None
    safety_checker: bool
    sentence_model: Path | None
    quiet: bool

    def preset_settings(self) -> Preset:
        """--preset as it applies to --model: with the model folder's own measured settings, if it records any."""
        from .components import preset_for

        return preset_for(self.preset, self.model)

    def editor(self) -> Any:
        from .api import Pix2PixZero

        if self.quiet:
            _silence_library_progress()

        return Pix2PixZero.from_pretrained(self.model, device=self.device, dtype=self.dtype, captioner=self.captioner,
                                           safety_checker=self.safety_checker, preset=self.preset, cache_dir=self.cache_dir,
                                           progress=not self.quiet, sentence_model=self.sentence_model)


def _silence_library_progress() -> None:
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()


def _model_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared model options; the command receives them packed as `opts: ModelOptions`."""

    @functools.wraps(command)
    def packed(*args: Any, **kwargs: Any) -> Any:
        opts = ModelOptions(**{name: kwargs.pop(name) for name in ModelOptions.__dataclass_fields__})
        return command(*args, opts=opts, **kwargs)

    options = [
        click.option("--model", "-m", default="shapesworld", show_default=True,
                     help="Stable Diffusion 1.x/2.x model in diffusers format: a hub id (e.g. CompVis/stable-diffusion-v1-4), "
                          "a local folder, or 'shapesworld' (the bundled offline model)."),
        click.option("--device", default="cpu", show_default=True, help="Torch device: cpu, cuda, cuda:1, mps."),
        click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True,
                     help="Model weights' dtype; float16/bfloat16 halve memory on a GPU."),
        click.option("--preset", type=click.Choice(sorted(PRESETS)), default="default", show_default=True,
                     help="'default': our best version; 'official': the authors' code step for step (see `pix2pix-zero presets`)."),
        click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Where concept embeddings and inversions are cached [default: $PIX2PIX_ZERO_CACHE or ~/.cache/pix2pix-zero]."),
        click.option("--captioner", default=None,
                     help="BLIP captioning model (hub id or folder) [default: the model folder's captioner/, else Salesforce/blip-image-captioning-large]."),
        click.option("--safety-checker/--no-safety-checker", default=False, show_default=True,
                     help="Run the model's NSFW safety checker and blank flagged outputs (off: its false positives give black images)."),
        click.option("--sentence-model", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
                     help="Local transformers language model (folder) that writes sentences for concepts without a bank "
                          "[default: offline template sentences]."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        packed = option(packed)
    return packed


def _user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Report expected failures (bad image, missing model, existing output, bad value) as one clear line, exit 1."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except click.ClickException:
            raise
        except USER_ERRORS as error:
            raise click.ClickException(str(error) or type(error).__name__) from error

    return wrapper


def _parse_extra(values: tuple[str, ...]) -> list[tuple[str, str, float]]:
    extra = []
    for value in values:
        parts = value.split(":")
        if len(parts) != 3:
            raise click.BadParameter(f"{value!r} is not SOURCE:TARGET:WEIGHT", param_hint="--add")
        try:
            extra.append((parts[0], parts[1], float(parts[2])))
        except ValueError:
            raise click.BadParameter(f"weight {parts[2]!r} is not a number", param_hint="--add") from None
    return extra


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="pix2pix-zero")
def main() -> None:
    """pix2pix-zero: zero-shot image-to-image translation (Parmar et al., SIGGRAPH 2023).

    Give an image and an edit such as cat → dog: the image is captioned, inverted to noise with
    regularized DDIM inversion, and denoised with an edit direction built from sentence banks,
    under cross-attention guidance that keeps the input's structure.
    """


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--source", "-s", required=True, help="Concept to edit away: a word with a sentence bank (cat), any word (template sentences), or a sentence file (.txt).")
@click.option("--target", "-t", "targets", required=True, multiple=True, help="Concept to edit toward; repeat for several edits of each image (one inversion, batched edits).")
@click.option("--caption", default=None, help="Use this caption instead of running the captioner.")
@click.option("--add", "extra", multiple=True, metavar="SOURCE:TARGET:WEIGHT", help="Add another weighted direction to every edit, e.g. --add 'cat:cat wearing a hat:0.5'; repeatable.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw (regularizer rolls, VAE sampling).")
@click.option("--mask", default=None, metavar="FILE|auto",
              help="Where the edit may act: a mask image (white = may change; any size, resized to the image) or 'auto' "
                   "(found from where the edit changes the cross-attention maps). Outside it the input's pixels are kept; "
                   "written as <stem>.mask.png and shown in the grid [default: the whole image].")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("out"), show_default=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files (default: refuse).")
@click.option("--no-cache", is_flag=True, help="Do not read or write the inversion cache.")
@_config_options(ImageConfig)
@_config_options(InversionConfig)
@_config_options(EditConfig)
@_model_options
@_user_errors
def edit(images: tuple[Path, ...], source: str, targets: tuple[str, ...], caption: str | None, extra: tuple[str, ...], seed: int,
         mask: str | None, output: Path, overwrite: bool, no_cache: bool, opts: ModelOptions, **config_flags: Any) -> None:
    """Edit IMAGES (files, or inversions saved by `invert`) from --source to each --target.

    Writes, per image, <stem>.input/.reconstruction/.edit-<target>/.grid PNGs with the run's
    metadata embedded and in JSON sidecars.
    """
    from .api import EditOptions, Inversion

    inversion_cfg, edit_cfg, image_cfg = _configs_from(config_flags, opts.preset_settings())
    extra_directions = _parse_extra(extra)
    stems = [p.name.removesuffix(".safetensors").removesuffix(".inversion") if p.suffix == ".safetensors" else p.stem for p in images]
    if len(set(stems)) != len(stems):
        raise click.UsageError("two inputs share a file name; their outputs would collide")
    for path in images:
        if not path.is_file():
            raise click.ClickException(f"image file not found: {path}")
    editor = opts.editor()
    for path, stem in zip(images, stems):
        source_image = Inversion.load(path) if path.suffix == ".safetensors" else path
        options = EditOptions(config=edit_cfg, inversion=inversion_cfg, image=image_cfg, caption=caption, seed=seed,
                              mask=mask, extra=extra_directions, use_cache=not no_cache)
        result = editor.edit(source_image, source, list(targets), options)
        written = result.save(output, stem=stem, overwrite=overwrite)
        click.echo(f"{path}: caption '{result.caption}'")
        for file in written:
            click.echo(f"  wrote {file}")
        click.echo("  time: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))


@main.command()
@click.argument("image", type=click.Path(path_type=Path))
@click.option("--caption", default=None, help="Use this caption instead of running the captioner.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the regularizer's rolls and of VAE sampling.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Inversion file to write [default: <image stem>.inversion.safetensors].")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--steps", "EditConfig__num_steps", type=int, default=None,
              help="DDIM steps; the later edit should use the same number [default preset: 50].")
@_config_options(ImageConfig)
@_config_options(InversionConfig)
@_model_options
@_user_errors
def invert(image: Path, caption: str | None, seed: int, output: Path | None, overwrite: bool, opts: ModelOptions, **config_flags: Any) -> None:
    """Caption and invert IMAGE once; `edit` then takes the saved file and skips inversion."""
    inversion_cfg, _, image_cfg = _configs_from(config_flags, opts.preset_settings())
    output = output or Path(f"{image.stem}.inversion.safetensors")
    if output.exists() and not overwrite:
        raise click.ClickException(f"{output} exists already; choose another --output or pass --overwrite")
    editor = opts.editor()
    inversion = editor.invert(image, caption=caption, config=inversion_cfg, image_config=image_cfg, seed=seed)
    inversion.save(output)
    click.echo(f"{image}: caption '{inversion.caption}'\n  wrote {output}")


@main.command()
@click.option("--prompt", "-p", required=True, help="Text prompt of the generated image (it is also the edit's caption).")
@click.option("--source", "-s", required=True, help="Concept to edit away (see `edit --help`).")
@click.option("--target", "-t", "targets", required=True, multiple=True, help="Concept to edit toward; repeatable.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initial noise.")
@click.option("--size", type=int, default=None, help="Image side in pixels [default: the model's native size].")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("out"), show_default=True, help="Output folder.")
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@_config_options(EditConfig)
@_model_options
@_user_errors
def generate(prompt: str, source: str, targets: tuple[str, ...], seed: int, size: int | None, output: Path, overwrite: bool,
             opts: ModelOptions, **config_flags: Any) -> None:
    """Synthetic mode: generate from --prompt and --seed, then edit the generation.

    The edit's xa-guidance is the preset's synthetic step (the authors' 0.15) unless --xa-guidance is given.
    """
    preset = opts.preset_settings()
    _, edit_cfg, _ = _configs_from(config_flags, preset)
    if config_flags.get("EditConfig__xa_guidance") is None:
        edit_cfg = override(edit_cfg, xa_guidance=preset.synthetic_xa_guidance)
    editor = opts.editor()
    result = editor.generate_and_edit(prompt, source, list(targets), seed=seed, config=edit_cfg, size=size)
    for file in result.save(output, stem=f"seed{seed}", overwrite=overwrite):
        click.echo(f"wrote {file}")


@main.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True, path_type=Path))
@click.option("--source", "-s", default=None, help="Concept to edit away, for every image without its own in the manifest.")
@click.option("--target", "-t", "targets", multiple=True, help="Concept to edit toward, for every image without its own; repeatable.")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder: images/ and results.jsonl; rerun the same command to resume.")
@click.option("--export-pairs", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write input/edit pairs (A/<id>.png, B/<target>/<id>.png) for training a distilled model.")
@click.option("--retry-failed", is_flag=True, help="On resume, retry images recorded as failed.")
@click.option("--recursive/--no-recursive", default=True, show_default=True, help="Search INPUT folders recursively.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw, the same for each image.")
@click.option("--mask", default=None, metavar="FILE|auto", help="Mask for every image without its own 'mask' column (see `edit --help`).")
@click.option("--ray", "use_ray", is_flag=True, help="Run as a Ray Data job: one model replica per GPU (--gpus) or per CPU worker.")
@click.option("--ray-address", default=None, help="Ray cluster address (e.g. auto, ray://host:10001) [default: start a local cluster].")
@click.option("--replicas", type=int, default=None, help="Model replicas on Ray [default: one per GPU, or one per --cpus-per-replica CPUs].")
@click.option("--gpus", is_flag=True, help="On Ray, give each replica one GPU (and run it on cuda).")
@click.option("--cpus-per-replica", type=float, default=1.0, show_default=True, help="CPUs Ray reserves for each replica.")
@_config_options(ImageConfig)
@_config_options(InversionConfig)
@_config_options(EditConfig)
@_model_options
@_user_errors
def batch(input_path: Path, source: str | None, targets: tuple[str, ...], output: Path, export_pairs: Path | None,
          retry_failed: bool, recursive: bool, seed: int, mask: str | None, use_ray: bool, ray_address: str | None, replicas: int | None, gpus: bool,
          cpus_per_replica: float, opts: ModelOptions, **config_flags: Any) -> None:
    """Edit a folder of images (jpg/png/webp) or a CSV/JSONL manifest (columns image, source, target, caption, mask, id).

    Resumable: results.jsonl records each finished image; rerunning skips them. A bad image is
    recorded as failed and skipped.
    """
    from .batch import RESULTS_FILE, read_items, run_batch

    inversion_cfg, edit_cfg, image_cfg = _configs_from(config_flags, opts.preset_settings())
    items = read_items(input_path, source, targets, recursive, mask)
    edit_kwargs = dict(config=edit_cfg, inversion_config=inversion_cfg, image_config=image_cfg, seed=seed)
    if use_ray:
        from .ray_batch import run_batch_on_ray

        editor_kwargs = dict(dtype=opts.dtype, captioner=opts.captioner, preset=opts.preset, sentence_model=opts.sentence_model,
                             cache_dir=opts.cache_dir)
        summary = run_batch_on_ray(opts.model, items, output, export_pairs, retry_failed, replicas, gpus, cpus_per_replica,
                                   ray_address, not opts.quiet, editor_kwargs, **edit_kwargs)
    else:
        summary = run_batch(opts.editor(), items, output, export_pairs, retry_failed, progress=not opts.quiet, **edit_kwargs)
    click.echo(f"{summary.done} edited, {summary.failed} failed, {summary.skipped} already done "
               f"in {summary.seconds:.1f}s; results: {output / RESULTS_FILE}")
    for failure in summary.failures:
        click.echo(f"  failed {failure['id']}: {failure['error']}", err=True)


@main.group()
def direction() -> None:
    """Build, list and delete edit directions (cached concept embeddings)."""


@direction.command("build")
@click.option("--source", "-s", required=True, help="Source concept: bank word, any word, or sentence file.")
@click.option("--target", "-t", required=True, help="Target concept: bank word, any word, or sentence file.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also save the direction to this .safetensors file.")
@_model_options
@_user_errors
def direction_build(source: str, target: str, output: Path | None, opts: ModelOptions) -> None:
    """Embed both concepts' sentences (cached) and report the direction."""
    from .directions import save_direction

    editor = opts.editor()
    for concept in (source, target):
        sentences, origin = editor.sentences(concept)
        click.echo(f"{concept}: {len(sentences)} sentences ({origin})")
    delta = editor.direction(source, target)
    click.echo(f"direction {source} -> {target}: shape {tuple(delta.shape)}, norm {float(delta.norm()):.4f}")
    if output is not None:
        save_direction(output, delta, source=source, target=target, model=editor.components.model_id)
        click.echo(f"wrote {output}")


@direction.command("list")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Cache folder to list.")
@click.option("--banks", is_flag=True, help="List the shipped sentence banks instead.")
def direction_list(cache_dir: Path | None, banks: bool) -> None:
    """List cached concept embeddings (concept, sentences, model, norm), or the shipped banks."""
    from . import sentences
    from .directions import ConceptCache

    if banks:
        for key, path in sorted(sentences.list_banks().items()):
            click.echo(f"{key:24s} {len(sentences.read_sentence_file(path)):5d} sentences  {path}")
        return
    entries = ConceptCache(cache_dir).entries()
    if not entries:
        click.echo("no cached concepts (they are made by `edit` and `direction build`)")
    for entry in entries:
        click.echo(f"{entry.concept:24s} {entry.num_sentences:5d} sentences  norm {entry.norm:9.3f}  {entry.model}  {entry.path.name}")


@direction.command("show")
@click.argument("concept")
@click.option("--model", "-m", default=None, help="Also show the model folder's own bank, when it has one (e.g. shapesworld).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Cache folder.")
@click.option("--num", "-n", type=int, default=10, show_default=True, help="How many sentences to print.")
@_user_errors
def direction_show(concept: str, model: str | None, cache_dir: Path | None, num: int) -> None:
    """Show a concept: where its sentences come from, a sample of them, and its cached embeddings."""
    from . import sentences
    from .components import resolve_model
    from .directions import ConceptCache

    extra = [Path(resolve_model(model)) / "sentences"] if model else []
    path = Path(concept)
    if path.suffix.lower() == ".txt" or path.is_file():
        found, origin = sentences.read_sentence_file(path), f"file {path}"
    elif (bank := sentences.find_bank(concept, extra)) is not None:
        found, origin = sentences.read_sentence_file(bank), f"bank {bank}"
    else:
        found, origin = sentences.generate_sentences(concept, num=max(num, 1)), "template generator (no bank)"
    click.echo(f"{concept}: {origin}, {len(found)} sentences")
    for sentence in found[:num]:
        click.echo(f"  {sentence}")
    for entry in ConceptCache(cache_dir).entries():
        if entry.concept == concept:
            click.echo(f"cached: {entry.num_sentences} sentences, model {entry.model}, norm {entry.norm:.3f}, shape {entry.shape}, {entry.path}")


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
@click.option("--model", "-m", default=None,
              help="Show the presets as they apply to this model: a folder may record its own measured settings in "
                   "pix2pix_zero.json ('shapesworld', the bundled model, does) [default: the presets as written].")
@_user_errors
def presets(as_json: bool, model: str | None) -> None:
    """Show the presets side by side."""
    from .components import preset_for

    presets_for_model = {name: preset_for(name, model) for name in sorted(PRESETS)}
    shown = {name: preset.to_dict() for name, preset in presets_for_model.items()}
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return
    names = list(shown)
    rows = []
    for section in ("inversion", "edit", "image"):
        for key in shown[names[0]][section]:
            rows.append([f"{section}.{key}"] + [str(shown[n][section][key]) for n in names])
    rows.append(["synthetic_xa_guidance"] + [str(shown[n]["synthetic_xa_guidance"]) for n in names])
    widths = [max(len(r[i]) for r in rows + [["setting"] + names]) for i in range(len(names) + 1)]
    for row in [["setting"] + names] + rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    for name in names:
        click.echo(f"\n{name}: {presets_for_model[name].description}")


@main.command()
@click.option("--image", type=click.Path(path_type=Path), default=None, help="Edit this image instead of a shipped example scene.")
@click.option("--example", default=None, help="Name of the shipped example scene to edit [default: the first one].")
@click.option("--source", "-s", default=None, help="Concept to edit away [default: the shape the caption names].")
@click.option("--target", "-t", "targets", multiple=True, help="Concept to edit toward; repeatable [default: three other shapes].")
@click.option("--model", "-m", default="shapesworld", show_default=True, help="Model: 'shapesworld' (bundled, offline) or any SD folder/hub id.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw.")
@click.option("--steps", type=int, default=50, show_default=True, help="DDIM steps of the inversion and the edits.")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("pix2pix-zero-demo"), show_default=True,
              help="Output root; each run writes a new run-NNN folder inside it.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Cache folder for concept embeddings and inversions.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@_user_errors
def demo(image: Path | None, example: str | None, source: str | None, targets: tuple[str, ...], model: str, seed: int,
         steps: int, output: Path, cache_dir: Path | None, quiet: bool) -> None:
    """Offline demo on the bundled ShapesWorld model: caption, invert, three edits, a labelled grid."""
    from .demo import run_demo

    if quiet:
        _silence_library_progress()

    run = run_demo(image, example, targets, source, model, output, seed, progress=not quiet, num_steps=steps, cache_dir=cache_dir)
    result = run.result
    click.echo(f"image:    {run.image_name} ({result.input.width}x{result.input.height})")
    click.echo(f"caption:  {result.caption}")
    click.echo("edits:    " + ", ".join(f"{e['source']} -> {e['target']}" for e in result.edits))
    click.echo(f"time:     load {run.load_seconds:.1f}s, " + ", ".join(f"{k} {v:.1f}s" for k, v in result.timings.items()))
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
