"""Images in and out: loading any file safely, resizing to the model's grid, PNGs with metadata.

Outputs are written atomically (temporary file + rename) and never replace an existing file
unless asked, so an interrupted or repeated run loses nothing already written.
"""

from __future__ import annotations

import io
import json
import os
import struct
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageOps, PngImagePlugin, UnidentifiedImageError
from torch import Tensor

from .files import OutputExistsError, atomic_write

__all__ = ["OutputExistsError"]  # re-exported: callers of earlier versions import it from here


# The formats read, decided by the file's content, never its extension: anything else (EPS, PDF, PSD, ...) is refused
# before a decoder runs, so a PostScript file renamed .png never reaches Ghostscript. GIF and TIFF: the first frame.
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "TIFF", "BMP")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".tif", ".tiff", ".bmp")
MAX_INPUT_PIXELS = 64_000_000


class ImageError(ValueError):
    """An input image could not be used."""


def load_image(source: str | os.PathLike[str] | Image.Image, max_pixels: int = MAX_INPUT_PIXELS) -> Image.Image:
    """Open an image file (or take a PIL image), honour EXIF orientation and convert to RGB.

    Only IMAGE_FORMATS are read, recognized by content. Transparent images are composited on white;
    greyscale, palette, CMYK and 16-bit images are converted. Corrupt, truncated, non-image, other-format
    and oversized files raise ImageError naming the file. The CLI, batch and web app all load through here.
    """
    if not isinstance(source, (str, os.PathLike, Image.Image)):
        hint = ": PIL.Image.fromarray(array) makes one of an array" if hasattr(source, "__array__") else ""
        raise TypeError(f"an image is a file path or a PIL image, got {type(source).__name__}{hint}")
    name = "<image>" if isinstance(source, Image.Image) else str(source)
    if isinstance(source, Image.Image):
        image = source
    else:
        path = Path(source)
        if path.is_dir():
            raise ImageError(f"{path} is a folder, not an image (`pix2pix-zero batch` edits a folder)")
        if not path.is_file():
            raise ImageError(f"image file not found: {path}")
        if path.stat().st_size == 0:
            raise ImageError(f"{path} is empty (0 bytes)")
        try:
            with warnings.catch_warnings():  # `max_pixels` is the limit, checked below; Pillow's warning is not
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image = Image.open(path, formats=IMAGE_FORMATS)
                _check_pixels(image, name, max_pixels)  # from the header, before decoding anything
                image.load()
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
            raise ImageError(f"{path}: image is too large to process safely ({error})") from error
        except UnidentifiedImageError as error:
            raise ImageError(
                f"{path}: not a PNG, JPEG, WebP, GIF, TIFF or BMP image (judged by its content, not its "
                "name); convert it to PNG"
            ) from error
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
            if isinstance(error, ImageError):
                raise
            raise ImageError(f"{path}: corrupt or truncated image ({error})") from error
    _check_pixels(image, name, max_pixels)
    try:
        return to_rgb(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError, TypeError, KeyError) as error:  # a crafted EXIF block or an unusual mode
        reason = str(error)[:200]
        raise ImageError(f"{name}: cannot convert this image to RGB ({reason}); make it an 8-bit RGB PNG") from error


