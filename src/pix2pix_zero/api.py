"""The public API: `Pix2PixZero` composes captioning, inversion, directions and editing.

    editor = Pix2PixZero.from_pretrained("CompVis/stable-diffusion-v1-4", device="cuda", dtype=torch.float16)
    result = editor.edit(image, source="cat", target="dog")   # result.image, .reconstruction, .caption, .metadata()

No argparse, no printing: the CLI, web app and benchmarks call this module.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors.torch import save_file
from torch import Tensor
from tqdm.auto import tqdm

from . import sentences as sentence_banks
from .attention import (
    GUIDED_LAYERS,
    AttentionRecorder,
    SelfAttentionSharer,
    hooked_cross_attention,
    shared_self_attention,
)
from .captioning import DEFAULT_CAPTIONER, BlipCaptioner, Captioner
from .components import Components, known_words, load_components, model_name, pads_to_square, preset_for
from .config import MAX_IMAGE_SIDE, MAX_STEPS, EditConfig, ImageConfig, InversionConfig, Preset, override
from .directions import SHIPPED_CONCEPTS_FOLDER, ConceptCache, combine_directions, default_cache_dir, make_direction
from .editing import AutoMask
from .editing import edit as edit_latents
from .files import OutputExistsError, TensorFileError, atomic_write, read_tensor_file, safe_name
from .guidance import Conditioning, LateGuidance
from .images import (
    Box,
    crop_to_box,
    labelled_grid,
    load_image,
    pad_to_square,
    pil_to_tensor,
    prepare_image,
    save_png,
    tensor_to_pil,
)
from .inversion import invert_trajectory
from .masks import (
    AUTO,
    MaskSource,
    PixelMask,
    check_mask,
    composite,
    latent_to_pixels,
    mask_to_image,
    read_mask,
    soft_edge,
)

NUM_GENERATED_SENTENCES = 500  # template sentences for a concept without a bank
MAX_LATENT_SIDE = MAX_IMAGE_SIDE // 8  # the VAEs of every supported model downsample by 8
MAX_INVERSION_BYTES = 2**30
INVERSION_METADATA = ("caption", "config", "model", "seed", "image_sha256")
REINVERT = "invert the image again with `pix2pix-zero invert`"


def versions() -> dict[str, str]:
    import diffusers
    import transformers

    from . import __version__

    return {
        "pix2pix_zero": __version__,
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "transformers": transformers.__version__,
    }


@dataclass
class Inversion:
    """A regularized DDIM inversion of one image: reusable for any number of edits."""

    x_T: Tensor  # (1, 4, h, w) inverted noise
    latents: Tensor  # (1, 4, h, w) VAE latent of the prepared input
    caption: str
    image: Image.Image  # the prepared (resized) input
    config: InversionConfig
    model: str
    seed: int
    image_sha256: str
    model_fingerprint: str = (
        ""  # the weights it was made with (Components.fingerprint); "" in files of earlier versions
    )
    content_box: Box | None = None  # where a non-square input lies in the padded square `image` (see pad_to_square)
    # (steps + 1, 1, 4, h, w): z*_0 (= latents) .. z*_T (= x_T), for exact inversion; float32, so (steps + 1)·4·h·w·4
    # bytes: 3.3 MB for 50 steps at 512 px on SD 1.x (h = w = 64)
    trajectory: Tensor | None = None
    original_size: tuple[int, int] | None = None  # (width, height) before resizing: SDXL's size conditioning

    def save(self, path: str | os.PathLike[str]) -> Path:
        meta = {
            "caption": self.caption,
            "config": json.dumps(asdict(self.config)),
            "model": self.model,
            "seed": str(self.seed),
            "image_sha256": self.image_sha256,
            "model_fingerprint": self.model_fingerprint,
        }
        if self.content_box is not None:
            meta["content_box"] = json.dumps(list(self.content_box))
        if self.original_size is not None:
            meta["original_size"] = json.dumps(list(self.original_size))
        # clones: x_T and latents are views of the trajectory, and safetensors stores no shared memory
        tensors = {
            "x_T": self.x_T.cpu().clone(),
            "latents": self.latents.cpu().clone(),
            "image": pil_to_tensor(self.image),
        }
        if self.trajectory is not None:
            tensors["trajectory"] = self.trajectory.cpu().clone()
        return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta), overwrite=True)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Inversion:
        tensors, meta, config = read_inversion_file(path)
        image = tensor_to_pil((tensors["image"] + 1) / 2)[0]
        return cls(
            tensors["x_T"].float(),
            tensors["latents"].float(),
            meta["caption"],
            image,
            config,
            meta["model"],
            int(meta["seed"]),
            meta["image_sha256"],
            meta.get("model_fingerprint", ""),
            _content_box(path, meta),
            tensors.get("trajectory"),
            _original_size(path, meta),
        )


def _original_size(path: str | os.PathLike[str], meta: dict[str, str]) -> tuple[int, int] | None:
    """The input's (width, height) before resizing from an inversion file's metadata (SDXL's size conditioning)."""
    if "original_size" not in meta:
        return None
    try:
        size = tuple(int(v) for v in json.loads(meta["original_size"]))
    except (ValueError, TypeError):
        size = ()
    if len(size) != 2 or not all(0 < v <= 1_000_000 for v in size):
        raise TensorFileError(
            f"{path}: the inversion's original_size {meta['original_size'][:80]!r} is not (width, "
            f"height) in pixels; {REINVERT}"
        )
    return size  # type: ignore[return-value]


def _content_box(path: str | os.PathLike[str], meta: dict[str, str]) -> Box | None:
    """The padded input's box from an inversion file's metadata, checked to lie inside its image."""
    if "content_box" not in meta:
        return None
    try:
        box = tuple(float(v) for v in json.loads(meta["content_box"]))
    except (ValueError, TypeError):
        box = ()
    if len(box) != 4 or not (0 <= box[0] < box[2] <= 1 and 0 <= box[1] < box[3] <= 1):
        raise TensorFileError(
            f"{path}: the inversion's content_box {meta['content_box'][:80]!r} is not (left, top, "
            f"right, bottom) fractions of its image; {REINVERT}"
        )
    return box  # type: ignore[return-value]


def read_inversion_file(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, str], InversionConfig]:
    """The tensors, metadata and config of an inversion file, each checked: keys, ranks, shapes, dtypes, finite values,
    a bounded file and latent size, and metadata a config can be made from. Anything else: one-line TensorFileError."""
    tensors, meta = read_tensor_file(
        path,
        "inversion",
        required=("x_T", "latents", "image"),
        optional=("trajectory",),
        max_bytes=MAX_INVERSION_BYTES,
        max_rank=5,
        remedy=REINVERT,
    )
    x_T, latents, image = tensors["x_T"], tensors["latents"], tensors["image"]
    if x_T.dim() != 4 or x_T.shape[0] != 1 or not 1 <= x_T.shape[1] <= 16 or max(x_T.shape[2:]) > MAX_LATENT_SIDE:
        raise TensorFileError(
            f"{path}: x_T has shape {tuple(x_T.shape)}, not (1, channels <= 16, h, w) with h, w <= "
            f"{MAX_LATENT_SIDE}; {REINVERT}"
        )
    if latents.shape != x_T.shape:
        raise TensorFileError(
            f"{path}: latents {tuple(latents.shape)} and x_T {tuple(x_T.shape)} differ in shape; {REINVERT}"
        )
    trajectory = tensors.get("trajectory")
    if trajectory is not None and (
        trajectory.dim() != 5 or not 2 <= trajectory.shape[0] <= MAX_STEPS + 1 or trajectory.shape[1:] != x_T.shape
    ):
        raise TensorFileError(
            f"{path}: trajectory {tuple(trajectory.shape)} is not (steps + 1, *x_T's shape "
            f"{tuple(x_T.shape)}) with at most {MAX_STEPS} steps; {REINVERT}"
        )
    height, width = x_T.shape[2:]
    if (
        image.dim() != 4
        or tuple(image.shape[:2]) != (1, 3)
        or image.shape[2] % height
        or image.shape[3] % width
        or image.shape[2] // height != image.shape[3] // width
        or max(image.shape[2:]) > MAX_IMAGE_SIDE
    ):
        raise TensorFileError(
            f"{path}: image {tuple(image.shape)} is not (1, 3, H, W) at a whole multiple of the "
            "latent "
            f"{height}x{width}; {REINVERT}"
        )
    missing = [key for key in INVERSION_METADATA if key not in meta]
    if missing:
        raise TensorFileError(f"{path}: the inversion's metadata lacks {missing}; {REINVERT}")
    try:
        int(meta["seed"])
        fields = json.loads(meta["config"])
        if not isinstance(fields, dict):
            raise TypeError("the config is not a JSON object")
        # files written before `reg_loss_scale` existed were regularized with the authors' mean losses
        config = InversionConfig(**{"reg_loss_scale": "mean", **fields})
    except (ValueError, TypeError) as error:
        raise TensorFileError(f"{path}: the inversion's metadata is invalid ({str(error)[:200]}); {REINVERT}") from None
    return tensors, meta, config


