"""PIE-Bench's seven metrics (Ju et al., "PnP Inversion", ICLR 2024), computed as its evaluation code computes them.

- Masks: run-length encoded over the flattened 512×512 image as [start, length, ...] pairs, 1 = the region the edit
  may change; decoding also marks the 1-pixel border as edited (their guard against annotation errors there).
- Background preservation on 1 − mask: both images are multiplied by it and the metric runs on the WHOLE image,
  so the edited region counts as zero error (PSNR, MSE and SSIM with data range 1 on [0, 1] pixels; LPIPS with
  SqueezeNet). PSNR and MSE are therefore not means over the background pixels alone.
- Structure distance: MSE between the cosine self-similarity of the last layer's keys (all tokens, CLS included)
  of DINO ViT-B/8, whole images, fed as 0-255 pixel values normalized with ImageNet's mean and std (their quirk),
  resized so the short side is 224 (long side at most 480) bilinearly, without antialiasing.
- CLIP similarity: torchmetrics' CLIPScore, max(100 · cos(image, text), 0), with openai/clip-vit-large-patch14; the
  whole edited image against the target prompt, and the edited image multiplied by the mask (as uint8) against it.

Pure functions take uint8 or [0, 1] arrays of shape (H, W, 3) and boolean masks (H, W).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from .metrics import IMAGENET_MEAN, IMAGENET_STD, KeyExtractor, _features

PIE_SIZE = 512  # PIE-Bench's images and masks are 512×512
SSIM_KERNEL, SSIM_SIGMA, SSIM_K1, SSIM_K2 = (
    11,
    1.5,
    0.01,
    0.03,
)  # torchmetrics' StructuralSimilarityIndexMeasure defaults


# -- masks -------------------------------------------------------------------------------------


def decode_mask(rle: Sequence[int], shape: tuple[int, int] = (PIE_SIZE, PIE_SIZE), border: bool = True) -> np.ndarray:
    """PIE-Bench's RLE ([start, length, ...] over the row-major flattened image) -> bool (H, W), True = edited region.
    Runs past the end are cut there; `border` marks the 1-pixel frame as edited, as their `mask_decode` does."""
    if len(rle) % 2:
        raise ValueError(f"a PIE-Bench mask is [start, length, ...] pairs; this one has an odd length ({len(rle)})")
    size = shape[0] * shape[1]
    flat = np.zeros(size + 1, np.int32)  # +1 so a run that ends at the last pixel has somewhere to close
    for start, length in zip(rle[0::2], rle[1::2]):
        start, length = int(start), int(length)
        if start < 0 or length < 0:
            raise ValueError(f"a PIE-Bench mask run has a negative start or length ({start}, {length})")
        if start >= size or length == 0:
            continue
        flat[start] += 1
        flat[min(start + length, size)] -= 1
    mask = (np.cumsum(flat[:size]) > 0).reshape(shape)
    if border:
        mask[0, :] = mask[-1, :] = mask[:, 0] = mask[:, -1] = True
    return mask


def encode_mask(mask: np.ndarray) -> list[int]:
    """bool (H, W) -> PIE-Bench's RLE: the start and length of every run of True pixels, row-major."""
    flat = np.concatenate([[0], np.asarray(mask, bool).reshape(-1).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(flat))
    starts, ends = edges[0::2], edges[1::2]
    return [int(v) for pair in zip(starts, ends - starts) for v in pair]


# -- outputs as PIE-Bench reads them -------------------------------------------------------------


def read_output(image: Image.Image, size: int = PIE_SIZE) -> Image.Image:
    """An edited image as PIE-Bench scores it: a non-square one cropped to its bottom-right square (their outputs are
    [prompt | source | reconstruction | edit] strips and they keep the rightmost 512×512), then at size×size
    (bicubic)."""
    image = image.convert("RGB")
    w, h = image.size
    if w != h:
        side = min(w, h)
        image = image.crop((w - side, h - side, w, h))
    return image if image.size == (size, size) else image.resize((size, size), Image.BICUBIC)


def _unit(image: Image.Image | np.ndarray) -> np.ndarray:
    """uint8 image or array -> float32 (H, W, 3) in [0, 1], as their np.array(img).astype(float32) / 255."""
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    return array.astype(np.float32) / 255.0 if array.dtype == np.uint8 else array.astype(np.float32)


def _masked_pair(
    a: Image.Image | np.ndarray, b: Image.Image | np.ndarray, keep: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    x, y = _unit(a), _unit(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in size: {x.shape} vs {y.shape}")
    if keep is not None:
        if keep.shape != x.shape[:2]:
            raise ValueError(f"the mask is {keep.shape}, the images {x.shape[:2]}")
        weight = keep.astype(np.float32)[..., None]
        x, y = x * weight, y * weight
    return x, y


# -- background preservation ---------------------------------------------------------------------


def masked_mse(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray, keep: np.ndarray | None = None) -> float:
    """Mean squared error of the whole image after both are multiplied by `keep` (PIE-Bench's MSE of the unedited
    part)."""
    x, y = _masked_pair(a, b, keep)
    return float(np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2))


def masked_psnr(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray, keep: np.ndarray | None = None) -> float:
    """PSNR (data range 1) of the whole image after both are multiplied by `keep`; inf for identical images."""
    mse = masked_mse(a, b, keep)
    return float("inf") if mse == 0 else float(10.0 * np.log10(1.0 / mse))


def _gaussian_taps(size: int = SSIM_KERNEL, sigma: float = SSIM_SIGMA) -> Tensor:
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return g / g.sum()


def masked_ssim(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray, keep: np.ndarray | None = None) -> float:
    """SSIM (Wang et al. 2004; Gaussian window 11, σ 1.5, data range 1) averaged over the positions where the whole
    window lies inside the image, after both images are multiplied by `keep`: torchmetrics' SSIM before 1.5 (which
    PIE-Bench ran) and scikit-image's with Gaussian weights."""
    x, y = (torch.from_numpy(v).permute(2, 0, 1).double() for v in _masked_pair(a, b, keep))
    taps = _gaussian_taps()
    k = len(taps)

    def blur(t: Tensor) -> Tensor:  # the separable window as shifted weighted sums, its valid part only
        rows = sum(w * t[..., i : t.shape[-2] - k + 1 + i, :] for i, w in enumerate(taps))
        return sum(w * rows[..., i : rows.shape[-1] - k + 1 + i] for i, w in enumerate(taps))

    mu_x, mu_y, xx, yy, xy = blur(torch.stack([x, y, x * x, y * y, x * y]))
    var_x, var_y, cov = xx - mu_x**2, yy - mu_y**2, xy - mu_x * mu_y
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(ssim_map.mean())


# -- model-backed metrics ------------------------------------------------------------------------


class ClipScore:
    """torchmetrics' CLIPScore convention, max(100 · cos(E_image, E_text), 0), on a CLIP checkpoint (hub id or folder).
    Text longer than the model's positions is cut there, as torchmetrics does."""

    def __init__(self, model: str = "openai/clip-vit-large-patch14", device: str = "cpu") -> None:
        from transformers import CLIPModel, CLIPProcessor

        from ..components import load_part

        what = "CLIP for the CLIP similarity"
        self.model = load_part(CLIPModel.from_pretrained, model, what, "--clip", None).to(device).eval()
        self.processor = load_part(
            CLIPProcessor.from_pretrained, model, "CLIP processor", "--clip", None, use_fast=False
        )
        self.device = device

    @torch.no_grad()
    def __call__(self, image: Image.Image | np.ndarray, text: str) -> float:
        pixels = self.processor(images=[np.asarray(image)], return_tensors="pt").pixel_values.to(self.device)
        tokens = self.processor(text=[text], return_tensors="pt", padding=True)
        limit = self.model.config.text_config.max_position_embeddings
        ids, attention = (
            tokens["input_ids"][..., :limit].to(self.device),
            tokens["attention_mask"][..., :limit].to(self.device),
        )
        image_embed = F.normalize(_features(self.model.get_image_features(pixel_values=pixels)).float(), dim=-1)
        text_embed = F.normalize(
            _features(self.model.get_text_features(input_ids=ids, attention_mask=attention)).float(), dim=-1
        )
        return max(float(100.0 * (image_embed * text_embed).sum()), 0.0)

    def edited_region(self, image: Image.Image | np.ndarray, text: str, edited: np.ndarray) -> float:
        """CLIP score of the image multiplied by the mask of the edited region (uint8, black elsewhere)."""
        masked = (np.asarray(image).astype(np.float64) * edited[..., None]).astype(np.uint8)
        return self(masked, text)


def piebench_vit_input(image: Image.Image | np.ndarray, short: int = 224, long_max: int = 480) -> Tensor:
    """(1, 3, h, w) as PIE-Bench feeds its DINO: 0-255 float pixels, Resize(224, max_size=480) bilinear on the tensor
    (no antialiasing, torchvision < 0.17's tensor default), then ImageNet mean/std normalization."""
    pixels = torch.from_numpy(
        np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image).astype(np.float32)
    )
    pixels = pixels.permute(2, 0, 1)[None]
    h, w = pixels.shape[-2:]
    short_side, long_side = min(h, w), max(h, w)  # torchvision's _compute_resized_output_size
    new_short, new_long = short, int(short * long_side / short_side)
    if new_long > long_max:
        new_short, new_long = int(long_max * new_short / new_long), long_max
    size = (new_long, new_short) if w <= h else (new_short, new_long)
    resized = F.interpolate(pixels, size=size, mode="bilinear", align_corners=False, antialias=False)
    mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
    return (resized - mean) / std


class DinoStructure:
    """PIE-Bench's structure distance: MSE between the self-similarities of the last-layer keys of a ViT (default
    DINO ViT-B/8, transformers' port of the checkpoint their torch.hub call loads), hub id or folder."""

    def __init__(self, model: str = "facebook/dino-vitb8", device: str = "cpu") -> None:
        from transformers import ViTModel

        from ..components import load_part

        vit = load_part(
            ViTModel.from_pretrained, model, "ViT for the structure distance", "--dino", None, add_pooling_layer=False
        ).to(device)
        self.extractor = KeyExtractor(
            vit,
            lambda images: torch.cat([piebench_vit_input(i) for i in images]).to(device),
            interpolate_pos_encoding=True,
        )

    def __call__(self, source: Image.Image | np.ndarray, edited: Image.Image | np.ndarray) -> float:
        return float(structure_distance_of_keys(self.extractor.keys([source]), self.extractor.keys([edited]))[0])


def structure_distance_of_keys(keys_a: Tensor, keys_b: Tensor, eps: float = 1e-8) -> Tensor:
    """Their `attn_cosine_sim` and F.mse_loss on (B, N, D) keys: cosine self-similarity with the norm product clamped
    at `eps`, mean squared difference per pair."""

    def similarity(keys: Tensor) -> Tensor:
        keys = keys.double()
        norms = keys.norm(dim=-1, keepdim=True)
        return (keys @ keys.transpose(-1, -2)) / (norms @ norms.transpose(-1, -2)).clamp(min=eps)

    return ((similarity(keys_a) - similarity(keys_b)) ** 2).flatten(1).mean(1)
