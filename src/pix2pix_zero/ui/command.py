"""`pix2pix-zero ui`: serve the web app. Gradio is imported only when the command runs."""

from __future__ import annotations

from pathlib import Path

import click

from ..cli_common import USER_ERRORS, quiet_libraries
from ..config import PRESETS


@click.command("ui")
@click.option(
    "--model",
    "-m",
    default="shapesworld",
    show_default=True,
    help="Stable Diffusion 1.x/2.x or SDXL model: a hub id, a local diffusers folder, a single-file checkpoint, or "
    "'shapesworld' (the bundled offline model). It is loaded once, before the app starts.",
)
@click.option("--device", default="cpu", show_default=True, help="Torch device: cpu, cuda, cuda:1, mps.")
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16"]),
    default="float32",
    show_default=True,
    help="Model weights' dtype; float16/bfloat16 halve memory on a GPU.",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default="default",
    show_default=True,
    help="'default': our best version; 'official': the authors' code step for step (see `pix2pix-zero presets`). "
    "The app's sliders start at the preset's values.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 serves other machines too (there is no login: only on a trusted network).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=7860, show_default=True, help="Port to listen on.")
@click.option(
    "--max-upload-mb",
    type=click.FloatRange(min=0, min_open=True),
    default=20.0,
    show_default=True,
    help="Refuse uploaded images larger than this many megabytes (a pixel limit applies too).",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where concept embeddings and inversions are cached [default: $PIX2PIX_ZERO_CACHE or ~/.cache/pix2pix-zero].",
)
@click.option(
    "--captioner",
    default=None,
    help="BLIP captioning model (hub id or folder) [default: the model folder's captioner/, else "
    "Salesforce/blip-image-captioning-large].",
)
@click.option(
    "--concurrency",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Requests that may use the model at once; the rest wait in the queue (model calls are serialized anyway).",
)
@click.option(
    "--example",
    "examples",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="An example image offered in the app; repeatable "
    "[default: the shipped ShapesWorld scenes with the bundled model].",
)
@click.option(
    "--share",
    is_flag=True,
    help="Also serve through a public gradio.live link (needs internet; off by default, the app runs offline).",
)
def ui(
    model: str,
    device: str,
    dtype: str,
    preset: str,
    host: str,
    port: int,
    max_upload_mb: float,
    cache_dir: Path | None,
    captioner: str | None,
    concurrency: int,
    examples: tuple[Path, ...],
    share: bool,
) -> None:
    """Serve the web app: upload or pick an image, edit it, download the PNGs with metadata.

    Open the printed address in a browser. The model loads once at start; each image's inversion is
    cached, so more edits of the same image only run the edit.
    """
    try:
        from .app import launch
    except ImportError as error:
        raise click.ClickException(
            f"the web app needs Gradio ({error}); install it with: pip install -e '.[ui]' in the checkout"
        ) from error
    quiet_libraries()  # the model loads once, in a second or so: no weight-loading bars
    try:
        launch(
            model=model,
            device=device,
            dtype=dtype,
            host=host,
            port=port,
            share=share,
            max_upload_mb=max_upload_mb,
            cache_dir=cache_dir,
            concurrency=concurrency,
            preset=preset,
            captioner=captioner,
            examples=list(examples) if examples else None,
        )
    except USER_ERRORS as error:
        raise click.ClickException(str(error) or type(error).__name__) from error
