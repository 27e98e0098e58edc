"""`pix2pix-zero bench speed|quality`: thin commands over bench/speed.py and bench/quality.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ..cli_common import quiet_libraries, user_errors
from ..config import MAX_STEPS


@click.group()
def bench() -> None:
    """Benchmarks: speed and memory side by side with diffusers' pix2pix-zero pipeline (LEDITS++ XL on SDXL)."""


@bench.command("speed")
@click.option(
    "--model",
    "-m",
    "models",
    multiple=True,
    default=("shapesworld", "sd-small"),
    show_default=True,
    help="Models to time: 'shapesworld', 'sd-small' (random SD-layout UNet, 256 px, CPU-friendly), 'sd-1.x' "
    "(random weights, the true SD 1.x architecture at 512 px: use a GPU), 'sdxl-small' (random SDXL-layout "
    "UNet, 256 px, CPU-friendly), 'sdxl' (random weights, the true SDXL base architecture at 1024 px: use a "
    "GPU), or any SD/SDXL folder/hub id; repeatable. SDXL models are compared with diffusers' LEDITS++ XL.",
)
@click.option(
    "--steps",
    type=click.IntRange(1, MAX_STEPS),
    default=50,
    show_default=True,
    help="DDIM steps of inversion and edit.",
)
@click.option("--device", default="cpu", show_default=True, help="Torch device.")
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16"]),
    default="float32",
    show_default=True,
    help="Weights' dtype.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 1024),
    default=os.cpu_count() or 1,
    show_default=True,
    help="Torch CPU threads in each measurement.",
)
@click.option(
    "--targets",
    type=click.IntRange(1, 64),
    default=3,
    show_default=True,
    help="Also time this many targets of one image (1 = skip).",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-speed"),
    show_default=True,
    help="Folder for results.json, report.md and report.png.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where random models are built once.",
)
@click.option(
    "--xa-layers",
    "xa_layer_variants",
    multiple=True,
    type=click.Choice(["encoder"]),
    help="Also time ours guiding only these cross-attention layers (a named option that changes the result); "
    "repeatable.",
)
@click.option(
    "--option",
    "edit_options",
    multiple=True,
    type=click.Choice(
        [
            "exact-inversion",
            "self-attention",
            "auto-mask",
            "mask",
            "all",
            "empty-negative-prompt",
            "late-guidance",
            "late-cross-attention-guidance",
        ]
    ),
    help="Also time ours with this edit option, reported against ours without options: exact inversion, "
    "self-attention injection 0.3, the automatic mask, a fixed half-image mask, 'all' (exact inversion, "
    "self-attention injection 0.3 and the automatic mask together), CFG against the empty prompt instead of "
    "the caption, late guidance that strengthens every edit (CFG x1.5 from half the steps), or no cross-attention "
    "guidance from half the steps for every edit; repeatable.",
)
@click.option(
    "--repeat",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Time each measurement this many times in its process and keep the fastest per stage (GPU timings "
    "vary by tens of percent from run to run; later repeats are also warmer).",
)
@user_errors
def bench_speed(
    models: tuple[str, ...],
    steps: int,
    device: str,
    dtype: str,
    threads: int,
    targets: int,
    output: Path,
    cache_dir: Path | None,
    xa_layer_variants: tuple[str, ...],
    repeat: int,
    edit_options: tuple[str, ...],
) -> None:
    """Time and measure peak memory of inversion and edit, ours vs diffusers, each in a fresh process."""
    import platform

    from ..directions import default_cache_dir
    from .speed import format_report, option_costs, plot_report, run_speed_benchmark, summarize

    def show(row: dict[str, Any]) -> None:
        click.echo(
            f"  {row['model']:12s} {row['implementation']:32s} invert {row['invert_s']:8.2f}s  edit "
            f"{row['edit_s']:8.2f}s  "
            f"peak {row['total_peak_mib']:8.0f} MiB",
            err=True,
        )

    rows = run_speed_benchmark(
        list(models),
        steps,
        device,
        dtype,
        threads,
        targets,
        cache_dir or default_cache_dir(),
        show,
        xa_layer_variants,
        repeat,
        edit_options,
    )
    summaries = summarize(rows)
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {threads} threads"
        if device == "cpu"
        else device
    )
    timing = f"fastest of {repeat} runs per stage" if repeat > 1 else "one run"
    report = f"Machine: {machine}; {steps} steps, CFG 5, xa_guidance 0.1, {dtype}; {timing}\n\n" + format_report(
        rows, summaries
    )
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(
        json.dumps(
            {"machine": machine, "rows": rows, "summary": summaries, "option_costs": option_costs(rows)}, indent=2
        )
    )
    (output / "report.md").write_text(report + "\n")
    figure = plot_report(rows, output / "report.png")
    click.echo(report)
    click.echo(f"\nwrote {output / 'results.json'}, {output / 'report.md'}" + (f", {figure}" if figure else ""))