@dataclass
class EditResult:
    """Edited images (one per target), the reconstruction, and everything needed to reproduce them."""

    images: list[Image.Image]
    reconstruction: Image.Image
    input: Image.Image
    caption: str
    edits: list[dict[str, Any]]  # per image: source, target, strength, sentence origins
    config: dict[str, Any]  # preset, inversion, edit and image configs, seed, model, versions
    timings: dict[str, float] = field(default_factory=dict)
    unsafe: list[bool] = field(default_factory=list)
    masks: list[Image.Image] | None = None  # per image, white where the edit could act; None without a mask

    @property
    def image(self) -> Image.Image:
        return self.images[0]

    def metadata(self, index: int = 0) -> dict[str, Any]:
        return {**self.config, "caption": self.caption, **self.edits[index], "timings_s": self.timings}

    def grid(self) -> Image.Image:
        labels = ["input", "reconstruction"] + [
            f"{e['source']} -> {e['target']}" for e in self.edits
        ]  # ASCII: PIL's built-in font
        tiles = [self.input, self.reconstruction, *self.images]
        for name, mask in self._mask_files():
            labels.append(name.removesuffix(".png").replace("-", ": ", 1))
            tiles.append(mask.convert("RGB"))
        return labelled_grid(tiles, labels)

    def _mask_files(self) -> list[tuple[str, Image.Image]]:
        """('mask.png', mask) when every edit had the same mask, else one 'mask-<target>.png' per edit."""
        if not self.masks:
            return []
        if all(m.tobytes() == self.masks[0].tobytes() for m in self.masks):
            return [(self.mask_name(), self.masks[0])]
        return [(self.mask_name(e["target"]), m) for e, m in zip(self.edits, self.masks)]

    @staticmethod
    def mask_name(target: str | None = None) -> str:
        """'mask.png', one mask for every edit, or `target`'s own 'mask-<target>.png' where the edits' masks differ."""
        return "mask.png" if target is None else f"mask-{safe_name(Path(target).stem, 'edit')}.png"

    @staticmethod
    def output_paths(
        folder: str | os.PathLike[str], stem: str, targets: Sequence[str], mask_names: Sequence[str] = ()
    ) -> list[Path]:
        """The PNGs `save` writes (input, reconstruction, one edit per target, the masks, grid); each also gets a .json
        sidecar. `mask_names` are `_mask_files`' names ('mask.png'), when the result has masks."""
        folder = Path(folder)
        if not isinstance(stem, str) or not stem.strip() or stem.startswith(".") or any(c in stem for c in "/\\\0"):
            raise ValueError(f"stem {stem!r} must be a file name (no folder, not hidden): the outputs go in {folder}")
        edits = [folder / f"{stem}.edit-{safe_name(Path(target).stem, 'edit')}.png" for target in targets]
        if len(set(edits)) != len(edits):
            raise ValueError(
                f"targets {list(targets)} give the same output file name twice; make them differ in letters or digits"
            )
        mask_files = [folder / f"{stem}.{name}" for name in mask_names]
        return [
            folder / f"{stem}.input.png",
            folder / f"{stem}.reconstruction.png",
            *edits,
            *mask_files,
            folder / f"{stem}.grid.png",
        ]

    def save(self, folder: str | os.PathLike[str], stem: str = "image", overwrite: bool = False) -> list[Path]:
        """Write <stem>.input/.reconstruction/.edit-<target>/.grid PNGs (and <stem>.mask.png with a mask), each with
        metadata and a JSON sidecar.

        All or none: every target is checked before any is written, and a failed write (a full disk) removes the
        files this call had added. Timings go to the sidecars only, so the same run gives byte-identical PNGs.
        """
        mask_files = self._mask_files()
        paths = self.output_paths(
            folder, stem, [edit["target"] for edit in self.edits], [name for name, _ in mask_files]
        )
        if not overwrite:
            for path in paths:
                for target in (path, path.with_suffix(".json")):
                    if target.exists():
                        raise OutputExistsError(
                            f"{target} exists already; choose another output folder or pass --overwrite"
                        )
        base = {**self.config, "caption": self.caption}
        timings = {"timings_s": self.timings}
        input_path, reconstruction_path, *edit_paths, grid_path = paths
        edit_paths, mask_paths = edit_paths[: len(self.images)], edit_paths[len(self.images) :]
        pictures = [(self.input, input_path, base), (self.reconstruction, reconstruction_path, base)]
        pictures += [(image, path, {**base, **edit}) for image, path, edit in zip(self.images, edit_paths, self.edits)]
        pictures += [(mask, path, {**base, "edits": self.edits}) for (_, mask), path in zip(mask_files, mask_paths)]
        pictures.append((self.grid(), grid_path, {**base, "edits": self.edits}))
        new = [f for path in paths for f in (path, path.with_suffix(".json")) if not f.exists()]
        try:
            return [save_png(image, path, metadata, overwrite, timings) for image, path, metadata in pictures]
        except BaseException:  # nothing half-written: a rerun then finds the folder as it was
            for file in new:
                file.unlink(missing_ok=True)
            raise


