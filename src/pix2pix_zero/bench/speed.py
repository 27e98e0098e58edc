"""`pix2pix-zero bench speed`: this project against diffusers' StableDiffusionPix2PixZeroPipeline, and on SDXL
models against diffusers' LEditsPPPipelineStableDiffusionXL (LEDITS++, the maintained SDXL editing pipeline).

Both run on the same model folder, image, caption and sentences with the same settings (50 steps,
CFG 5 with the caption as negative prompt, xa_guidance 0.1). Each implementation runs in its own
fresh subprocess, so peak memory (RSS on CPU, allocated on GPU) is its own; a sampler thread
records the peak of each stage. The diffusers pipeline is used as it ships, with its inputs built
the way its docs build them (`get_embeds` on the sentences, `invert(...).latents`, caption as
negative prompt). Building the edit direction is done before timing in both.

LEDITS++ XL runs as its docs show it: `invert(image, source_prompt=caption)` with its defaults (skip 0.15, source
guidance 3.5), then the edit concepts [source (reversed), target] with edit guidance 5, on the model's DDIM scheduler
(LEDITS++'s edit-friendly DDPM inversion), the same components, image and number of steps.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

CAPTION = "a photo of a cat sitting on the grass"
SOURCE_SENTENCES = [
    "a photo of a cat",
    "a cat sitting on the grass",
    "a painting of a cat",
    "a picture of a cat in the grass",
]
TARGET_SENTENCES = [
    "a photo of a dog",
    "a dog sitting on the grass",
    "a painting of a dog",
    "a picture of a dog in the grass",
]


class PeakMemory:
    """Peak resident memory (CPU, sampled every 5 ms) or peak allocated memory (CUDA) within a block, in MiB."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.peak_mib = 0.0

    @staticmethod
    def _rss_mib() -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    @contextmanager
    def measure(self) -> Iterator[None]:
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            yield
            torch.cuda.synchronize()
            self.peak_mib = torch.cuda.max_memory_allocated() / 2**20
            return
        peak, stop = [self._rss_mib()], threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], self._rss_mib())
                stop.wait(0.005)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop.set()
            sampler.join()
            self.peak_mib = max(peak[0], self._rss_mib())


@dataclass
class StageResult:
    seconds: float
    peak_mib: float


@dataclass
class WorkerResult:
    implementation: str
    stages: dict[str, StageResult] = field(default_factory=dict)
    unet_calls: int | None = None

    def total(self) -> StageResult:
        return StageResult(
            sum(s.seconds for k, s in self.stages.items() if k in ("invert", "edit")),
            max(s.peak_mib for k, s in self.stages.items() if k in ("invert", "edit")),
        )


def _timed(results: WorkerResult, name: str, device: str, fn: Any) -> Any:
    memory = PeakMemory(device)
    with memory.measure():
        started = time.perf_counter()
        value = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    best = results.stages.get(name)  # repeated runs: the fastest time, the highest peak
    results.stages[name] = StageResult(
        min(seconds, best.seconds) if best else seconds,
        max(memory.peak_mib, best.peak_mib) if best else memory.peak_mib,
    )
    return value


def prepare_editor(model: str, device: str, dtype: str, num_targets: int, workdir: Path) -> tuple[Any, str, list[str]]:
    """The editor and sentence files every timing of ours uses: (editor, source bank, one target bank per target),
    each target's direction built (and cached) before any timing, as for diffusers."""
    from ..api import Pix2PixZero

    editor = Pix2PixZero.from_pretrained(
        model, device=device, dtype=dtype, captioner=lambda im: CAPTION, cache_dir=workdir / "cache", progress=False
    )
    source, targets = workdir / "source.txt", []
    source.write_text("\n".join(SOURCE_SENTENCES) + "\n")
    for i in range(num_targets):  # extra targets: the target bank with one more word, a distinct direction each
        path = workdir / f"target{i}.txt"
        path.write_text("\n".join(s + (" outside" * i) for s in TARGET_SENTENCES) + "\n")
        targets.append(str(path))
        editor.direction(str(source), str(path))
    return editor, str(source), targets


