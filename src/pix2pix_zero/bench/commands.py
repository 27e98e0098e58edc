"""`pix2pix-zero bench speed|quality`: thin commands over bench/speed.py and bench/quality.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ..cli import _user_errors


@click.group()
def bench() -> None:
    """Benchmarks: speed and memory side by side with diffusers' pix2pix-zero pipeline."""


@bench.command("speed")
@click.option("--model", "-m", "models", multiple=True, default=("shapesworld", "sd-small"), show_default=True,
              help="Models to time: 'shapesworld', 'sd-small' (random SD-layout UNet, 256 px, CPU-friendly), 'sd-1.x' "
                   "(random weights, the true SD 1.x architecture at 512 px: use a GPU), or any SD folder/hub id; repeatable.")
@click.option("--steps", type=int, default=50, show_default=True, help="DDIM steps of inversion and edit.")
@click.option("--device", default="cpu", show_default=True, help="Torch device.")
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16"]), default="float32", show_default=True, help="Weights' dtype.")
@click.option("--threads", type=int, default=os.cpu_count() or 1, show_default=True, help="Torch CPU threads in each measurement.")
@click.option("--targets", type=int, default=3, show_default=True, help="Also time this many targets of one image (1 = skip).")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("bench-speed"), show_default=True,
              help="Folder for results.json, report.md and report.png.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Where random models are built once.")
@click.option("--xa-layers", "xa_layer_variants", multiple=True, type=click.Choice(["encoder"]),
              help="Also time ours guiding only these cross-attention layers (a named option that changes the result); repeatable.")
@click.option("--repeat", type=click.IntRange(1), default=1, show_default=True,
              help="Time each measurement this many times in its process and keep the fastest per stage (GPU timings "
                   "vary by tens of percent from run to run; later repeats are also warmer).")
@_user_errors
def bench_speed(models: tuple[str, ...], steps: int, device: str, dtype: str, threads: int, targets: int, output: Path,
                cache_dir: Path | None, xa_layer_variants: tuple[str, ...], repeat: int) -> None:
    """Time and measure peak memory of inversion and edit, ours vs diffusers, each in a fresh process."""
    import platform

    from ..directions import default_cache_dir
    from .speed import format_report, plot_report, run_speed_benchmark, summarize

    def show(row: dict[str, Any]) -> None:
        click.echo(f"  {row['model']:12s} {row['implementation']:32s} invert {row['invert_s']:8.2f}s  edit {row['edit_s']:8.2f}s  "
                   f"peak {row['total_peak_mib']:8.0f} MiB", err=True)

    rows = run_speed_benchmark(list(models), steps, device, dtype, threads, targets, cache_dir or default_cache_dir(), show,
                               xa_layer_variants, repeat)
    summaries = summarize(rows)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {threads} threads" if device == "cpu" else device
    timing = f"fastest of {repeat} runs per stage" if repeat > 1 else "one run"
    report = f"Machine: {machine}; {steps} steps, CFG 5, xa_guidance 0.1, {dtype}; {timing}\n\n" + format_report(rows, summaries)
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(json.dumps({"machine": machine, "rows": rows, "summary": summaries}, indent=2))
    (output / "report.md").write_text(report + "\n")
    figure = plot_report(rows, output / "report.png")
    click.echo(report)
    click.echo(f"\nwrote {output / 'results.json'}, {output / 'report.md'}" + (f", {figure}" if figure else ""))


@bench.command("quality")
@click.option("--model", "-m", default="shapesworld", show_default=True, help="Model to edit with: 'shapesworld' or an SD folder/hub id.")
@click.option("--task", "tasks", multiple=True,
              help="Task 'source->target'; on ShapesWorld 'source->target, two objects' edits one of two objects; "
                   "repeatable [default: four ShapesWorld shape swaps].")
@click.option("--num-scenes", type=int, default=100, show_default=True, help="ShapesWorld scenes per task (fixed seeds).")
@click.option("--scene-set", type=click.IntRange(min=0), default=0, show_default=True,
              help="Which fixed set of ShapesWorld scenes: 0 is the one the README reports; any other number draws other "
                   "scenes from another seed, for choosing settings without looking at the reported ones.")
