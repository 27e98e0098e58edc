"""Training commands of ShapesWorld: `train`, `pool`, `export`, `concepts`, `report`.

Installed with this package they join the product's group as `pix2pix-zero shapesworld train` etc.
(entry points `pix2pix_zero.shapesworld_commands`); also runnable as
`python -m pix2pix_zero_workshop.cli`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from .train import DEFAULT_WORK_DIR, DEFAULTS

MODEL_NAMES = ("vae", "clip", "unet", "captioner", "judge")
ALL_ORDER = ("vae", "clip", "judge", "captioner", "unet")


@click.group(name="shapesworld-workshop", help="Train, export and report the ShapesWorld models.")
def shapesworld():
    pass


@shapesworld.command(
    "train",
    help="Train one ShapesWorld model (or all of them, one after another). "
    "Defaults per model: "
    + "; ".join(f"{k}: {v['steps']} steps, batch {v['batch_size']}, lr {v['lr']}" for k, v in DEFAULTS.items()),
)
@click.argument("model", type=click.Choice(MODEL_NAMES + ("all",)))
@click.option(
    "--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, help="Torch device to train on."
)
@click.option("--steps", type=int, default=None, help="Optimizer steps (default depends on the model).")
@click.option("--batch-size", type=int, default=None, help="Scenes per batch (default depends on the model).")
@click.option("--lr", type=float, default=None, help="Peak learning rate of AdamW (warm-up then cosine decay).")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed for data (per-step scene seeds) and initialisation."
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False),
    default=DEFAULT_WORK_DIR,
    show_default=True,
    help="Folder for checkpoints, logs and final weights (outside the package).",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="Continue from <work-dir>/<model>/checkpoint.pt if present.",
)
@click.option("--threads", type=int, default=None, help="torch.set_num_threads for this run (default: torch's choice).")
@click.option(
    "--time-limit",
    type=float,
    default=None,
    help="Stop after this many minutes of training; the cosine decay is stretched to end by then.",
)
@click.option("--save-every", type=int, default=200, show_default=True, help="Write a checkpoint every N steps.")
@click.option(
    "--freeze-text/--no-freeze-text",
    default=False,
    show_default=True,
    help="CLIP only: keep the text tower fixed and train the vision tower and projections "
    "(to continue CLIP training after the UNet was trained on its text tower).",
)
@click.option(
    "--decoder-only/--no-decoder-only",
    default=False,
    show_default=True,
    help="VAE only: keep the encoder (hence the latent space and scaling factor) fixed and train the "
    "decoder (to continue VAE training after the UNet was trained on its latents).",
)
@click.option(
    "--pool",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Draw batches from this pre-rendered scene pool (`shapesworld pool`) instead of rendering on the fly; "
    "use it on a GPU, where rendering would be the bottleneck.",
)
@click.option(
    "--patch-size",
    type=click.IntRange(1, 64),
    default=None,
    help="CLIP / captioner: ViT patch size in pixels (default 8; 4 sees shapes in finer detail, 4x the tokens).",
)
@click.option(
    "--twin-fraction",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="CLIP: share of each batch made of shape twins (pairs of scenes that differ only in one object's shape).",
)
@click.option(
    "--attribute-weight",
    type=click.FloatRange(0),
    default=1.0,
    show_default=True,
    help="CLIP: weight of a training-only linear head that reads the shapes and colours present off both "
    "towers' embeddings (0 = contrastive loss only, as in v1).",
)
@click.option(
    "--init",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Start from the weights in this pipeline folder (e.g. the bundled model) instead of "
    "random ones; a checkpoint in --work-dir still takes precedence.",
)
@click.option(
    "--through-vae",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="Judge: a VAE folder (e.g. <work-dir>/vae/final); half of each batch is shown encoded and decoded "
    "by it, as generated images and edits are, so the judge reads the VAE's softened outlines.",
)
@click.option(
    "--teacher",
    type=click.Path(file_okay=False, exists=True),
    default=None,
    help="VAE: train a new VAE (see --vae-channels) in this VAE folder's latent space: its encoder regresses "
    "the teacher's posterior, its decoder reads the teacher's latents, the scaling factor is kept, so a "
    "UNet trained on the teacher's latents stays valid.",
)
@click.option(
    "--vae-channels",
    default=None,
    metavar="C1,C2,C3",
    help="VAE: block_out_channels of a new VAE, e.g. 32,64,128 (default 16,32,64).",
)
@click.option(
    "--joint-clip",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="UNet: train the CLIP alongside with this weight on its loss (text tower unfrozen, so it learns what "
    "the UNet needs while staying aligned with the vision tower); 0 keeps the text tower frozen.",
)
@click.option(
    "--bf16/--no-bf16",
    default=False,
    show_default=True,
    help="Run forward passes under bf16 autocast (weights and optimizer stay fp32): faster on a GPU.",
)
def train_cmd(
    model,
    device,
    steps,
    batch_size,
    lr,
    seed,
    work_dir,
    resume,
    threads,
    time_limit,
    save_every,
    freeze_text,
    decoder_only,
    pool,
    patch_size,
    twin_fraction,
    attribute_weight,
    init,
    through_vae,
    teacher,
    vae_channels,
    joint_clip,
    bf16,
):
    from .train import TRAINERS, TrainArgs

    try:
        channels = tuple(int(c) for c in vae_channels.split(",")) if vae_channels else None
    except ValueError:
        raise click.BadParameter(
            f"{vae_channels!r}: expected comma-separated integers such as 32,64,128", param_hint="--vae-channels"
        ) from None
    names = ALL_ORDER if model == "all" else (model,)
    for name in names:
        d = DEFAULTS[name]
        a = TrainArgs(
            steps=steps or d["steps"],
            batch_size=batch_size or d["batch_size"],
            lr=lr or d["lr"],
            seed=seed,
            device=device,
            work_dir=work_dir,
            resume=resume,
            threads=threads,
            time_limit=time_limit,
            warmup=d.get("warmup", 100),
            save_every=save_every,
            freeze_text=freeze_text,
            decoder_only=decoder_only,
            pool=pool,
            patch_size=patch_size,
            twin_fraction=twin_fraction,
            attribute_weight=attribute_weight,
            init=init,
            through_vae=through_vae,
            teacher=teacher,
            vae_channels=channels,
            joint_clip=joint_clip,
            bf16=bf16,
        )
        t0 = time.time()
        res = TRAINERS[name](a)
        click.echo(f"{name}: {json.dumps(res, default=str)} ({time.time() - t0:.0f}s wall)")


@shapesworld.command(
    "pool", help="Pre-render a pool of training scenes (pairs of shape twins) into OUT, for `train --pool OUT`."
)
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--size", type=click.IntRange(2), default=200_000, show_default=True, help="Number of scenes (about 12 KB each)."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Pool seed (the pool is the same for any --workers)."
)
@click.option("--workers", type=click.IntRange(1), default=None, help="Rendering processes (default: all CPU cores).")
def pool_cmd(out, size, seed, workers):
    from .train import build_pool

    t0 = time.time()
    folder = build_pool(out, size, seed=seed, workers=workers)
    click.echo(f"pool of {size} scenes in {folder} ({time.time() - t0:.0f}s)")


@shapesworld.command("export", help="Assemble the bundled model folder from the final weights in --work-dir.")
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False),
    default=DEFAULT_WORK_DIR,
    show_default=True,
    help="Folder holding <model>/final from `shapesworld train`.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Destination folder (default: the package's assets/shapesworld).",
)
@click.option("--unet-fp16/--unet-fp32", default=True, show_default=True, help="Store the UNet weights in float16.")
@click.option(
    "--sentences", type=int, default=750, show_default=True, help="Sentences per word in sentences/<word>.txt."
)
def export_cmd(work_dir, out, unet_fp16, sentences):
    from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR

    from .train import export_bundle

    res = export_bundle(work_dir, out or BUNDLED_MODEL_DIR, unet_fp16=unet_fp16, sentences=sentences)
    click.echo(json.dumps(res, indent=2))


@shapesworld.command(
    "concepts",
    help="Embed the model folder's sentence banks into its concepts/ folder, the "
    "precomputed concept embeddings that ship with it (`export` runs this too).",
)
@click.option(
    "--model-dir", type=click.Path(file_okay=False), default=None, help="Model folder (default: the bundled one)."
)
def concepts_cmd(model_dir):
    from pix2pix_zero.shapesworld import BUNDLED_MODEL_DIR

    from .concepts import build_shipped_concepts

    written = build_shipped_concepts(model_dir or BUNDLED_MODEL_DIR)
    click.echo(f"wrote {len(written)} concept embeddings to {written[0].parent if written else model_dir}")


@shapesworld.command("report", help="Print the quality report of a ShapesWorld model folder on held-out scenes.")
@click.option(
    "--model-dir", type=click.Path(file_okay=False), default=None, help="Model folder (default: the bundled one)."
)
@click.option("--num-scenes", type=int, default=100, show_default=True, help="Held-out scenes per measurement.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Evaluation seed (scenes come from the held-out seed range)."
)
@click.option("--steps", type=int, default=50, show_default=True, help="DDIM steps for the text-to-image samples.")
@click.option("--guidance", type=float, default=5.0, show_default=True, help="Classifier-free guidance scale.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True, help="Torch device.")
@click.option("--threads", type=int, default=None, help="torch.set_num_threads for this run.")
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the numbers to this JSON file.",
)
@click.option(
    "--samples-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Write a grid of the text-to-image samples here.",
)
def report_cmd(model_dir, num_scenes, seed, steps, guidance, device, threads, json_path, samples_dir):
    import torch

    from .report import format_report, quality_report

    if threads:
        torch.set_num_threads(threads)
    res = quality_report(
        model_dir,
        num_scenes=num_scenes,
        seed=seed,
        steps=steps,
        guidance=guidance,
        device=device,
        samples_dir=samples_dir,
    )
    click.echo(format_report(res))
    if json_path:
        Path(json_path).write_text(json.dumps(res, indent=2))
        click.echo(f"wrote {json_path}")


main = shapesworld

if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    shapesworld()