# local-edit options timed beside ours without them (`bench speed --option NAME`): EditConfig fields and the mask
EDIT_OPTIONS: dict[str, dict[str, Any]] = {
    "exact-inversion": {"exact_inversion": True},
    "self-attention": {"self_attention_injection": 0.3},
    "auto-mask": {"mask": "auto"},
    "mask": {"mask": "half"},  # a fixed mask made in code: the image's left half may change
    "all": {"exact_inversion": True, "self_attention_injection": 0.3, "mask": "auto"},
    "empty-negative-prompt": {"negative_prompt": "empty"},  # CFG against "" instead of the caption
    # late guidance that strengthens every edit (both tests at their largest) and reads the maps: its costliest case
    "late-guidance": {"late_guidance_factor": 1.5, "late_guidance_area": 1.0, "late_guidance_movement": 100.0},
    # no cross-attention guidance from half the steps for every edit (both tests at their largest)
    "late-cross-attention-guidance": {
        "late_guidance_xa": 0.0,
        "late_guidance_area": 1.0,
        "late_guidance_movement": 100.0,
    },
}


def half_image_mask(size: tuple[int, int]) -> Any:
    """A mask image (white = may change) whose left half is white."""
    from PIL import Image, ImageDraw

    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle((0, 0, size[0] // 2 - 1, size[1] - 1), fill=255)
    return mask


def option_settings(option: str, image_size: tuple[int, int]) -> tuple[dict[str, Any], Any]:
    """(EditConfig overrides, mask source) of a named local-edit option; 'none' is ours without options."""
    if option == "none":
        return {}, None
    if option not in EDIT_OPTIONS:
        raise ValueError(f"unknown edit option '{option}'; choose one of {', '.join(EDIT_OPTIONS)}")
    fields = dict(EDIT_OPTIONS[option])
    mask = fields.pop("mask", None)
    return fields, half_image_mask(image_size) if mask == "half" else mask


def run_ours(
    model: str,
    image: Any,
    steps: int,
    device: str,
    dtype: str,
    num_targets: int,
    workdir: Path,
    xa_layers: str = "all",
    repeat: int = 1,
    option: str = "none",
) -> WorkerResult:
    from ..api import EditOptions
    from ..config import EditConfig, InversionConfig

    editor, source, targets = prepare_editor(model, device, dtype, num_targets, workdir)
    # the pipeline's settings, its summed attention loss and mean regularizer losses included (our defaults rescale
    # both off SD 1.x at 512 px)
    inv_cfg = InversionConfig(num_steps=steps, reg_loss_scale="mean")
    edit_cfg = EditConfig(
        num_steps=steps, guidance_scale=5.0, xa_guidance=0.1, xa_layers=xa_layers, xa_loss_scale="sum"
    )
    if editor.components.is_sdxl:  # no pix2pix-zero pipeline to mirror on SDXL: our default per-element loss scales
        inv_cfg, edit_cfg = InversionConfig(num_steps=steps), replace(edit_cfg, xa_loss_scale="sd512")
    fields, mask = option_settings(option, image.size)
    edit_cfg = replace(edit_cfg, **fields)

    def edit(inversion: Any, chosen: list[str], cfg: EditConfig = edit_cfg) -> Any:
        return editor.edit(inversion, source, chosen, EditOptions(config=cfg, mask=mask))

    if _needs_warmup(device):
        warm_inv, warm_edit = replace(inv_cfg, num_steps=WARMUP_STEPS), replace(edit_cfg, num_steps=WARMUP_STEPS)
        edit(editor.invert(image, caption=CAPTION, config=warm_inv, use_cache=False), targets, warm_edit)
    results = WorkerResult(ours_name(num_targets, xa_layers, option))
    calls_before = editor.components.eps_model.num_calls
    # with several targets, the first target alone is timed too, back to back in this process and in alternating order,
    # so the extra-target cost compares two runs of one process rather than two processes started minutes apart
    edits = [("edit_first", targets[:1]), ("edit", targets)] if num_targets > 1 else [("edit", targets)]
    first_target_calls = 0  # UNet calls are counted for the inversion and the edit of all targets
    for rep in range(repeat):
        inversion = _timed(
            results, "invert", device, lambda: editor.invert(image, caption=CAPTION, config=inv_cfg, use_cache=False)
        )
        for stage, chosen in edits if rep % 2 == 0 else edits[::-1]:
            calls = editor.components.eps_model.num_calls
            _timed(results, stage, device, lambda chosen=chosen, inversion=inversion: edit(inversion, chosen))
            if stage == "edit_first":
                first_target_calls += editor.components.eps_model.num_calls - calls
    results.unet_calls = (editor.components.eps_model.num_calls - calls_before - first_target_calls) // repeat
    return results


LEDITS_SOURCE, LEDITS_TARGET = "cat", "dog"  # the concepts of SOURCE_SENTENCES and TARGET_SENTENCES
LEDITS_XL = "diffusers LEDITS++ XL"


def run_ledits_xl(model: str, image: Any, steps: int, device: str, dtype: str, repeat: int = 1) -> WorkerResult:
    from diffusers import LEditsPPPipelineStableDiffusionXL

    from ..components import resolve_dtype, resolve_model

    pipe = LEditsPPPipelineStableDiffusionXL.from_pretrained(
        resolve_model(model), torch_dtype=resolve_dtype(dtype), add_watermarker=False
    )
    if pipe.vae.dtype == torch.float16 and pipe.vae.config.force_upcast:
        pipe.vae.to(torch.float32)  # as its own decode does; its encode does not, and would overflow in float16
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator(device="cpu").manual_seed(0)

    def invert(n):
        return pipe.invert(image=image, source_prompt=CAPTION, num_inversion_steps=n, generator=generator)

    def edit(_):
        return pipe(
            editing_prompt=[LEDITS_SOURCE, LEDITS_TARGET],
            reverse_editing_direction=[True, False],
            edit_guidance_scale=5.0,
            edit_threshold=0.9,
            generator=generator,
        ).images[0]

    if _needs_warmup(device):
        edit(invert(WARMUP_STEPS))
    results = WorkerResult(LEDITS_XL)
    for _ in range(repeat):
        inverted = _timed(results, "invert", device, lambda: invert(steps))
        _timed(results, "edit", device, lambda inverted=inverted: edit(inverted))
    return results


def run_diffusers(model: str, image: Any, steps: int, device: str, dtype: str, repeat: int = 1) -> WorkerResult:
    from diffusers import DDIMInverseScheduler, DDIMScheduler, StableDiffusionPix2PixZeroPipeline

    from ..components import resolve_dtype, resolve_model

    pipe = StableDiffusionPix2PixZeroPipeline.from_pretrained(
        resolve_model(model),
        torch_dtype=resolve_dtype(dtype),
        safety_checker=None,
        feature_extractor=None,
        caption_generator=None,
        caption_processor=None,
        requires_safety_checker=False,
    )
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)  # as in the pipeline's docs
    pipe.inverse_scheduler = DDIMInverseScheduler.from_config(pipe.scheduler.config)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    source_embeds, target_embeds = pipe.get_embeds(SOURCE_SENTENCES), pipe.get_embeds(TARGET_SENTENCES)
    generator = torch.Generator(device="cpu").manual_seed(0)

    def invert(n):
        return pipe.invert(CAPTION, image=image, num_inference_steps=n, generator=generator).latents

    def edit(n, latents):
        return pipe(
            CAPTION,
            source_embeds=source_embeds,
            target_embeds=target_embeds,
            num_inference_steps=n,
            guidance_scale=5.0,
            cross_attention_guidance_amount=0.1,
            generator=generator,
            latents=latents,
            negative_prompt=CAPTION,
        ).images[0]

    if _needs_warmup(device):
        edit(WARMUP_STEPS, invert(WARMUP_STEPS))
    results = WorkerResult("diffusers")
    for _ in range(repeat):
        inverted = _timed(results, "invert", device, lambda: invert(steps))
        _timed(results, "edit", device, lambda inverted=inverted: edit(steps, inverted))
    return results


WARMUP_STEPS = 2


def _is_sdxl(model: str) -> bool:
    from ..components_sdxl import is_sdxl_model

    return is_sdxl_model(model)


def _needs_warmup(device: str) -> bool:
    """On a GPU the first calls pay for kernel loading and autotuning: both implementations
    run a short untimed inversion + edit first.  CPUs have no such one-off cost."""
    return not device.startswith("cpu")


def worker_main(argv: list[str]) -> None:
    """Entry point of one measurement subprocess: prints one JSON line."""
    spec = json.loads(argv[0])
    torch.set_num_threads(spec["threads"])
    from ..images import load_image

    image = load_image(spec["image"])
    with tempfile.TemporaryDirectory() as tmp:
        if spec["implementation"] == LEDITS_XL:
            result = run_ledits_xl(
                spec["model"], image, spec["steps"], spec["device"], spec["dtype"], spec.get("repeat", 1)
            )
        elif spec["implementation"] == "diffusers":
            result = run_diffusers(
                spec["model"], image, spec["steps"], spec["device"], spec["dtype"], spec.get("repeat", 1)
            )
        else:
            result = run_ours(
                spec["model"],
                image,
                spec["steps"],
                spec["device"],
                spec["dtype"],
                spec["num_targets"],
                Path(tmp),
                spec.get("xa_layers", "all"),
                spec.get("repeat", 1),
                spec.get("option", "none"),
            )
    print("RESULT " + json.dumps(asdict(result)))


def ours_name(num_targets: int = 1, xa_layers: str = "all", option: str = "none") -> str:
    name = "pix2pix-zero" if num_targets == 1 else f"pix2pix-zero ×{num_targets}"
    name = name if xa_layers == "all" else f"{name}, xa_layers={xa_layers}"
    return name if option == "none" else f"{name}, {option}"


def measure(
    implementation: str,
    model: str,
    image: Path,
    steps: int,
    device: str,
    dtype: str,
    threads: int,
    num_targets: int = 1,
    xa_layers: str = "all",
    repeat: int = 1,
    option: str = "none",
) -> WorkerResult:
    """One measurement in a fresh subprocess; with `repeat` > 1 the fastest of that many timed runs per stage."""
    spec = dict(
        implementation=implementation,
        model=model,
        image=str(image),
        steps=steps,
        device=device,
        dtype=dtype,
        threads=threads,
        num_targets=num_targets,
        xa_layers=xa_layers,
        repeat=repeat,
        option=option,
    )
    env = {**os.environ, "TRANSFORMERS_VERBOSITY": "error", "DIFFUSERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-m", "pix2pix_zero.bench.speed", json.dumps(spec)], capture_output=True, text=True, env=env
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"{implementation} benchmark failed:\n{done.stderr[-3000:]}")
    raw = json.loads(line.removeprefix("RESULT "))
    return WorkerResult(
        raw["implementation"], {k: StageResult(**v) for k, v in raw["stages"].items()}, raw["unet_calls"]
    )