@click.option("--images", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Score a folder of real images instead of ShapesWorld (needs --task, a CLIP and a DINO checkpoint).")
@click.option("--captions", "captions_source", default=None,
              help="Where each case's caption comes from: 'exact' (ShapesWorld: the scene's own caption), 'captioner' (the "
                   "model's captioner, as a user without a caption gets it; word swaps whose source word it leaves out "
                   "keep the image and count as not landed), or for --images a JSON {file name: caption} "
                   "[default: 'exact' on ShapesWorld, the captioner for --images].")
@click.option("--stratify-sizes", is_flag=True,
              help="ShapesWorld: edited objects small, medium and large in turn, so any first 3n scenes hold n of each (for a "
                   "tuning --scene-set).")
@click.option("--masks", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of PNG masks for --images, one per image (cat.jpg -> cat.png), white where the edit may change "
                   "the image: adds PSNR (and with --lpips, LPIPS) of the rest, the background.")
@click.option("--lpips", "lpips_net", type=click.Choice(["squeeze", "alex", "vgg"]), default=None,
              help="Also LPIPS of the background with this network (PIE-Bench: squeeze); needs --masks, torchmetrics and "
                   "torchvision with its backbone weights (pip install 'pix2pix-zero[lpips]' and torchvision for your torch).")
@click.option("--method", "method_names", multiple=True, help="Methods to run; repeatable [default: all; see --list-methods].")
@click.option("--list-methods", is_flag=True, help="List the methods and their settings, then exit.")
@click.option("--sweep", "sweeps", multiple=True,
              help="Also run the default method once per value of one setting, e.g. 'xa_guidance=0.1,1,10' (any edit or "
                   "inversion setting); repeatable.")
@click.option("--steps", type=int, default=50, show_default=True, help="DDIM steps of every method.")
@click.option("--clip-model", default="openai/clip-vit-large-patch14", show_default=True, help="CLIP for CLIP accuracy on real images.")
@click.option("--dino-model", default="facebook/dino-vitb8", show_default=True, help="ViT for the structure distance on real images.")
@click.option("--structure-convention", type=click.Choice(["splice", "piebench"]), default="splice", show_default=True,
              help="Pixels fed to the ViT: [0,1] (Splice) or 0-255 (PIE-Bench's evaluation code).")
@click.option("--device", default="cpu", show_default=True, help="Torch device.")
@click.option("--output", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("bench-quality"), show_default=True,
              help="Folder for rows.jsonl (resumable), table.md and figure.png.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Cache folder.")
@click.option("--examples-per-task", type=click.IntRange(min=0), default=1, show_default=True,
              help="Save every method's edit (and mask, if any) of this many first cases of each task under examples/.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@_user_errors
def bench_quality(model: str, tasks: tuple[str, ...], num_scenes: int, scene_set: int, images: Path | None, captions_source: str | None,
                  stratify_sizes: bool, masks: Path | None, lpips_net: str | None,
                  method_names: tuple[str, ...], list_methods: bool, sweeps: tuple[str, ...], steps: int, clip_model: str, dino_model: str,
                  structure_convention: str, device: str, output: Path, cache_dir: Path | None, examples_per_task: int,
                  quiet: bool) -> None:
    """Methods × tasks scored like the paper's Table 1; ShapesWorld by default, with ground-truth metrics."""
    from ..api import Pix2PixZero
    from . import metrics, quality

    table = quality.methods(steps)
    if list_methods:
        for name, method in table.items():
            click.echo(f"{name}: {method.settings}")
        return
    if (masks or lpips_net) and images is None:
        raise click.UsageError("--masks and --lpips score real images: give --images (ShapesWorld measures PSNR outside the object itself)")
    if lpips_net and masks is None:
        raise click.UsageError("--lpips measures the background: give --masks")
    unknown = [n for n in method_names if n not in table]
    if unknown:
        raise click.BadParameter(f"unknown methods {unknown}; see --list-methods", param_hint="--method")
    try:
        swept = [m for spec in sweeps for m in quality.sweep_methods(spec, steps)]
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--sweep") from error
    chosen = [table[n] for n in (method_names or ([] if sweeps else table))] + swept
    editor = Pix2PixZero.from_pretrained(model, device=device, cache_dir=cache_dir, progress=False)
    if images is not None:
        if not tasks:
            raise click.UsageError("--images needs at least one --task such as 'cat->dog'")
        if captions_source in ("exact", "captioner"):
            captions_source = None if captions_source == "captioner" else captions_source
        if captions_source == "exact":
            raise click.UsageError("--captions exact is ShapesWorld's: give --images a JSON of captions, or the captioner")
        if captions_source and not Path(captions_source).is_file():
            raise click.BadParameter(f"no caption file {captions_source}; give a JSON {{file name: caption}} or 'captioner'",
                                     param_hint="--captions")
        names = json.loads(Path(captions_source).read_text()) if captions_source else {}
        cases = quality.folder_cases(images, tasks, names, masks)
        cases = [c if c.caption else quality.Case(**{**c.__dict__, "caption": editor.caption(editor.prepare_image(c.image))}) for c in cases]
        try:
            lpips = metrics.lpips_distance(lpips_net, device) if lpips_net else None
        except ImportError as error:
            raise click.ClickException(str(error)) from error
        scorer: Any = quality.RealImageScorer(clip_model, dino_model, structure_convention, device, lpips)
    else:
        if captions_source not in (None, "exact", "captioner"):
            raise click.BadParameter("on ShapesWorld captions are 'exact' or 'captioner'", param_hint="--captions")
        try:
            cases = quality.shapesworld_cases(tasks or quality.DEFAULT_TASKS, num_scenes, scene_set, stratify_sizes)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--task") from error
        cases = quality.captioned_cases(editor, cases, captions_source or "exact")
        scorer = quality.ShapesWorldScorer(str(Path(editor.components.model_id) / "clip"))
    # rows under other captions are other measurements: recorded with the steps, they are never mixed on resume
    settings = {"steps": steps, **({"captions": captions_source} if captions_source == "captioner" else {})}
    rows = quality.run_quality(editor, cases, chosen, scorer, output, progress=not quiet, examples_per_task=examples_per_task,
                               settings=settings)
    summary = quality.summarize(rows)
    report = [f"# Quality benchmark: {model}, {steps} steps, {len(cases)} cases", "", "## All tasks", "", quality.format_table(summary)]
    all_cases = quality.read_cases(output / "cases.jsonl")  # the cases of every row, earlier runs' included
    for task in dict.fromkeys(c.task for c in cases):
        report += ["", f"## {task}", "", quality.format_table(summary, task)]
        by_size = quality.format_by_size(rows, all_cases, task)
        if by_size:  # ShapesWorld: which objects the failures are (k: the source shape kept, o: another shape)
            report += ["", f"### {task}, by object size", "", by_size]
    (output / "table.md").write_text("\n".join(report) + "\n")
    figure = quality.plot_quality(summary, output / "examples", output / "figure.png")
    click.echo("\n".join(report))
    click.echo(f"\nwrote {output / 'rows.jsonl'}, {output / 'table.md'}" + (f", {figure}" if figure else ""))
