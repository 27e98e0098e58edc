"""Quality metrics of image edits: pure functions, plus loaders for the models some of them need.

- CLIP accuracy (pix2pix-zero paper): share of edits whose CLIP similarity to the target text
  beats the source text. Checkpoint configurable (default openai/clip-vit-large-patch14); the
  text templates are fixed below.
- Structure distance (Tumanyan et al., "Splicing ViT Features"): mean squared difference of the
  cosine self-similarity of the last layer's keys of a ViT (default DINO ViT-B/8). `convention`
  'splice' feeds [0, 1] pixels (default); 'piebench' reproduces PIE-Bench's 0-255 quirk
  (docs/method.md#evaluation-metrics).
- Background preservation given a mask of the edited region: PSNR, and LPIPS (torchmetrics, which
  needs torchvision and its backbone weights) the way PIE-Bench computes it: both images with the
  edited region set to black, LPIPS of the whole image (docs/method.md#evaluation-metrics).
- Mask IoU, centroid shift and colour for ShapesWorld's ground truth.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

CLIP_TEMPLATES = ("a photo of a {}.",)  # real images; ShapesWorld uses "a {}" (its captions' register)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# -- pure functions ----------------------------------------------------------------------------


def to_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """RGB image -> float64 array (H, W, 3) in [0, 1]."""
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float64)
    return array / 255.0 if array.max() > 1.0 else array


def psnr(a: Image.Image | np.ndarray, b: Image.Image | np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB over the pixels where `mask` is True (all pixels when None); inf for identical pixels."""
    x, y = to_array(a), to_array(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in size: {x.shape} vs {y.shape}")
    keep = np.ones(x.shape[:2], bool) if mask is None else mask.astype(bool)
    if not keep.any():
        return float("nan")
    mse = float(((x - y) ** 2)[keep].mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def background_lpips(
    a: Image.Image | np.ndarray,
    b: Image.Image | np.ndarray,
    edited: np.ndarray,
    distance: Callable[[Tensor, Tensor], Tensor],
) -> float:
    """LPIPS outside `edited` as PIE-Bench computes it: both images × (1 − mask), then `distance` on
    (1, 3, H, W) tensors in [0, 1]; nan when nothing is outside the mask."""
    x, y = to_array(a), to_array(b)
    if x.shape != y.shape:
        raise ValueError(f"images differ in size: {x.shape} vs {y.shape}")
    keep = ~edited.astype(bool)
    if not keep.any():
        return float("nan")
    x, y = (torch.from_numpy(v * keep[..., None]).permute(2, 0, 1)[None].float() for v in (x, y))
    return float(distance(x, y))


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def centroid(mask: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    return (float(xs.mean()), float(ys.mean())) if len(xs) else (float("nan"), float("nan"))


def centroid_shift(a: np.ndarray, b: np.ndarray) -> float:
    (ax, ay), (bx, by) = centroid(a), centroid(b)
    return float(np.hypot(ax - bx, ay - by))


def object_mask(
    image: Image.Image | np.ndarray, background: Image.Image | np.ndarray, threshold: float = 0.25
) -> np.ndarray:
    """Pixels that differ from the known background by more than `threshold` (RGB distance in [0, 1] units)."""
    return np.linalg.norm(to_array(image) - to_array(background), axis=-1) > threshold


def shape_fidelity(mask: np.ndarray, shape: str, rotation_step: float = 3.0) -> float:
    """How well a ShapesWorld object mask is `shape`: the best IoU of the mask with the shape drawn by the renderer,
    fitted over rotation, scale and position. The area fixes the scale and the centroid the position, a grid over the
    shape's symmetry period the rotation; then coordinate descent refines all four. A clean render scores near 1
    (less for the smallest objects, whose edge pixels are a large share of them); a concave or blobby version of the
    shape, or another shape, scores lower. 0 for an empty mask."""
    from ..shapesworld import world

    mask = mask.astype(bool)
    if not mask.any():
        return 0.0
    unit_area, unit_centroid = world.unit_area_and_centroid(shape)
    radius, (cx, cy) = float(np.sqrt(mask.sum() / unit_area)), centroid(mask)
    period = world.SHAPE_SYMMETRY[shape]

    def iou(rotation: float, scale: float, dx: float, dy: float) -> float:
        a = np.deg2rad(rotation)  # put the outline's centroid (rotated, scaled) on the mask's centroid
        offset = radius * scale * np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) @ unit_centroid
        outline = world.shape_outline(shape, (cx + dx - offset[0], cy + dy - offset[1]), radius * scale, rotation)
        return mask_iou(mask, world.polygon_coverage(outline) >= 0.5)

    rotations = np.arange(0.0, period, rotation_step) if period else np.zeros(1)
    best, pose = max((iou(r, 1.0, 0.0, 0.0), (r, 1.0, 0.0, 0.0)) for r in rotations)
    steps = np.array([rotation_step / 2 if period else 0.0, 0.04, 0.5, 0.5])  # rotation, scale, dx, dy
    for _ in range(3):  # coordinate descent, halving the steps each round
        improved = True
        while improved:
            improved = False
            for axis in range(4):
                for sign in (-1.0, 1.0):
                    if steps[axis]:
                        trial = tuple(np.add(pose, sign * steps[axis] * np.eye(4)[axis]))
                        score = iou(*trial)
                        if score > best:
                            best, pose, improved = score, trial, True
        steps = steps / 2
    return best


def nearest_color(
    image: Image.Image | np.ndarray, mask: np.ndarray, palette: dict[str, tuple[int, int, int]]
) -> str | None:
    """The palette name nearest to the median colour of the masked pixels (None for an empty mask)."""
    if not mask.any():
        return None
    median = np.median(to_array(image)[mask.astype(bool)], axis=0)
    names = list(palette)
    distances = [np.linalg.norm(median - np.asarray(palette[n]) / 255.0) for n in names]
    return names[int(np.argmin(distances))]


def clip_accuracy(image_embeds: Tensor, source_text: Tensor, target_text: Tensor) -> Tensor:
    """Per image: cos(image, target text) > cos(image, source text). Embeddings (N, D) and (D,) or (N, D)."""
    image_embeds = F.normalize(image_embeds.float(), dim=-1)
    to_target = (image_embeds * F.normalize(target_text.float(), dim=-1)).sum(-1)
    to_source = (image_embeds * F.normalize(source_text.float(), dim=-1)).sum(-1)
    return to_target > to_source


def self_similarity(keys: Tensor) -> Tensor:
    """Cosine self-similarity of token keys: (B, N, D) -> (B, N, N)."""
    keys = F.normalize(keys.float(), dim=-1)
    return keys @ keys.transpose(-1, -2)


def structure_distance(keys_a: Tensor, keys_b: Tensor) -> Tensor:
    """Per pair: MSE between the self-similarity matrices of two images' last-layer keys, (B,)."""
    return ((self_similarity(keys_a) - self_similarity(keys_b)) ** 2).flatten(1).mean(1)


# -- model-backed scorers ----------------------------------------------------------------------


def last_key_projection(model: torch.nn.Module) -> torch.nn.Module:
    """The key projection of a ViT's last attention block, found by module name (k_proj / attention.key)."""
    keys = [module for name, module in model.named_modules() if name.endswith(("k_proj", "attention.key"))]
    if not keys:
        raise ValueError(f"{type(model).__name__} has no key projection (k_proj / attention.key) to read")
    return keys[-1]


def _features(output: Any) -> Tensor:
    """transformers' get_*_features return a tensor (4.x) or an output whose pooler_output is it (5.x)."""
    return output if isinstance(output, Tensor) else output.pooler_output


class KeyExtractor:
    """Last-layer keys of a ViT, captured by a forward hook on that layer's key projection."""

    def __init__(self, model: Any, preprocess: Any, **forward_kwargs: Any) -> None:
        self.model, self.preprocess, self.forward_kwargs = model.eval(), preprocess, forward_kwargs
        self._keys: Tensor | None = None
        last_key_projection(model).register_forward_hook(lambda module, args, output: setattr(self, "_keys", output))

    @torch.no_grad()
    def keys(self, images: Sequence[Image.Image]) -> Tensor:
        self.model(pixel_values=self.preprocess(images), **self.forward_kwargs)
        assert self._keys is not None, "the key projection did not run"
        return self._keys.float()

    def distance(self, a: Sequence[Image.Image], b: Sequence[Image.Image]) -> Tensor:
        return structure_distance(self.keys(a), self.keys(b))


def dino_structure(model: str = "facebook/dino-vitb8", convention: str = "splice", device: str = "cpu") -> KeyExtractor:
    """DINO ViT structure distance; 'splice' feeds [0,1] pixels, 'piebench' 0-255 (PIE-Bench's evaluation code)."""
    from transformers import ViTModel

    from ..components import load_part

    if convention not in ("splice", "piebench"):
        raise ValueError("convention must be 'splice' or 'piebench'")
    vit = load_part(
        ViTModel.from_pretrained, model, "structure-distance ViT", "--dino-model", None, add_pooling_layer=False
    ).to(device)
    scale = 1.0 if convention == "splice" else 255.0

    def preprocess(images: Sequence[Image.Image]) -> Tensor:
        tensors = []
        for image in images:
            w, h = image.size
            short, long_max = 224, 480  # Resize(224, max_size=480)
            ratio = min(short / min(w, h), long_max / max(w, h))
            resized = image.convert("RGB").resize((round(w * ratio), round(h * ratio)), Image.BICUBIC)
            pixels = torch.from_numpy(np.asarray(resized, np.float32) / 255.0 * scale).permute(2, 0, 1)
            mean, std = torch.tensor(IMAGENET_MEAN)[:, None, None], torch.tensor(IMAGENET_STD)[:, None, None]
            tensors.append((pixels - mean) / std)
        return torch.stack(tensors).to(device)

    # Resize(224, max_size=480) keeps the aspect ratio, so other shapes than 224² need interpolated position embeddings
    return KeyExtractor(vit, preprocess, interpolate_pos_encoding=True)


def lpips_distance(net: str = "squeeze", device: str = "cpu") -> Callable[[Tensor, Tensor], Tensor]:
    """LPIPS (Zhang et al. 2018) from torchmetrics on [0, 1] images; 'squeeze' is PIE-Bench's choice."""
    try:
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity
    except ImportError as error:
        raise ModuleNotFoundError("LPIPS needs torchmetrics: pip install -e '.[lpips]' in the checkout") from error
    try:
        metric = LearnedPerceptualImagePatchSimilarity(net_type=net, normalize=True).to(device).eval()
    except ModuleNotFoundError as error:  # torchmetrics imports torchvision only here
        raise ModuleNotFoundError(
            f"LPIPS needs torchvision, the release made for this torch ({torch.__version__}): {error}"
        ) from error
    except Exception as error:  # the backbone's ImageNet weights come from torchvision's download cache
        from ..components import ModelNotAvailableError

        raise ModelNotAvailableError(
            f"could not load LPIPS '{net}': {type(error).__name__}: {error}. torchvision downloads its backbone "
            "weights to ~/.cache/torch/hub/checkpoints; put them there where there is no network."
        ) from error

    @torch.no_grad()
    def distance(a: Tensor, b: Tensor) -> Tensor:
        metric.reset()
        return metric(a.to(device), b.to(device))

    return distance


class ClipScorer:
    """CLIP image and text embeddings for CLIP accuracy; also the structure distance of its vision tower."""

    def __init__(
        self,
        model: str = "openai/clip-vit-large-patch14",
        device: str = "cpu",
        templates: Sequence[str] = CLIP_TEMPLATES,
    ) -> None:
        from transformers import CLIPModel, CLIPProcessor

        from ..components import load_part

        self.model = load_part(CLIPModel.from_pretrained, model, "CLIP", "--clip-model", None).to(device).eval()
        self.processor = load_part(CLIPProcessor.from_pretrained, model, "CLIP processor", "--clip-model", None)
        self.device, self.templates = device, tuple(templates)

    @torch.no_grad()
    def image_embeds(self, images: Sequence[Image.Image]) -> Tensor:
        pixels = self.processor(images=list(images), return_tensors="pt").pixel_values.to(self.device)
        return _features(self.model.get_image_features(pixel_values=pixels)).float()

    @torch.no_grad()
    def text_embed(self, concept: str) -> Tensor:
        """Mean normalized embedding over the templates, (D,)."""
        texts = [t.format(concept) for t in self.templates]
        tokens = self.processor(text=texts, return_tensors="pt", padding=True).to(self.device)
        return F.normalize(_features(self.model.get_text_features(**tokens)).float(), dim=-1).mean(0)

    def accuracy(self, images: Sequence[Image.Image], source: str, target: str) -> Tensor:
        return clip_accuracy(self.image_embeds(images), self.text_embed(source), self.text_embed(target))

    def structure(self) -> KeyExtractor:
        vision = self.model.vision_model

        def preprocess(images: Sequence[Image.Image]) -> Tensor:
            return self.processor(images=list(images), return_tensors="pt").pixel_values.to(self.device)

        return KeyExtractor(vision, preprocess)