def bench_image(size: int, folder: Path) -> Path:
    """A deterministic test picture at the model's native size (timings do not depend on content)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), (90, 140, 200))
    draw = ImageDraw.Draw(image)
    draw.ellipse((size * 0.2, size * 0.3, size * 0.7, size * 0.9), fill=(220, 120, 40))
    draw.rectangle((size * 0.55, size * 0.1, size * 0.9, size * 0.45), fill=(40, 160, 60))
    path = folder / f"bench-{size}.png"
    image.save(path)
    return path


def resolve_bench_model(name: str, cache: Path) -> tuple[str, int]:
    """(model folder or id, native image size) for a bench model name; random architectures are built once."""
    from .random_models import ARCHITECTURES, SDXL_ARCHITECTURES, build_random_sd, build_random_sdxl, native_size

    if name in ARCHITECTURES:
        folder = build_random_sd(cache / "random-models" / name, name)
        return str(folder), native_size(name)
    if name in SDXL_ARCHITECTURES:
        folder = build_random_sdxl(cache / "random-models" / name, name)
        return str(folder), native_size(name)
    from diffusers import UNet2DConditionModel

    from ..components import resolve_model

    resolved = resolve_model(name)
    unet_config = UNet2DConditionModel.load_config(resolved, subfolder="unet")
    vae_config = json.loads((Path(resolved) / "vae" / "config.json").read_text()) if Path(resolved).is_dir() else {}
    factor = 2 ** (len(vae_config.get("block_out_channels", [0, 0, 0, 0])) - 1)
    return resolved, int(unet_config["sample_size"]) * factor


def run_speed_benchmark(
    models: list[str],
    steps: int,
    device: str,
    dtype: str,
    threads: int,
    num_targets: int,
    cache: Path,
    on_result: Any = None,
    xa_layer_variants: Sequence[str] = (),
    repeat: int = 1,
    edit_options: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """For each model: diffusers, ours, ours with several targets, ours guiding other layer sets
    (`xa_layer_variants`, e.g. 'encoder') and ours with each local-edit option (`edit_options`, names of
    EDIT_OPTIONS); one row per measurement."""
    unknown = [o for o in edit_options if o not in EDIT_OPTIONS]
    if unknown:
        raise ValueError(f"unknown edit option '{unknown[0]}'; choose one of {', '.join(EDIT_OPTIONS)}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            model, size = resolve_bench_model(name, cache)
            image = bench_image(size, Path(tmp))
            theirs = LEDITS_XL if _is_sdxl(model) else "diffusers"
            runs = [(theirs, 1, "all", "none"), ("ours", 1, "all", "none")]
            runs += [("ours", num_targets, "all", "none")] if num_targets > 1 else []
            runs += [("ours", 1, layers, "none") for layers in xa_layer_variants if layers != "all"]
            runs += [("ours", 1, "all", option) for option in dict.fromkeys(edit_options)]
            for implementation, targets, layers, option in runs:
                result = measure(
                    implementation, model, image, steps, device, dtype, threads, targets, layers, repeat, option
                )
                row = {
                    "model": name,
                    "size": size,
                    "implementation": result.implementation,
                    "targets": targets,
                    **({"option": option} if option != "none" else {}),
                    "steps": steps,
                    "device": device,
                    "dtype": dtype,
                    "unet_calls": result.unet_calls,
                    "repeat": repeat,
                    **{f"{k}_s": v.seconds for k, v in result.stages.items()},
                    **{f"{k}_peak_mib": v.peak_mib for k, v in result.stages.items()},
                    "total_s": result.total().seconds,
                    "total_peak_mib": result.total().peak_mib,
                }
                rows.append(row)
                if on_result is not None:
                    on_result(row)
    return rows


def summarize(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model: speed-up (diffusers time / ours) and memory ratio (ours / diffusers) per stage; extra-target cost."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        theirs = next(r for r in rows if r["model"] == model and r["implementation"].startswith("diffusers"))
        ours = next(r for r in rows if r["model"] == model and r["implementation"] == "pix2pix-zero")
        many = next((r for r in rows if r["model"] == model and r["targets"] > 1), None)
        singles = [r for r in rows if r["model"] == model and r is not theirs and r["targets"] == 1]
        for single in sorted(singles, key=lambda r: r is not ours):  # the default configuration first
            summary = {"model": model, "implementation": single["implementation"]}
            for stage in ("invert", "edit", "total"):
                summary[f"{stage}_speedup"] = theirs[f"{stage}_s"] / single[f"{stage}_s"]
                summary[f"{stage}_memory_ratio"] = single[f"{stage}_peak_mib"] / theirs[f"{stage}_peak_mib"]
            if many is not None and single is ours:
                # the first target's edit from the many-target process when it was timed there (same process,
                # alternating)
                first_edit = many.get("edit_first_s", ours["edit_s"])
                extra = (many["edit_s"] - first_edit) / (many["targets"] - 1)
                summary["extra_target_cost"] = extra / first_edit  # against the first edit alone
                summary["extra_target_cost_job"] = extra / (
                    many["invert_s"] + first_edit
                )  # against inversion + first edit
            out.append(summary)
    return out


def option_costs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per model and local-edit option: its time and peak memory per stage over ours without options (the first
    ours row of that model)."""
    out = []
    for model in dict.fromkeys(r["model"] for r in rows):
        ours = next((r for r in rows if r["model"] == model and r["implementation"] == "pix2pix-zero"), None)
        for row in (r for r in rows if r["model"] == model and "option" in r and ours is not None):
            cost = {"model": model, "option": row["option"], "implementation": row["implementation"]}
            for stage in ("invert", "edit", "total"):
                cost[f"{stage}_s"], cost[f"{stage}_peak_mib"] = row[f"{stage}_s"], row[f"{stage}_peak_mib"]
                cost[f"{stage}_time_ratio"] = row[f"{stage}_s"] / ours[f"{stage}_s"]
                cost[f"{stage}_memory_ratio"] = row[f"{stage}_peak_mib"] / ours[f"{stage}_peak_mib"]
            cost["unet_calls"], cost["unet_calls_ours"] = row.get("unet_calls"), ours.get("unet_calls")
            out.append(cost)
    return out