@bench.command("quality")
@click.option(
    "--model",
    "-m",
    default="shapesworld",
    show_default=True,
    help="Model to edit with: 'shapesworld' or an SD folder/hub id.",
)
@click.option(
    "--task",
    "tasks",
    multiple=True,
    help="Task 'source->target'; on ShapesWorld 'source->target, two objects' edits one of two objects; "
    "repeatable [default: four ShapesWorld shape swaps].",
)
@click.option(
    "--num-scenes",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="ShapesWorld scenes per task (fixed seeds).",
)
@click.option(
    "--scene-set",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Which fixed set of ShapesWorld scenes: 0 is the one the README reports; any other number draws other "
    "scenes from another seed, for choosing settings without looking at the reported ones.",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Score a folder of real images instead of ShapesWorld (needs --task, a CLIP and a DINO checkpoint).",
)
@click.option(
    "--captions",
    "captions_source",
    default=None,
    help="Where each case's caption comes from: 'exact' (ShapesWorld: the scene's own caption), 'captioner' (the "
    "model's captioner, as a user without a caption gets it; word swaps whose source word it leaves out "
    "keep the image and count as not landed), or for --images a JSON {file name: caption} "
    "[default: 'exact' on ShapesWorld, the captioner for --images].",
)
@click.option(
    "--stratify-sizes",
    is_flag=True,
    help="ShapesWorld: edited objects small, medium and large in turn, so any first 3n scenes hold n of each (for a "
    "tuning --scene-set).",
)
@click.option(
    "--masks",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Folder of PNG masks for --images, one per image (cat.jpg -> cat.png), white where the edit may change "
    "the image: adds PSNR (and with --lpips, LPIPS) of the rest, the background.",
)
@click.option(
    "--lpips",
    "lpips_net",
    type=click.Choice(["squeeze", "alex", "vgg"]),
    default=None,
    help="Also LPIPS of the background with this network (PIE-Bench: squeeze); needs --masks, torchmetrics and "
    "torchvision with its backbone weights (pip install -e '.[lpips]' in the checkout, and torchvision for your "
    "torch).",
)
@click.option(
    "--method", "method_names", multiple=True, help="Methods to run; repeatable [default: all; see --list-methods]."
)
@click.option("--list-methods", is_flag=True, help="List the methods and their settings, then exit.")
@click.option(
    "--sweep",
    "sweeps",
    multiple=True,
    help="Also run the default method once per value of one setting, e.g. 'xa_guidance=0.1,1,10' (any edit or "
    "inversion setting); repeatable.",
)
@click.option(
    "--steps", type=click.IntRange(1, MAX_STEPS), default=50, show_default=True, help="DDIM steps of every method."
)
@click.option(
    "--clip-model",
    default="openai/clip-vit-large-patch14",
    show_default=True,
    help="CLIP for CLIP accuracy on real images.",
)
@click.option(
    "--dino-model",
    default="facebook/dino-vitb8",
    show_default=True,
    help="ViT for the structure distance on real images.",
)
@click.option(
    "--structure-convention",
    type=click.Choice(["splice", "piebench"]),
    default="splice",
    show_default=True,
    help="Pixels fed to the ViT: [0,1] (Splice) or 0-255 (PIE-Bench's evaluation code).",
)
@click.option("--device", default="cpu", show_default=True, help="Torch device.")
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-quality"),
    show_default=True,
    help="Folder for rows.jsonl (resumable), table.md and figure.png.",
)
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Cache folder.")
@click.option(
    "--examples-per-task",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="Save every method's edit (and mask, if any) of this many first cases of each task under examples/.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@user_errors
def bench_quality(
    model: str,
    tasks: tuple[str, ...],
    num_scenes: int,
    scene_set: int,
    images: Path | None,
    captions_source: str | None,
    stratify_sizes: bool,
    masks: Path | None,
    lpips_net: str | None,
    method_names: tuple[str, ...],
    list_methods: bool,
    sweeps: tuple[str, ...],
    steps: int,
    clip_model: str,
    dino_model: str,
    structure_convention: str,
    device: str,
    output: Path,
    cache_dir: Path | None,
    examples_per_task: int,
    quiet: bool,
) -> None:
    """Methods × tasks scored like the paper's Table 1; ShapesWorld by default, with ground-truth metrics."""
    from ..api import Pix2PixZero
    from . import metrics, quality

    table = quality.methods(steps)
    if list_methods:
        for name, method in table.items():
            click.echo(f"{name}: {method.settings}")
        return
    for task in tasks:  # before any work: a task the editor refuses would fail every row of it
        source, arrow, target = task.removesuffix(quality.TWO_OBJECTS).partition("->")
        if not (arrow and source.strip() and target.strip()):
            raise click.BadParameter(
                f"task {task!r} is not 'source->target', e.g. 'circle->square'", param_hint="'--task'"
            )
        if source.strip().lower() == target.strip().lower():
            raise click.BadParameter(
                f"task {task!r} edits {source.strip()!r} into itself: source and target are the same concept",
                param_hint="'--task'",
            )
    if (masks or lpips_net) and images is None:
        raise click.UsageError(
            "--masks and --lpips score real images: give --images (ShapesWorld measures PSNR outside the object itself)"
        )
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
    _check_steps_fit(chosen, steps)
    quiet_libraries()
    editor = Pix2PixZero.from_pretrained(model, device=device, cache_dir=cache_dir, progress=False)
    if images is not None:
        if not tasks:
            raise click.UsageError("--images needs at least one --task such as 'cat->dog'")
        if captions_source in ("exact", "captioner"):
            captions_source = None if captions_source == "captioner" else captions_source
        if captions_source == "exact":
            raise click.UsageError(
                "--captions exact is ShapesWorld's: give --images a JSON of captions, or the captioner"
            )
        if captions_source and not Path(captions_source).is_file():
            raise click.BadParameter(
                f"no caption file {captions_source}; give a JSON {{file name: caption}} or 'captioner'",
                param_hint="--captions",
            )
        names = json.loads(Path(captions_source).read_text()) if captions_source else {}
        cases = quality.folder_cases(images, tasks, names, masks)
        cases = [
            c if c.caption else quality.Case(**{**c.__dict__, "caption": editor.caption(editor.prepare_image(c.image))})
            for c in cases
        ]
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
    rows = quality.run_quality(
        editor,
        cases,
        chosen,
        scorer,
        output,
        progress=not quiet,
        examples_per_task=examples_per_task,
        settings=settings,
    )
    summary = quality.summarize(rows)
    report = [
        f"# Quality benchmark: {model}, {steps} steps, {len(cases)} cases",
        "",
        "## All tasks",
        "",
        quality.format_table(summary),
    ]
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
    _report_failures(rows, {(method.name, case.id) for method in chosen for case in cases}, output)


def _report_failures(rows: list[dict[str, Any]], asked: set[tuple[str, str]], output: Path) -> None:
    """After the tables: how many of this run's edits (`asked`: method and case, resumed ones included) failed, and
    exit 1 when every one did (a run of nothing but errors is not a result)."""
    failed = [r for r in rows if (r["method"], r["id"]) in asked and r["status"] != "ok"]
    if failed and len(failed) == len(asked):
        first = failed[0].get("error", "")[:200]
        raise click.ClickException(
            f"all {len(failed)} edits failed; their errors are recorded in {output / 'rows.jsonl'} (e.g. {first!r})"
        )
    if failed:
        click.echo(f"{len(failed)} of {len(asked)} edits failed; their errors are recorded in {output / 'rows.jsonl'}")


def _check_steps_fit(methods: list[Any], steps: int) -> None:
    """Before any work: the authors' inversion grid drops the first and last timestep, so it needs 3 steps."""
    official = [m.name for m in methods if "official" in (m.settings.get("preset"), m.settings.get("grid"))]
    if official and steps < 3:
        raise click.BadParameter(
            f"{official[0]!r} uses the authors' inversion grid, which needs at least 3 steps", param_hint="'--steps'"
        )


@bench.command("piebench")
@click.argument("data_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--model",
    "-m",
    default="shapesworld",
    show_default=True,
    help="Model to edit with: an SD 1.x/2.x folder or hub id (PIE-Bench's rows used "
    "CompVis/stable-diffusion-v1-4), or 'shapesworld'.",
)
@click.option(
    "--method",
    "method_names",
    multiple=True,
    help="Methods to run; repeatable [default: pix2pix-zero and pix2pix-zero (official), each with "
    "sentence directions and with the prompt-pair direction, and prompt-to-prompt (CFG 7.5); "
    "see --list-methods].",
)
@click.option(
    "--list-methods", is_flag=True, help="List the methods, what each reads from a row, and their settings; then exit."
)
@click.option(
    "--type",
    "types",
    multiple=True,
    type=click.Choice([str(i) for i in range(10)]),
    help="Edit types to run (PIE-Bench's editing_type_id, 0 random ... 9 change style); repeatable [default: all].",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="At most this many images per edit type (the first ids)."
)
@click.option(
    "--steps", type=click.IntRange(1, MAX_STEPS), default=50, show_default=True, help="DDIM steps of every method."
)
@click.option(
    "--captions",
    type=click.Choice(["captioner", "prompt"]),
    default="captioner",
    show_default=True,
    help="Caption pix2pix-zero inverts with: the captioner's (the method as designed, and PIE-Bench's "
    "row) or the row's original prompt. Word-swap baselines always use the original prompt.",
)
@click.option(
    "--clip",
    "clip_model",
    default="openai/clip-vit-large-patch14",
    show_default=True,
    help="CLIP for the CLIP similarities (hub id or folder).",
)
@click.option(
    "--dino",
    "dino_model",
    default="facebook/dino-vitb8",
    show_default=True,
    help="ViT for the structure distance (hub id or folder).",
)
@click.option(
    "--lpips",
    "lpips_net",
    type=click.Choice(["squeeze", "alex", "vgg"]),
    default="squeeze",
    show_default=True,
    help="LPIPS network (needs torchmetrics and torchvision with its backbone weights).",
)
@click.option("--no-lpips", is_flag=True, help="Leave LPIPS out (its column shows '–').")
@click.option("--device", default="cpu", show_default=True, help="Torch device.")
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16"]),
    default="float32",
    show_default=True,
    help="Weights' dtype of the edited model.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("bench-piebench"),
    show_default=True,
    help="Folder for rows.jsonl (one row per method and image; a rerun resumes it), table.md and table.png.",
)
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Cache folder.")
@click.option(
    "--write-example",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write a miniature benchmark of ShapesWorld scenes in PIE-Bench's layout to this folder, then exit.",
)
@click.option(
    "--score-outputs",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Instead of editing, score another tool's edited images laid out like annotation_images/ in this "
    "folder (PIE-Bench's published result folders are; their strips are cropped to the rightmost "
    "512×512).",
)
@click.option("--label", default=None, help="Method name for --score-outputs' rows [default: the folder's name].")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@user_errors
def bench_piebench(
    data_dir: Path | None,
    model: str,
    method_names: tuple[str, ...],
    list_methods: bool,
    types: tuple[str, ...],
    limit: int | None,
    steps: int,
    captions: str,
    clip_model: str,
    dino_model: str,
    lpips_net: str,
    no_lpips: bool,
    device: str,
    dtype: str,
    output: Path,
    cache_dir: Path | None,
    write_example: Path | None,
    score_outputs: Path | None,
    label: str | None,
    quiet: bool,
) -> None:
    """PIE-Bench (DATA_DIR: mapping_file.json and annotation_images/) scored with its seven metrics, per image and per
    edit type, beside the literature's rows; docs/piebench.md says how to get the data."""
    from ..api import Pix2PixZero
    from . import metrics, pie_metrics, piebench

    table = piebench.methods(steps)
    if list_methods:
        for name, (method, reads) in table.items():
            click.echo(f"{name} [reads {reads}]: {method.settings}")
        return
    if write_example is not None:
        click.echo(f"wrote {piebench.write_shapesworld_example(write_example)}")
        return
    if data_dir is None:
        raise click.UsageError("give DATA_DIR, the folder with PIE-Bench's mapping_file.json and annotation_images/")
    unknown = [n for n in method_names if n not in table]
    if unknown:
        raise click.BadParameter(f"unknown methods {unknown}; see --list-methods", param_hint="--method")
    rows = piebench.read_benchmark(data_dir, types, limit)
    if score_outputs is None:
        _check_steps_fit([table[n][0] for n in (method_names or piebench.DEFAULT_METHODS)], steps)
    try:
        lpips = None if no_lpips else metrics.lpips_distance(lpips_net, device)
    except ImportError as error:
        raise click.ClickException(f"{error} (or pass --no-lpips)") from error
    scorer = piebench.PieBenchScorer(
        rows, data_dir, pie_metrics.ClipScore(clip_model, device), pie_metrics.DinoStructure(dino_model, device), lpips
    )
    settings = piebench.settings_of(data_dir, steps, captions, clip_model, dino_model, None if no_lpips else lpips_net)
    if score_outputs is not None:
        scoring = {k: v for k, v in settings.items() if k not in ("steps", "captions")}  # nothing is edited here
        name = label or score_outputs.resolve().name
        all_rows = piebench.score_outputs(rows, score_outputs, name, scorer, output, scoring, progress=not quiet)
        header = f"# PIE-Bench: outputs scored, {len(rows)} images"
        asked = {(name, row.id) for row in rows}
    else:
        editor = Pix2PixZero.from_pretrained(model, device=device, dtype=dtype, cache_dir=cache_dir, progress=False)
        chosen = [table[n] for n in (method_names or piebench.DEFAULT_METHODS)]
        all_rows = piebench.run_piebench(
            editor, data_dir, rows, chosen, scorer, output, settings, captions, progress=not quiet
        )
        header = f"# PIE-Bench: {model}, {steps} steps, {len(rows)} images, captions from the {captions}"
        asked = {(method.name, row.id) for method, _ in chosen for row in rows}
    summary = piebench.summarize(all_rows)
    report = piebench.format_report(summary, header)
    from ..files import atomic_write

    atomic_write(output / "table.md", report.encode(), overwrite=True)
    figure = piebench.plot_summary(summary, output / "table.png")
    click.echo(report)
    click.echo(f"wrote {output / 'rows.jsonl'}, {output / 'table.md'}" + (f", {figure}" if figure else ""))
    _report_failures(all_rows, asked, output)