def _check_pixels(image: Image.Image, name: str, max_pixels: int) -> None:
    width, height = image.size
    if width * height > max_pixels:
        raise ImageError(
            f"{name}: {width}x{height} has {width * height:,} pixels, more than the limit of {max_pixels:,} "
            "(max_input_pixels, --max-input-pixels)"
        )
    if width < 1 or height < 1:
        raise ImageError(f"{name}: empty image ({width}x{height})")


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("I;16", "I;16B", "I;16L"):  # fixed 16-bit scale: a flat or dark image keeps its level
        image = Image.fromarray((np.asarray(image, dtype=np.float64) / 257).round().astype(np.uint8))
    if image.mode in ("I", "F"):  # 32-bit: the scale its values fit (a stretch only when none does)
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scales = [(255.0, 1.0), (65535.0, 255.0 / 65535.0)] if image.mode == "I" else [(1.0, 255.0), (255.0, 1.0)]
        factor = next((factor for top, factor in scales if low >= 0 and high <= top), None)
        scaled = array * factor if factor is not None else (array - low) / max(high - low, 1e-12) * 255
        image = Image.fromarray(np.clip(scaled, 0, 255).round().astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "RGBa"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def fit_size(width: int, height: int, long_side: int, multiple: int, keep_aspect: bool = True) -> tuple[int, int]:
    """Output (width, height): long side ≈ long_side, both sides rounded to a multiple, at least one multiple."""
    if not keep_aspect:
        side = max(multiple, round(long_side / multiple) * multiple)
        return side, side
    scale = long_side / max(width, height)
    return tuple(max(multiple, round(side * scale / multiple) * multiple) for side in (width, height))  # type: ignore[return-value]


def prepare_image(image: Image.Image, long_side: int, multiple: int, keep_aspect: bool = True) -> Image.Image:
    size = fit_size(*image.size, long_side=long_side, multiple=multiple, keep_aspect=keep_aspect)
    return image if image.size == size else image.resize(size, Image.LANCZOS)


Box = tuple[float, float, float, float]  # (left, top, right, bottom) as fractions of an image's width and height


def pad_to_square(image: Image.Image) -> tuple[Image.Image, Box]:
    """Pad the short side, evenly on both ends, with the image's border colour (the median of its outermost pixels), so
    a model trained on square images sees an undistorted scene on a wider background; returns the square image and
    where the original lies in it, for `crop_to_box` after the edit."""
    width, height = image.size
    side = max(width, height)
    if width == height:
        return image, (0.0, 0.0, 1.0, 1.0)
    pixels = np.asarray(image.convert("RGB"))
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    colour = tuple(int(c) for c in np.median(border, axis=0).round())
    left, top = (side - width) // 2, (side - height) // 2
    square = Image.new("RGB", (side, side), colour)
    square.paste(image.convert("RGB"), (left, top))
    return square, (left / side, top / side, (left + width) / side, (top + height) / side)


def crop_to_box(image: Image.Image, box: Box) -> Image.Image:
    """The part of `image` inside `box` (fractions, as `pad_to_square` returns), rounded to whole pixels."""
    width, height = image.size
    pixel_box = (round(box[0] * width), round(box[1] * height), round(box[2] * width), round(box[3] * height))
    return image if pixel_box == (0, 0, width, height) else image.crop(pixel_box)


def pil_to_tensor(image: Image.Image) -> Tensor:
    """RGB PIL -> (1, 3, H, W) float32 in [-1, 1]."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()


def tensor_to_pil(images: Tensor) -> list[Image.Image]:
    """(B, 3, H, W) in [0, 1] -> list of RGB PIL images."""
    arrays = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return [Image.fromarray(a) for a in arrays]


def atomic_write_bytes(path: Path, data: bytes, overwrite: bool = False) -> None:
    """Kept for callers of earlier versions: `files.atomic_write`."""
    atomic_write(path, data, overwrite)


def save_png(
    image: Image.Image,
    path: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
    overwrite: bool = False,
    sidecar_only: dict[str, Any] | None = None,
) -> Path:
    """Write a PNG with `metadata` embedded (tEXt chunk 'pix2pix-zero') and in a `.json` sidecar, atomically.

    `sidecar_only` (e.g. wall-clock timings) goes to the sidecar alone, so the same run gives byte-identical PNGs.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    sidecar = path.with_suffix(".json")
    for target in (path, sidecar) if metadata is not None else (path,):
        if target.exists() and not overwrite:
            raise OutputExistsError(f"{target} exists already; choose another output folder or pass --overwrite")
    info = PngImagePlugin.PngInfo()
    if metadata is not None:
        info.add_text("pix2pix-zero", json.dumps(metadata, sort_keys=True, default=str))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    if metadata is not None:
        sidecar_data = {**metadata, **(sidecar_only or {})}
        text = json.dumps(sidecar_data, indent=2, sort_keys=True, default=str) + "\n"
        atomic_write(sidecar, text.encode(), overwrite)
    atomic_write(path, buffer.getvalue(), overwrite)
    return path


def read_png_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    with Image.open(path) as image:
        text = image.info.get("pix2pix-zero")
    if text is None:
        raise ValueError(f"{path} carries no pix2pix-zero metadata")
    return json.loads(text)


def labelled_grid(images: Sequence[Image.Image], labels: Sequence[str], tile: int | None = None) -> Image.Image:
    """One row of images with a caption strip under each (input | reconstruction | edits...)."""
    if len(images) != len(labels):
        raise ValueError("labelled_grid needs one label per image")
    tile = tile or max(max(im.size) for im in images)
    tile = max(tile, 128)  # small worlds (64 px) are upscaled so the labels stay readable
    strip = 28
    grid = Image.new("RGB", (tile * len(images), tile + strip), "white")
    draw = ImageDraw.Draw(grid)
    for i, (image, label) in enumerate(zip(images, labels)):
        scale = tile / max(image.size)
        shown = image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.NEAREST if scale > 1 else Image.LANCZOS
        )
        grid.paste(shown, (i * tile + (tile - shown.width) // 2, (tile - shown.height) // 2))
        text = label if len(label) <= tile // 6 else label[: tile // 6 - 1] + "…"
        draw.text((i * tile + 4, tile + 8), text, fill="black")
    return grid