def format_option_costs(costs: list[dict[str, Any]]) -> str:
    """The table of `option_costs`: seconds and peak MiB per stage, each with its ratio to ours without options."""
    lines = [
        "| model | option | invert s | edit s | total s | invert peak MiB | edit peak MiB | UNet calls |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in costs:
        cells = [f"{c[f'{stage}_s']:.2f} ({c[f'{stage}_time_ratio']:.2f}×)" for stage in ("invert", "edit", "total")]
        cells += [f"{c[f'{stage}_peak_mib']:.0f} ({c[f'{stage}_memory_ratio']:.2f}×)" for stage in ("invert", "edit")]
        lines.append(f"| {c['model']} | {c['option']} | {' | '.join(cells)} | {c['unet_calls'] or '–'} |")
    return "\n".join(lines)


def format_report(rows: list[dict[str, Any]], summaries: list[dict[str, Any]]) -> str:
    lines = [
        "| model | implementation | invert s | edit s | total s | invert peak MiB | edit peak MiB | UNet calls |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} ({r['size']} px) | {r['implementation']} | {r['invert_s']:.2f} | {r['edit_s']:.2f} | "
            f"{r['total_s']:.2f} | {r['invert_peak_mib']:.0f} | {r['edit_peak_mib']:.0f} | {r['unet_calls'] or '–'} |"
        )
    lines += [
        "",
        "| model | ours | speed-up invert | speed-up edit | speed-up total | memory ours/diffusers (invert, edit, "
        "total) | "
        "each extra target / first edit (edit alone; inversion + edit) |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        extra = (
            f"{s['extra_target_cost']:.2f}× edit, {s['extra_target_cost_job']:.2f}× job"
            if "extra_target_cost" in s
            else "–"
        )
        lines.append(
            f"| {s['model']} | {s['implementation']} | {s['invert_speedup']:.2f}× | {s['edit_speedup']:.2f}× | "
            f"{s['total_speedup']:.2f}× | "
            f"{s['invert_memory_ratio']:.2f}, {s['edit_memory_ratio']:.2f}, {s['total_memory_ratio']:.2f} | {extra} |"
        )
    costs = option_costs(rows)
    if costs:
        lines += [
            "",
            "Edit options, each against ours without options (× = option / ours, per stage):",
            "",
            format_option_costs(costs),
        ]
    return "\n".join(lines)


def plot_report(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Bar charts of time and peak memory per stage; None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(2, len(models), figsize=(5 * len(models), 7), squeeze=False)
    for col, model in enumerate(models):
        subset = [r for r in rows if r["model"] == model]
        labels = [r["implementation"] for r in subset]
        for row_index, (key, title) in enumerate([("_s", "seconds"), ("_peak_mib", "peak MiB")]):
            ax = axes[row_index][col]
            width = 0.8 / len(subset)
            for i, r in enumerate(subset):
                values = [r[f"invert{key}"], r[f"edit{key}"], r[f"total{key}"]]
                ax.bar([x + i * width for x in range(3)], values, width, label=labels[i])
            ax.set_xticks([x + width * (len(subset) - 1) / 2 for x in range(3)], ["invert", "edit", "total"])
            ax.set_title(f"{model}: {title}")
            ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


if __name__ == "__main__":
    worker_main(sys.argv[1:])