def _check_types(**given: tuple[Any, type]) -> None:
    """Each (value, kind): None or of that kind, else a TypeError naming the argument; a str holds a word."""
    for name, (value, kind) in given.items():
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{name} is a {kind.__name__} or None, got {type(value).__name__}")
        if kind is str and value is not None and not value.strip():
            raise ValueError(f"{name} is empty; give words, or leave it out")


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")


@dataclass(frozen=True)
class EditOptions:
    """How `Pix2PixZero.edit` runs, besides the image and the concepts; None means the preset's."""

    config: EditConfig | None = None  # the edit (steps, guidance, exact inversion, self-attention injection, ...)
    inversion: InversionConfig | None = None  # used when the image is not an `Inversion` yet
    image: ImageConfig | None = None
    caption: str | None = None  # instead of running the captioner
    seed: int = 0
    mask: MaskSource = None  # a mask file or image (white = may change), "auto", or None for the whole image
    extra: Sequence[tuple[str, str, float]] = ()  # weighted directions (source, target, weight) added to every edit
    direction: Tensor | None = None  # (K, T, D) in place of the sentence-bank directions (e.g. `word_swap_direction`)
    use_cache: bool = True  # read and write the inversion cache

    def __post_init__(self) -> None:
        """Each field of the type it names: a swapped or mistyped option is one clear TypeError, not a failure deep
        inside the edit."""
        kinds = {"config": EditConfig, "inversion": InversionConfig, "image": ImageConfig, "caption": str}
        _check_types(**{f"EditOptions.{name}": (getattr(self, name), kind) for name, kind in kinds.items()})
        _check_types(**{"EditOptions.direction": (self.direction, Tensor)})
        if not isinstance(self.use_cache, bool):
            raise TypeError(f"EditOptions.use_cache is True or False, got {self.use_cache!r}")
        if self.mask is not None and not isinstance(self.mask, (str, os.PathLike, Image.Image)):
            raise TypeError(
                f"EditOptions.mask is a file path, a PIL image or 'auto', got {type(self.mask).__name__}"
                + (": PIL.Image.fromarray(array) makes one of an array" if hasattr(self.mask, "__array__") else "")
            )
        for item in self.extra:
            if not (
                isinstance(item, (tuple, list))
                and len(item) == 3
                and all(isinstance(c, str) for c in item[:2])
                and isinstance(item[2], (int, float))
                and not isinstance(item[2], bool)
            ):
                raise TypeError(f"EditOptions.extra holds (source, target, weight) triples, got {item!r}")
        _check_seed(self.seed)


_OPTION_KEYWORDS = {
    "caption": "caption",
    "config": "config",
    "inversion_config": "inversion",
    "image_config": "image",
    "seed": "seed",
    "extra": "extra",
    "use_cache": "use_cache",
    "direction": "direction",
    "mask": "mask",
}


def _options_from(options: EditOptions | str | None, keywords: dict[str, Any], base: EditConfig) -> EditOptions:
    """`options` with the loose keywords of earlier versions on top (caption=, config=, seed=, xa_guidance=, ...),
    which still work but warn."""
    if isinstance(options, str):  # the caption, given positionally as before
        keywords = {"caption": options, **keywords}
        options = None
    options = options or EditOptions()
    if not keywords:
        return options
    warnings.warn(
        f"Pix2PixZero.edit({', '.join(f'{k}=' for k in keywords)}) is deprecated; pass "
        "options=EditOptions(...) (config=EditConfig(...) for the edit settings)",
        DeprecationWarning,
        stacklevel=3,
    )
    options = replace(options, **{_OPTION_KEYWORDS[k]: v for k, v in keywords.items() if k in _OPTION_KEYWORDS})
    overrides = {k: v for k, v in keywords.items() if k not in _OPTION_KEYWORDS}  # EditConfig fields; typos fail there
    return replace(options, config=override(options.config or base, **overrides)) if overrides else options


def _whole_word(word: str) -> re.Pattern[str]:
    return re.compile(rf"\b{re.escape(word.strip())}\b", flags=re.IGNORECASE)


def _is_sentence_file(concept: str) -> bool:
    """Whether a concept names a sentence file (a .txt path, or any existing file) rather than a word or phrase."""
    path = Path(concept).expanduser()
    try:
        return path.suffix.lower() == ".txt" or path.is_file()
    except (OSError, ValueError):  # too long for a path, or a NUL: a phrase, not a file
        return False


def has_word(caption: str, word: str) -> bool:
    """Whether `word` is a whole word of `caption` (what a word swap needs)."""
    return bool(word.strip()) and _whole_word(word).search(caption) is not None


def swap_word(caption: str, source: str, target: str) -> str:
    """The caption with each whole-word occurrence of `source` replaced by `target` (the paper's word-swap
    baselines)."""
    if not has_word(caption, source):
        raise ValueError(f"the caption '{caption}' does not contain '{source}'; a word swap needs it")
    return _whole_word(source).sub(target.strip(), caption)


