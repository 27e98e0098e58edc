"""Masks of where an edit may act: read from a file or image, carried to the latent grid, and used to put the
input's own pixels back outside them after decoding.

A mask is white where the image may change. Any size and mode is accepted: it is read as greyscale
(transparent parts count as black), turned by its EXIF orientation tag as the input photo is, resized to the
prepared image and thresholded at half grey.
On the latent grid a cell may change when any pixel under it may (max-pooling). After decoding,
the edit is blended into the input with a soft edge of `mask_feather` pixels; farther outside the
mask the pixels are the input's exactly, since the VAE decoder spreads a latent change beyond a
latent mask.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from .images import IMAGE_FORMATS

AUTO = "auto"
MaskSource = str | os.PathLike[str] | Image.Image | None  # a mask file, an image, "auto", or None (no mask)


class MaskError(ValueError):
    """A mask could not be used."""


@dataclass(frozen=True)
class PixelMask:
    """A user's mask on the prepared image: (1, 1, H, W) of 0/1, 1 where the edit may act."""

    pixels: Tensor
    origin: str  # what it was read from, for the metadata

    def on_latent(self, factor: int) -> Tensor:
        """(1, 1, H/factor, W/factor): a latent cell may change when any pixel under it may."""
        return F.max_pool2d(self.pixels, factor, stride=factor)


def read_mask(source: MaskSource, size: tuple[int, int], max_pixels: int = 64_000_000) -> PixelMask | None:
    """The mask `source` (a file or PIL image) on an image of `size` (width, height); None for an all-white mask,
    which lets everything change, exactly like no mask. Raises MaskError for unreadable and all-black masks."""
    if source is None:
        return None
    name, grey = _greyscale(source, max_pixels)
    pixels = torch.from_numpy(np.asarray(grey.resize(size, Image.Resampling.BILINEAR), dtype=np.uint8) >= 128)
    if not pixels.any():
        raise MaskError(f"{name} is all black: nothing may change; paint white where the edit may act")
    if pixels.all():
        return None
    return PixelMask(pixels.float()[None, None], "image" if isinstance(source, Image.Image) else f"file:{source}")


def check_mask(source: MaskSource, max_pixels: int = 64_000_000) -> None:
    """Raise MaskError for a user's mask that cannot be used (unreadable, too large, all black) before any work is
    spent on the image; "auto" and None pass."""
    if source is None or (isinstance(source, str) and source == AUTO):
        return
    name, grey = _greyscale(source, max_pixels)
    if grey.getextrema()[1] < 128:
        raise MaskError(f"{name} is all black: nothing may change; paint white where the edit may act")


def _greyscale(source: str | os.PathLike[str] | Image.Image, max_pixels: int) -> tuple[str, Image.Image]:
    """(a name for errors, the mask as greyscale at its own size, transparent parts black)."""
    name = "the mask image" if isinstance(source, Image.Image) else f"mask file {source}"
    image = source if isinstance(source, Image.Image) else _open(Path(source), max_pixels)
    if image.width * image.height > max_pixels:
        raise MaskError(f"{name} has more than {max_pixels} pixels")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba)
    return name, image.convert("L")


def _open(path: Path, max_pixels: int) -> Image.Image:
    if path.is_dir():
        raise MaskError(f"mask file {path} is a folder; give an image file (white = may change) or {AUTO!r}")
    if not path.is_file():
        hint = f" (for the automatic mask, write {AUTO!r})" if str(path).lower() == AUTO else ""
        raise MaskError(f"mask file not found: {path}{hint}")
    try:
        image = Image.open(path, formats=IMAGE_FORMATS)  # by content; never PostScript (Ghostscript) or the like
        if image.width * image.height > max_pixels:
            raise MaskError(f"mask file {path} has more than {max_pixels} pixels")
        image.load()
        # a mask painted over a phone photo keeps its orientation tag: turned as the photo is (images.load_image)
        return ImageOps.exif_transpose(image)
    except UnidentifiedImageError:
        raise MaskError(
            f"mask file {path} is not an image this program reads (a PNG, JPEG, WebP, GIF, TIFF or BMP, judged by its "
            "content); give a PNG"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError) as error:
        if isinstance(error, MaskError):
            raise
        raise MaskError(f"mask file {path} is corrupt or truncated ({str(error)[:200]})") from None


def latent_to_pixels(latent_mask: Tensor, factor: int) -> Tensor:
    """(K, 1, h, w) latent mask -> (K, 1, h·factor, w·factor) pixel mask (each cell covers its pixels)."""
    return F.interpolate(latent_mask.float(), scale_factor=factor, mode="nearest")


def soft_edge(pixel_mask: Tensor, feather: int) -> Tensor:
    """A box blur of `feather` pixels each way: the weight of the edit, exactly 0 farther than `feather` outside."""
    if feather <= 0:
        return pixel_mask.float()
    size = 2 * feather + 1
    return F.avg_pool2d(pixel_mask.float(), size, stride=1, padding=feather, count_include_pad=False)


def composite(edited: Image.Image, original: Image.Image, weight: Tensor) -> Image.Image:
    """weight·edited + (1 − weight)·original per pixel, `weight` (H, W) in [0, 1]; where it is 0 the original's
    bytes."""
    if edited.size != original.size:
        edited = edited.resize(original.size, Image.Resampling.BICUBIC)
    a = torch.from_numpy(np.asarray(edited.convert("RGB"), dtype=np.float32))
    b = torch.from_numpy(np.asarray(original.convert("RGB"), dtype=np.float32))
    w = weight.float()[..., None]
    mixed = torch.where(w > 0, w * a + (1 - w) * b, b)
    return Image.fromarray(mixed.round().clamp(0, 255).to(torch.uint8).numpy())


def mask_to_image(mask: Tensor) -> Image.Image:
    """(H, W) of 0..1 -> a greyscale picture, white where the edit may act."""
    return Image.fromarray((mask.float().clamp(0, 1) * 255).round().to(torch.uint8).numpy())