class Pix2PixZero:
    """pix2pix-zero on a Stable-Diffusion-family model: caption → invert → direction → guided edit."""

    def __init__(
        self,
        components: Components,
        captioner: Captioner | None = None,
        preset: str = "default",
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        sentence_model: str | os.PathLike[str] | None = None,
    ) -> None:
        self.components = components
        self.sentence_model = sentence_model  # a local language model for concepts without a bank
        self._captioner = captioner
        self.preset: Preset = preset_for(
            preset, components.model_dir, is_sdxl=components.is_sdxl, native_size=components.native_size
        )  # with the model's own measured settings, if any
        self.pads_to_square = pads_to_square(components.model_dir)  # a model that knows square images only
        self.known_words = known_words(components.model_dir)  # a model trained on a few words only: None = any word
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        shipped = components.model_dir / SHIPPED_CONCEPTS_FOLDER if components.model_dir else None
        self.concepts = ConceptCache(self.cache_dir, shipped=[shipped] if shipped and shipped.is_dir() else [])
        self.progress = progress

    @classmethod
    def from_pretrained(
        cls,
        model: str | os.PathLike[str] = "shapesworld",
        device: str = "cpu",
        dtype: str | torch.dtype = "float32",
        captioner: str | Captioner | None = None,
        safety_checker: bool = False,
        vae: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> Pix2PixZero:
        """Load a diffusers-format SD 1.x/2.x or SDXL model by hub id, folder or single-file checkpoint
        ('shapesworld' is the bundled model); `vae` replaces the model's VAE (e.g. an fp16-fixed SDXL VAE).

        The captioner defaults to the model folder's own `captioner/` when it has one (the bundled
        model does), else BLIP-large; it is loaded on first use only.
        """
        components = load_components(model, device=device, dtype=dtype, safety_checker=safety_checker, vae=vae)
        if captioner is None or isinstance(captioner, str):
            bundled = components.model_dir / "captioner" if components.model_dir else None
            name = captioner or (str(bundled) if bundled and bundled.is_dir() else DEFAULT_CAPTIONER)
            captioner = BlipCaptioner(name, device=str(components.device))
        return cls(components, captioner, **kwargs)

    # -- small pieces -----------------------------------------------------------------------------

    def caption(self, image: Image.Image) -> str:
        if self._captioner is None:
            raise ValueError("no captioner is configured; pass caption=...")
        return self._captioner(image)

    def prepare_image(
        self, image: str | os.PathLike[str] | Image.Image, image_config: ImageConfig | None = None
    ) -> Image.Image:
        return self._prepare(image, image_config)[0]

    def _prepare(
        self, image: str | os.PathLike[str] | Image.Image, image_config: ImageConfig | None
    ) -> tuple[Image.Image, Box | None]:
        """The model-sized input and, when it was padded to a square, where the original lies in it."""
        cfg = image_config or self.preset.image
        loaded = load_image(image, max_pixels=cfg.max_input_pixels)
        box = None
        if self.pads_to_square and loaded.width != loaded.height:  # no stretching: pad, and crop the outputs back
            loaded, box = pad_to_square(loaded)
        prepared = prepare_image(
            loaded, cfg.size or self.components.native_size, self.components.image_multiple, cfg.keep_aspect
        )
        prepared.info["original_size"] = loaded.size  # SDXL conditions on it (micro-conditioning)
        return prepared, box

    def _cached_caption(self, image: Image.Image, image_sha: str, use_cache: bool) -> str:
        """Captions of captioners with a `cache_key` (BLIP checkpoints: name and files) are kept on disk per image;
        others always run."""
        key = getattr(self._captioner, "cache_key", None)
        if not use_cache or key is None:
            return self.caption(image)
        path = (
            self.cache_dir / "captions" / f"{image_sha[:24]}-{hashlib.sha256(str(key).encode()).hexdigest()[:12]}.txt"
        )
        if path.is_file():
            try:
                cached = path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError):  # a corrupt cache file is a miss, replaced below
                cached = ""
            if cached:
                return cached
        caption = self.caption(image)
        atomic_write(path, caption.encode("utf-8"), overwrite=True)
        return caption

    def sentences(self, concept: str) -> tuple[list[str], str]:
        """Sentences for a concept: a sentence file, a bank (model's own, then shipped), else generated ones."""
        if not isinstance(concept, str) or not concept.strip():
            raise ValueError("a concept must be a non-empty word, phrase or sentence-file path")
        path = Path(concept).expanduser()
        if _is_sentence_file(concept):
            return sentence_banks.read_sentence_file(path), f"file:{path}"
        self._check_words(concept)
        model_banks = [self.components.model_dir / "sentences"] if self.components.model_dir else []
        bank = sentence_banks.find_bank(concept, extra_dirs=model_banks)
        if bank is not None:
            return sentence_banks.read_sentence_file(bank), f"bank:{bank.name}"
        if self.sentence_model is not None:
            return self._lm_sentences(concept), f"lm:{self.sentence_model}"
        return sentence_banks.generate_sentences(concept, num=NUM_GENERATED_SENTENCES, seed=0), "generated"

    def _lm_sentences(self, concept: str) -> list[str]:
        """Sentences from the local language model, kept on disk so a concept is generated once per model."""
        key = hashlib.sha256(f"{Path(str(self.sentence_model)).resolve()}\n{concept}".encode()).hexdigest()[:16]
        cached = self.cache_dir / "sentences" / f"{safe_name(concept, 'concept')}-{key}.txt"
        if cached.is_file():
            return sentence_banks.read_sentence_file(cached)
        found = sentence_banks.generate_with_language_model(
            concept, self.sentence_model, num=NUM_GENERATED_SENTENCES, seed=0, device=str(self.components.device)
        )
        if not found:
            raise ValueError(f"the language model {self.sentence_model} produced no usable sentences for {concept!r}")
        atomic_write(cached, ("\n".join(found) + "\n").encode(), overwrite=True)
        return found

    def concept_embedding(self, concept: str) -> tuple[Tensor, str, int]:
        """(1, T, D) mean embedding of the concept's sentences (cached on disk), with their origin and count."""
        sentences, origin = self.sentences(concept)
        fingerprint = self.components.fingerprint()
        stored = self.concepts.has(concept, fingerprint, sentences)  # shipped with the model or cached: no bar
        bar = tqdm(
            total=len(sentences),
            desc=f"embed '{concept}'",
            unit="sent",
            disable=stored or not self.progress,
            leave=False,
        )
        with bar:
            mean = self.concepts.get_or_compute(
                concept,
                sentences,
                fingerprint,
                self.components.model_id,
                lambda s: self.components.encode_text(s, on_batch=bar.update),
            )
        return mean.to(self.components.device), origin, len(sentences)

    def direction(self, source: str, target: str) -> Tensor:
        """Δc for source → target, (1, T, D)."""
        return make_direction(self.concept_embedding(source)[0], self.concept_embedding(target)[0])

    def check_concepts(
        self, source: str, targets: Sequence[str], extra: Sequence[str] = (), texts: Sequence[str] = ()
    ) -> None:
        """Raise ValueError for an edit the model cannot make: a target equal to the source, or (on a model that lists
        the words it knows, like the bundled one) a concept, caption or prompt with a word it was never trained on.
        Sentence files are not checked: their sentences are the user's own."""
        for concept in (source, *targets, *extra):
            if not isinstance(concept, str):
                raise TypeError(
                    f"a concept is a word, phrase or sentence-file path (str), got {type(concept).__name__}"
                )
            if not _is_sentence_file(concept) and not re.search(r"[^\W_]", concept):
                raise ValueError(
                    f"a concept must be a non-empty word or phrase (letters or digits) or a sentence-file path, "
                    f"got {concept!r}"
                )
        for target in targets:
            if target.strip().lower() == source.strip().lower():
                raise ValueError(f"source and target are the same concept ({source!r})")
        for text in (*[c for c in (source, *targets, *extra) if not _is_sentence_file(c)], *texts):
            self._check_words(text)

    def _check_words(self, text: str) -> None:
        """Raise ValueError when the model lists the words it knows and `text` has another (letters only: digits and
        punctuation are not words)."""
        if self.known_words is None:
            return
        unknown = sorted(set(re.findall(r"[^\W\d_]+", text.lower())) - self.known_words)
        if unknown:
            raise ValueError(
                f"the model {model_name(self.components.model_id)!r} was trained on a few words only and "
                f"{', '.join(map(repr, unknown))} "
                f"(in {text!r}) is not one of them; it knows: {' '.join(sorted(self.known_words))}"
            )

    def uses_caption_direction(
        self, caption: str, source: str, cfg: EditConfig | None = None, targets: Sequence[str] = ()
    ) -> bool:
        """Whether an edit of `source` to `targets` with `cfg` (the preset's when None) takes its direction from
        `caption`'s own words (EditConfig.direction_from 'caption', the caption names the source and no target is a
        sentence file) rather than the sentence banks."""
        return (cfg or self.preset.edit).direction_from == "caption" and self._swap_blocker(
            caption, source, targets
        ) is None

    def _swap_blocker(self, caption: str, source: str, targets: Sequence[str]) -> str | None:
        """Why the caption's word swap cannot make the direction (then the banks do), or None when it can: it needs the
        source word in the caption, within what the text encoder reads, and words to put there (a target given as a
        sentence file takes the banks' direction, as its sentences say)."""
        if not has_word(caption, source):
            return f"the caption does not name {source!r}"
        if not self.components.token_positions(caption, source):
            limit = self.components.tokenizer.model_max_length
            return f"the caption names {source!r} after the {limit} tokens the text encoder reads"
        if any(map(_is_sentence_file, targets)):
            return "a target is a sentence file"
        return None

    def word_swap_direction(self, caption: str, source: str, target: str) -> Tensor:
        """E(caption with source → target) − E(caption), (1, T, D): the word-swap edit as a direction."""
        return self.components.encode_text([swap_word(caption, source, target)]) - self.components.encode_text(
            [caption]
        )

    # -- the method -------------------------------------------------------------------------------

    def invert(
        self,
        image: str | os.PathLike[str] | Image.Image,
        caption: str | None = None,
        config: InversionConfig | None = None,
        image_config: ImageConfig | None = None,
        seed: int = 0,
        use_cache: bool = True,
    ) -> Inversion:
        """Caption (unless given) and invert an image; cached on disk by image, model, caption, settings and seed."""
        _check_types(caption=(caption, str), config=(config, InversionConfig), image_config=(image_config, ImageConfig))
        cfg = config or self.preset.inversion
        self._check_words(caption or "")
        prepared, box = self._prepare(image, image_config)
        _check_seed(seed)
        image_sha = hashlib.sha256(prepared.tobytes() + repr(prepared.size).encode()).hexdigest()
        caption = caption if caption is not None else self._cached_caption(prepared, image_sha, use_cache)
        original_size = tuple(prepared.info.get("original_size", prepared.size)) if self.components.is_sdxl else None
        key = hashlib.sha256(
            json.dumps(
                [
                    image_sha,
                    self.components.fingerprint(),
                    caption,
                    asdict(cfg),
                    seed,
                    str(self.components.dtype),
                    *([original_size] if original_size else []),
                ]
            ).encode()
        ).hexdigest()[:24]
        cache_file = self.cache_dir / "inversions" / f"{key}.safetensors"
        cached = None
        if use_cache and cache_file.is_file():
            try:
                cached = Inversion.load(cache_file)
            except (ValueError, OSError):  # a corrupt cache file is a miss: inverted again and replaced below
                cached = None
        # files of earlier versions lack the trajectory; a cache file of other weights is a miss too
        if (
            cached is not None
            and cached.trajectory is not None
            and cached.x_T.shape[1] == self.components.unet.config.in_channels
        ):
            device = self.components.device
            return Inversion(
                cached.x_T.to(device),
                cached.latents.to(device),
                caption,
                prepared,
                cfg,
                self.components.model_id,
                seed,
                image_sha,
                self.components.fingerprint(),
                box,
                cached.trajectory.to(device),
                original_size,
            )
        generator = torch.Generator().manual_seed(seed)
        c = self.components
        latents = c.encode_image(pil_to_tensor(prepared).to(c.device), cfg.latent_sampling, generator)
        caption_emb = c.encode_text([caption])
        with (
            self._bar(cfg.num_steps if cfg.grid == "mirror" else cfg.num_steps - 2, "invert") as on_step,
            c.size_conditioning(original_size),
        ):
            trajectory = invert_trajectory(c.eps_model, c.schedule, latents, caption_emb, cfg, generator, on_step)
        inversion = Inversion(
            trajectory[-1],
            latents,
            caption,
            prepared,
            cfg,
            c.model_id,
            seed,
            image_sha,
            c.fingerprint(),
            box,
            trajectory,
            original_size,
        )
        if use_cache:
            inversion.save(cache_file)
        return inversion

    def check_inversion(self, inversion: Inversion) -> None:
        """Refuse an inversion made with other weights (by fingerprint; files without one: by model id) or shaped
        for another latent space."""
        c = self.components
        made = inversion.model_fingerprint
        if made and made != c.fingerprint() and made != c.legacy_fingerprint():  # earlier versions' files: the old kind
            raise ValueError(
                f"the inversion was made with {inversion.model} (weights {inversion.model_fingerprint}), "
                "not with "
                f"{c.model_id} (weights {c.fingerprint()}); {REINVERT} and this model"
            )
        if not inversion.model_fingerprint and inversion.model != c.model_id:
            raise ValueError(
                f"the inversion was made with {inversion.model}, not with {c.model_id}; {REINVERT} and this model"
            )
        channels, (height, width) = inversion.x_T.shape[1], inversion.x_T.shape[2:]
        pixels = (width * c.vae_scale_factor, height * c.vae_scale_factor)
        if channels != c.unet.config.in_channels or inversion.image.size != pixels:
            raise ValueError(
                f"the inversion's latent {tuple(inversion.x_T.shape)} does not fit {c.model_id} with its "
                f"{inversion.image.width}x{inversion.image.height} image; {REINVERT}"
            )

    def edit(
        self,
        image: str | os.PathLike[str] | Image.Image | Inversion,
        source: str,
        target: str | Sequence[str],
        options: EditOptions | None = None,
        **deprecated: Any,
    ) -> EditResult:
        """Edit an image (a path or a PIL image; a `.safetensors` path is a saved inversion) or a ready `Inversion` from
        `source` to each `target`; several targets share one inversion.

        `options` (`EditOptions`) holds the configs, caption, seed, mask, extra directions and cache use. The loose
        keywords of earlier versions (caption=, config=, seed=, xa_guidance=, ...) still work, with a
        DeprecationWarning.
        """
        opts = _options_from(options, deprecated, self.preset.edit)
        cfg = opts.config or self.preset.edit
        targets = _targets(target)
        if isinstance(image, (str, os.PathLike)) and str(image).lower().endswith(".safetensors"):
            image = Inversion.load(image)  # a saved inversion, as `pix2pix-zero edit` takes it
        # bad concepts and masks fail before any work is spent on the image
        self.check_concepts(source, targets, [e for s, t, _ in opts.extra for e in (s, t)], [opts.caption or ""])
        check_mask(opts.mask, self.preset.image.max_input_pixels)
        started = time.perf_counter()
        if isinstance(image, Inversion):
            self.check_inversion(image)
            _check_inversion_options(image, opts)
            inversion = image
        else:
            inversion = self.invert(image, opts.caption, opts.inversion, opts.image, opts.seed, opts.use_cache)
        inverted_at = time.perf_counter()
        _check_edit_fits(inversion, cfg)
        # Edit directions Δc (the caption's words, the sentence banks, or given), and the mask of where they may act
        caption_emb = self.components.encode_text([inversion.caption])
        directions, edits = self._edit_directions(source, targets, inversion.caption, cfg, opts, caption_emb.shape[1:])
        mask_source = opts.mask if opts.mask is not None else (AUTO if cfg.auto_mask else None)
        mask = self._mask(
            mask_source, inversion.image, cfg, inversion.content_box, self._edited_words(inversion.caption, edits)
        )
        # Reference branch: the caption; edit branch: caption + Δc, CFG against the negative prompt
        negative = caption_emb if cfg.negative_prompt == "caption" else self.components.encode_text([""])
        # with the caption as negative, CFG is the identity here (docs/method.md#classifier-free-guidance)
        reference = Conditioning(cond=caption_emb)
        target_cond = Conditioning(cond=caption_emb + directions, uncond=negative, scale=cfg.guidance_scale)
        latent_mask = mask.on_latent(self.components.vae_scale_factor) if isinstance(mask, PixelMask) else mask
        with self.components.size_conditioning(inversion.original_size):
            edited, reconstructed, late = self._run_edit(
                inversion.x_T,
                reference,
                target_cond,
                cfg,
                inversion.trajectory,
                latent_mask,
                self.components.token_positions(inversion.caption, source),
            )
        record = self._config_record(cfg, inversion, opts.image, opts.seed)
        if isinstance(image, Inversion):  # prepared and inverted before: its own seed, image settings not recorded
            record.update(seed=inversion.seed, image_config=None)
        if inversion.content_box is not None:
            record["padded_to_square"] = {"content_box": list(inversion.content_box)}
        for e, late_record in zip(edits, late):
            e["mask"] = "none" if mask is None else AUTO if isinstance(mask, AutoMask) else mask.origin
            e["late_guidance"] = late_record
        return self._result(
            edited,
            reconstructed,
            inversion.image,
            inversion.caption,
            edits,
            record,
            {"invert": inverted_at - started, "edit": time.perf_counter() - inverted_at},
            mask,
            cfg.mask_feather,
            inversion.content_box,
        )

    def generate_and_edit(
        self,
        prompt: str,
        source: str,
        target: str | Sequence[str],
        seed: int = 0,
        config: EditConfig | None = None,
        size: int | None = None,
        **edit_overrides: Any,
    ) -> EditResult:
        """The paper's synthetic mode: sample x_T ~ N(0, I) with `seed`, generate from `prompt` (CFG, empty negative
        prompt) as the reference branch, and edit it in lockstep, with CFG against `negative_prompt` (the prompt itself
        for 'caption', as for real images). The 'input' and 'reconstruction' are the generation; nothing is inverted,
        so exact inversion does not apply (recorded as off). With `auto_mask` the edit follows the generation outside
        the automatic mask, whose pixels are the generation's: prompt-to-prompt's local blend, made for generated
        images."""
        base = config or self.preset.synthetic_edit()
        _check_types(prompt=(prompt, str), config=(config, EditConfig))
        cfg = override(base, **{**edit_overrides, "exact_inversion": False})
        targets = _targets(target)
        self.check_concepts(source, targets, texts=[prompt])
        c = self.components
        whole = isinstance(size, int) and not isinstance(size, bool)
        if size is not None and (not whole or not 8 <= size <= MAX_IMAGE_SIDE):
            raise ValueError(f"size must be a whole number of pixels from 8 to {MAX_IMAGE_SIDE}, got {size!r}")
        if size is not None and size % c.vae_scale_factor:  # the latent is size / factor cells wide
            near = max(c.vae_scale_factor, round(size / c.vae_scale_factor) * c.vae_scale_factor)
            raise ValueError(f"size must be a multiple of {c.vae_scale_factor} pixels on this model, e.g. {near}")
        _check_seed(seed)
        side = max(1, (size or c.native_size) // c.vae_scale_factor)
        generator = torch.Generator().manual_seed(seed)
        x_T = torch.randn((1, c.unet.config.in_channels, side, side), generator=generator).to(c.device)
        started = time.perf_counter()
        named = prompt if cfg.direction_from == "caption" else None
        directions, edits = self._directions(source, targets, cfg.strength, (), named)
        prompt_emb, empty_emb = c.encode_text([prompt]), c.encode_text([""])
        negative = prompt_emb if cfg.negative_prompt == "caption" else empty_emb
        reference = Conditioning(cond=prompt_emb, uncond=empty_emb, scale=cfg.guidance_scale)
        target_cond = Conditioning(cond=prompt_emb + directions, uncond=negative, scale=cfg.guidance_scale)
        mask = None
        if cfg.auto_mask:  # from the prompt's edited words, as for a caption
            mask = AutoMask((side, side), cfg.auto_mask_threshold, words=self._edited_words(prompt, edits))
        edited, generated, late = self._run_edit(
            x_T, reference, target_cond, cfg, mask=mask, source_tokens=c.token_positions(prompt, source)
        )
        generated_image = tensor_to_pil(c.decode_latents(generated))[0]
        record = {**self._config_record(cfg, None, None, seed), "mode": "synthetic", "prompt": prompt}
        for e, late_record in zip(edits, late):
            e["mask"] = AUTO if mask is not None else "none"
            e["late_guidance"] = late_record
        timings = {"edit": time.perf_counter() - started}
        return self._result(edited, generated, generated_image, prompt, edits, record, timings, mask, cfg.mask_feather)

    # -- internals --------------------------------------------------------------------------------

    def _directions(
        self,
        source: str,
        targets: Sequence[str],
        strength: float,
        extra: Sequence[tuple[str, str, float]],
        caption: str | None = None,
    ) -> tuple[Tensor, list[dict[str, Any]]]:
        """(K, T, D) strength·Δc per target (+ the weighted extra directions), and a record of each. With a `caption`
        that names `source` (EditConfig.direction_from 'caption'), Δc is that caption's word swap; else the sentence
        banks' difference."""
        blocker = None if caption is None else self._swap_blocker(caption, source, targets)
        from_caption = caption is not None and blocker is None
        source_bank = None if from_caption else self.concept_embedding(source)
        extra_sum = (
            combine_directions([self.direction(s, t) for s, t, _ in extra], [w for *_, w in extra]) if extra else 0.0
        )
        if from_caption:  # the caption's word swap for every target, the caption encoded once
            edited = [swap_word(caption, source, t) for t in targets]
            swaps = self.components.encode_text(edited) - self.components.encode_text([caption])
        rows, records = [], []
        for i, target in enumerate(targets):
            record: dict[str, Any] = {"source": source, "target": target, "strength": strength}
            if from_caption:
                rows.append(swaps[i : i + 1])
                record.update(direction="caption", edited_caption=edited[i])
            else:
                target_mean, target_origin, target_count = self.concept_embedding(target)
                rows.append(make_direction(source_bank[0], target_mean))
                record["direction"] = "sentences" + (f" ({blocker})" if caption is not None else "")
                record["sentences"] = {"source": list(source_bank[1:]), "target": [target_origin, target_count]}
            rows[-1] = strength * rows[-1] + extra_sum
            records.append({**record, "extra_directions": [list(e) for e in extra]})
        return torch.cat(rows), records

    def _edit_directions(
        self,
        source: str,
        targets: list[str],
        caption: str,
        cfg: EditConfig,
        opts: EditOptions,
        embedding_shape: Sequence[int],
    ) -> tuple[Tensor, list[dict[str, Any]]]:
        """The edits' directions and records; a given direction must fit the text embeddings' `embedding_shape`."""
        if opts.direction is None:
            named = caption if cfg.direction_from == "caption" else None  # kept for the fallback's record
            return self._directions(source, targets, cfg.strength, opts.extra, named)
        given = opts.direction if opts.direction.dim() == 3 else opts.direction[None]
        embedding = tuple(embedding_shape)
        if given.dim() != 3 or tuple(given.shape[1:]) != embedding:
            raise ValueError(
                f"the given direction's shape {tuple(opts.direction.shape)} does not fit this model's text embeddings "
                f"{embedding}: directions belong to the text encoder they were built with"
            )
        if given.shape[0] != len(targets):
            raise ValueError(f"the given direction holds {given.shape[0]} directions for {len(targets)} targets")
        edits = [{"source": source, "target": t, "strength": cfg.strength, "direction": "given"} for t in targets]
        return cfg.strength * given.to(self.components.device), edits

    def _edited_words(self, caption: str, edits: list[dict[str, Any]]) -> list[tuple[list[int], list[int]]] | None:
        """Per edit whose direction came from the caption: the source word's token positions in the caption and the
        target's in the edited caption (what the automatic mask reads); None unless every edit has both."""
        positions = self.components.token_positions
        words = [
            (positions(caption, e["source"]), positions(e["edited_caption"], e["target"]))
            for e in edits
            if e.get("direction") == "caption"
        ]
        return words if words and len(words) == len(edits) and all(s and t for s, t in words) else None

    def _mask(
        self,
        source: MaskSource,
        image: Image.Image,
        cfg: EditConfig,
        content_box: Box | None = None,
        words: list[tuple[list[int], list[int]]] | None = None,
    ) -> PixelMask | AutoMask | None:
        """The user's mask on the prepared image (None when all white), or an automatic one (from the edited `words`'
        attention when known). On an input padded to a square the user's mask covers the input's own part
        (`content_box`); the padding may not change."""
        if isinstance(source, str) and source == AUTO:
            factor = self.components.vae_scale_factor
            return AutoMask((image.height // factor, image.width // factor), cfg.auto_mask_threshold, words=words)
        if content_box is None or source is None:
            return read_mask(source, image.size, self.preset.image.max_input_pixels)
        left, top, right, bottom = (round(f * side) for f, side in zip(content_box, (*image.size, *image.size)))
        inner = read_mask(source, (right - left, bottom - top), self.preset.image.max_input_pixels)
        if inner is None:
            return None
        pixels = torch.zeros(1, 1, image.height, image.width)
        pixels[..., top:bottom, left:right] = inner.pixels
        return PixelMask(pixels, inner.origin)

    def _run_edit(
        self,
        x_T: Tensor,
        reference: Conditioning,
        target: Conditioning,
        cfg: EditConfig,
        trajectory: Tensor | None = None,
        mask: Tensor | AutoMask | None = None,
        source_tokens: Sequence[int] = (),
    ) -> tuple[Tensor, Tensor, list[dict[str, Any] | None]]:
        """(edited latents, reference latents, per edit its late guidance record: at half the steps how much of the
        image the source word (`source_tokens` in the caption) covered, how far the edit had moved, whether it was
        judged small and whether its CFG was strengthened; None with late guidance off)."""
        c = self.components
        recorder = AttentionRecorder()
        sharer = SelfAttentionSharer() if cfg.self_attention_injection > 0 else None
        late = (
            LateGuidance(
                cfg.late_guidance_factor,
                cfg.late_guidance_area,
                cfg.late_guidance_movement,
                source_tokens,
                xa_factor=cfg.late_guidance_xa,
            )
            if cfg.late_guidance_factor > 1 or cfg.late_guidance_xa < 1
            else None
        )
        with ExitStack() as hooks:
            hooks.enter_context(hooked_cross_attention(c.unet, recorder, select=GUIDED_LAYERS[cfg.xa_layers]))
            if sharer is not None:
                hooks.enter_context(shared_self_attention(c.unet, sharer))
            on_step = hooks.enter_context(self._bar(cfg.num_steps, "edit"))
            edited, reconstructed = edit_latents(
                c.eps_model, recorder, c.schedule, x_T, reference, target, cfg, on_step, trajectory, mask, sharer, late
            )
        if late is None or late.small is None:  # off (the record is made at half the steps)
            return edited, reconstructed, [None] * len(edited)
        records = [
            {"area": late.area_covered, "moved": m, "small": small, "strengthened": b}
            for m, small, b in zip(late.moved.tolist(), late.small.tolist(), late.strengthened.tolist())
        ]
        return edited, reconstructed, records

    def _result(
        self,
        edited: Tensor,
        reconstructed: Tensor,
        input_image: Image.Image,
        caption: str,
        edits: list[dict[str, Any]],
        config_record: dict[str, Any],
        timings: dict[str, float],
        mask: PixelMask | AutoMask | None = None,
        feather: int = 0,
        content_box: Box | None = None,
    ) -> EditResult:
        started = time.perf_counter()
        c = self.components
        pixels = c.decode_latents(torch.cat([edited, reconstructed]))
        unsafe = c.flag_unsafe(pixels)
        pixels[torch.tensor(unsafe, dtype=torch.bool)] = 0.0  # the optional safety checker blanks flagged images
        *images, reconstruction = tensor_to_pil(pixels)
        masks = None
        if mask is not None:  # outside the mask, the input's own pixels (the decoder spreads a latent edit)
            where = mask.pixels if isinstance(mask, PixelMask) else latent_to_pixels(mask.mask(), c.vae_scale_factor)
            where = where.expand(len(images), -1, -1, -1)[:, 0].cpu()
            images = [
                composite(im, input_image, soft_edge(w[None, None], feather)[0, 0]) for im, w in zip(images, where)
            ]
            masks = [mask_to_image(w) for w in where]
        if content_box is not None:  # a padded input: every output back to the input's own aspect ratio
            images, reconstruction, input_image = (
                [crop_to_box(i, content_box) for i in images],
                crop_to_box(reconstruction, content_box),
                crop_to_box(input_image, content_box),
            )
            masks = [crop_to_box(m, content_box) for m in masks] if masks is not None else None
        timings = {**timings, "decode": time.perf_counter() - started}
        return EditResult(images, reconstruction, input_image, caption, edits, config_record, timings, unsafe, masks)

    def _config_record(
        self, cfg: EditConfig, inversion: Inversion | None, image_config: ImageConfig | None, seed: int
    ) -> dict[str, Any]:
        return {
            "model": self.components.model_id,
            "model_fingerprint": self.components.fingerprint(),
            "preset": self.preset.name,
            "preset_tuning": self.preset.tuning,
            "edit_config": asdict(cfg),
            "inversion_config": asdict(inversion.config) if inversion else None,
            "image_config": asdict(image_config or self.preset.image),
            "seed": seed,
            "dtype": str(self.components.dtype),
            **({"original_size": list(inversion.original_size)} if inversion and inversion.original_size else {}),
            "versions": versions(),
        }

    def _bar(self, total: int, desc: str) -> _ProgressBar:
        return _ProgressBar(total, desc, enabled=self.progress)


def _targets(target: str | Sequence[str]) -> list[str]:
    """One target or a list of them, as a list; at least one."""
    if isinstance(target, str):
        return [target]
    if not isinstance(target, Sequence) or not all(isinstance(t, str) for t in target):
        raise TypeError(f"target is a concept (str) or a list of them, got {target!r}")
    if not target:
        raise ValueError("give at least one target")
    return list(target)


def _check_inversion_options(inversion: Inversion, opts: EditOptions) -> None:
    """A saved inversion was captioned, prepared and inverted already: settings of those steps cannot change it."""
    made = f"the inversion was made with the caption {inversion.caption!r} and {asdict(inversion.config)}"
    if opts.caption is not None and opts.caption != inversion.caption:
        raise ValueError(f"{made}; a caption ({opts.caption!r}) applies when an image is inverted: invert it again")
    if opts.inversion is not None and opts.inversion != inversion.config:
        changed = {k: v for k, v in asdict(opts.inversion).items() if asdict(inversion.config)[k] != v}
        raise ValueError(f"{made}; other inversion settings ({changed}) apply when an image is inverted: invert again")
    if opts.image is not None:
        raise ValueError(
            "image settings (size, aspect, padding) apply when an image is prepared and inverted; this "
            "inversion's image was prepared already: invert the image again to change them"
        )


def _check_edit_fits(inversion: Inversion, cfg: EditConfig) -> None:
    """An edit starts at the noise level its inversion ended at; exact inversion retraces the inversion's own steps."""
    if inversion.config.num_steps != cfg.num_steps:
        raise ValueError(
            f"the inversion used {inversion.config.num_steps} steps but the edit asks for {cfg.num_steps}; "
            "an edit must start at the noise level its inversion ended at, so use the same number"
        )
    if cfg.exact_inversion and inversion.config.grid != "mirror":
        raise ValueError(
            "exact inversion retraces the sampling steps, which only the 'mirror' inversion grid inverts; "
            "invert with --inversion-grid mirror or turn exact inversion off"
        )
    if cfg.exact_inversion and inversion.trajectory is None:
        raise ValueError(
            "this inversion has no stored trajectory (a file of an earlier version); invert the image again "
            "to use exact inversion"
        )


class _ProgressBar:
    """A tqdm bar as an `on_step(i, n)` callback."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar = tqdm(total=total, desc=desc, unit="step", disable=not enabled, leave=False)

    def __enter__(self) -> Callable[[int, int], None]:
        return lambda i, n: self.bar.update(1)

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
