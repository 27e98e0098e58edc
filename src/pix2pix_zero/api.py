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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from safetensors.torch import save_file
from torch import Tensor
from tqdm.auto import tqdm

from . import sentences as sentence_banks
from .attention import GUIDED_LAYERS, AttentionRecorder, hooked_cross_attention
from .captioning import DEFAULT_CAPTIONER, BlipCaptioner, Captioner
from .components import Components, load_components, preset_for
from .config import MAX_IMAGE_SIDE, EditConfig, ImageConfig, InversionConfig, Preset, override
from .directions import ConceptCache, combine_directions, default_cache_dir, make_direction
from .editing import edit as edit_latents
from .files import OutputExistsError, TensorFileError, atomic_write, read_tensor_file, safe_name
from .guidance import Conditioning
from .images import labelled_grid, load_image, pil_to_tensor, prepare_image, save_png, tensor_to_pil
from .inversion import invert as invert_latents

NUM_GENERATED_SENTENCES = 500  # template sentences for a concept without a bank
MAX_LATENT_SIDE = MAX_IMAGE_SIDE // 8  # the VAEs of every supported model downsample by 8
MAX_INVERSION_BYTES = 2**30
INVERSION_METADATA = ("caption", "config", "model", "seed", "image_sha256")
REINVERT = "invert the image again with `pix2pix-zero invert`"


def versions() -> dict[str, str]:
    import diffusers
    import transformers

    from . import __version__

    return {"pix2pix_zero": __version__, "torch": torch.__version__, "diffusers": diffusers.__version__,
            "transformers": transformers.__version__}


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
    model_fingerprint: str = ""  # the weights it was made with (Components.fingerprint); "" in older files

    def save(self, path: str | os.PathLike[str]) -> Path:
        meta = {"caption": self.caption, "config": json.dumps(asdict(self.config)), "model": self.model,
                "seed": str(self.seed), "image_sha256": self.image_sha256, "model_fingerprint": self.model_fingerprint}
        tensors = {"x_T": self.x_T.contiguous().cpu(), "latents": self.latents.contiguous().cpu(), "image": pil_to_tensor(self.image)}
        return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta), overwrite=True)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Inversion:
        tensors, meta, config = read_inversion_file(path)
        image = tensor_to_pil((tensors["image"] + 1) / 2)[0]
        return cls(tensors["x_T"].float(), tensors["latents"].float(), meta["caption"], image, config,
                   meta["model"], int(meta["seed"]), meta["image_sha256"], meta.get("model_fingerprint", ""))


def read_inversion_file(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, str], InversionConfig]:
    """The tensors, metadata and config of an inversion file, each checked: keys, ranks, shapes, dtypes, finite values,
    a bounded file and latent size, and metadata a config can be made from. Anything else: one-line TensorFileError."""
    tensors, meta = read_tensor_file(path, "inversion", required=("x_T", "latents", "image"), optional=("trajectory",),
                                     max_bytes=MAX_INVERSION_BYTES, remedy=REINVERT)
    x_T, latents, image = tensors["x_T"], tensors["latents"], tensors["image"]
    if x_T.dim() != 4 or x_T.shape[0] != 1 or not 1 <= x_T.shape[1] <= 16 or max(x_T.shape[2:]) > MAX_LATENT_SIDE:
        raise TensorFileError(f"{path}: x_T has shape {tuple(x_T.shape)}, not (1, channels <= 16, h, w) with h, w <= "
                              f"{MAX_LATENT_SIDE}; {REINVERT}")
    if latents.shape != x_T.shape:
        raise TensorFileError(f"{path}: latents {tuple(latents.shape)} and x_T {tuple(x_T.shape)} differ in shape; "
                              f"{REINVERT}")
    height, width = x_T.shape[2:]
    if (image.dim() != 4 or tuple(image.shape[:2]) != (1, 3) or image.shape[2] % height or image.shape[3] % width
            or image.shape[2] // height != image.shape[3] // width or max(image.shape[2:]) > MAX_IMAGE_SIDE):
        raise TensorFileError(f"{path}: image {tuple(image.shape)} is not (1, 3, H, W) at a whole multiple of the "
                              "latent "
                              f"{height}x{width}; {REINVERT}")
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

    @property
    def image(self) -> Image.Image:
        return self.images[0]

    def metadata(self, index: int = 0) -> dict[str, Any]:
        return {**self.config, "caption": self.caption, **self.edits[index], "timings_s": self.timings}

    def grid(self) -> Image.Image:
        labels = ["input", "reconstruction"] + [f"{e['source']} -> {e['target']}" for e in self.edits]  # ASCII: PIL's built-in font
        return labelled_grid([self.input, self.reconstruction, *self.images], labels)

    @staticmethod
    def output_paths(folder: str | os.PathLike[str], stem: str, targets: Sequence[str]) -> list[Path]:
        """The PNGs `save` writes (input, reconstruction, one edit per target, grid); each also gets a .json sidecar."""
        folder = Path(folder)
        edits = [folder / f"{stem}.edit-{safe_name(Path(target).stem, 'edit')}.png" for target in targets]
        if len(set(edits)) != len(edits):
            raise ValueError(f"targets {list(targets)} give the same output file name twice; "
                             "make them differ in letters or digits")
        first = [folder / f"{stem}.input.png", folder / f"{stem}.reconstruction.png"]
        return [*first, *edits, folder / f"{stem}.grid.png"]

    def save(self, folder: str | os.PathLike[str], stem: str = "image", overwrite: bool = False) -> list[Path]:
        """Write <stem>.input/.reconstruction/.edit-<target>/.grid PNGs, each with metadata and a JSON sidecar.

        All or none: every target is checked before any is written. Timings go to the sidecars only, so the same
        run gives byte-identical PNGs.
        """
        paths = self.output_paths(folder, stem, [edit["target"] for edit in self.edits])
        if not overwrite:
            for path in paths:
                for target in (path, path.with_suffix(".json")):
                    if target.exists():
                        raise OutputExistsError(f"{target} exists already; "
                                                "choose another output folder or pass --overwrite")
        base = {**self.config, "caption": self.caption}
        timings = {"timings_s": self.timings}
        input_path, reconstruction_path, *edit_paths, grid_path = paths
        written = [save_png(self.input, input_path, base, overwrite, timings),
                   save_png(self.reconstruction, reconstruction_path, base, overwrite, timings)]
        for i, (image, path) in enumerate(zip(self.images, edit_paths)):
            written.append(save_png(image, path, {**base, **self.edits[i]}, overwrite, timings))
        written.append(save_png(self.grid(), grid_path, {**base, "edits": self.edits}, overwrite, timings))
        return written


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")


def swap_word(caption: str, source: str, target: str) -> str:
    """The caption with each whole-word occurrence of `source` replaced by `target` (the paper's word-swap baselines)."""
    pattern = re.compile(rf"\b{re.escape(source)}\b", flags=re.IGNORECASE)
    if not pattern.search(caption):
        raise ValueError(f"the caption '{caption}' does not contain '{source}'; a word swap needs it")
    return pattern.sub(target, caption)


class Pix2PixZero:
    """pix2pix-zero on a Stable-Diffusion-family model: caption → invert → direction → guided edit."""

    def __init__(self, components: Components, captioner: Captioner | None = None, preset: str = "default",
                 cache_dir: str | os.PathLike[str] | None = None, progress: bool = True,
                 sentence_model: str | os.PathLike[str] | None = None) -> None:
        self.components = components
        self.sentence_model = sentence_model  # a local language model for concepts without a bank
        self._captioner = captioner
        self.preset: Preset = preset_for(preset, components.model_dir)  # with the model's own measured settings, if any
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.concepts = ConceptCache(self.cache_dir)
        self.progress = progress

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike[str] = "shapesworld", device: str = "cpu", dtype: str | torch.dtype = "float32",
                        captioner: str | Captioner | None = None, safety_checker: bool = False, **kwargs: Any) -> Pix2PixZero:
        """Load a diffusers-format SD 1.x/2.x model by hub id or folder ('shapesworld' is the bundled model).

        The captioner defaults to the model folder's own `captioner/` when it has one (the bundled
        model does), else BLIP-large; it is loaded on first use only.
        """
        components = load_components(model, device=device, dtype=dtype, safety_checker=safety_checker)
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

    def prepare_image(self, image: str | os.PathLike[str] | Image.Image, image_config: ImageConfig | None = None) -> Image.Image:
        cfg = image_config or self.preset.image
        loaded = load_image(image, max_pixels=cfg.max_input_pixels)
        return prepare_image(loaded, cfg.size or self.components.native_size, self.components.image_multiple, cfg.keep_aspect)

    def _cached_caption(self, image: Image.Image, image_sha: str, use_cache: bool) -> str:
        """Captions of captioners with a `cache_key` (BLIP checkpoints: name and files) are kept on disk per image;
        others always run."""
        key = getattr(self._captioner, "cache_key", None)
        if not use_cache or key is None:
            return self.caption(image)
        path = self.cache_dir / "captions" / f"{image_sha[:24]}-{hashlib.sha256(str(key).encode()).hexdigest()[:12]}.txt"
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
        if path.suffix.lower() == ".txt" or path.is_file():
            return sentence_banks.read_sentence_file(path), f"file:{path}"
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
        found = sentence_banks.generate_with_language_model(concept, self.sentence_model, num=NUM_GENERATED_SENTENCES,
                                                            seed=0, device=str(self.components.device))
        if not found:
            raise ValueError(f"the language model {self.sentence_model} produced no usable sentences for {concept!r}")
        atomic_write(cached, ("\n".join(found) + "\n").encode(), overwrite=True)
        return found

    def concept_embedding(self, concept: str) -> tuple[Tensor, str, int]:
        """(1, T, D) mean embedding of the concept's sentences (cached on disk), with their origin and count."""
        sentences, origin = self.sentences(concept)
        bar = tqdm(total=len(sentences), desc=f"embed '{concept}'", unit="sent", disable=not self.progress, leave=False)
        with bar:
            mean = self.concepts.get_or_compute(concept, sentences, self.components.fingerprint(), self.components.model_id,
                                                lambda s: self.components.encode_text(s, on_batch=bar.update))
        return mean.to(self.components.device), origin, len(sentences)

    def direction(self, source: str, target: str) -> Tensor:
        """Δc for source → target, (1, T, D)."""
        return make_direction(self.concept_embedding(source)[0], self.concept_embedding(target)[0])

    def word_swap_direction(self, caption: str, source: str, target: str) -> Tensor:
        """E(caption with source → target) − E(caption), (1, T, D): the word-swap edit as a direction."""
        return self.components.encode_text([swap_word(caption, source, target)]) - self.components.encode_text([caption])

    # -- the method -------------------------------------------------------------------------------

    def invert(self, image: str | os.PathLike[str] | Image.Image, caption: str | None = None, config: InversionConfig | None = None,
               image_config: ImageConfig | None = None, seed: int = 0, use_cache: bool = True) -> Inversion:
        """Caption (unless given) and invert an image; cached on disk by image, model, caption, settings and seed."""
        cfg = config or self.preset.inversion
        _check_seed(seed)
        prepared = self.prepare_image(image, image_config)
        image_sha = hashlib.sha256(prepared.tobytes() + repr(prepared.size).encode()).hexdigest()
        caption = caption if caption is not None else self._cached_caption(prepared, image_sha, use_cache)
        key = hashlib.sha256(json.dumps([image_sha, self.components.fingerprint(), caption, asdict(cfg), seed,
                                         str(self.components.dtype)]).encode()).hexdigest()[:24]
        cache_file = self.cache_dir / "inversions" / f"{key}.safetensors"
        if use_cache and cache_file.is_file():
            try:
                cached = Inversion.load(cache_file)
            except (ValueError, OSError):  # a corrupt cache file is a miss: inverted again and replaced below
                cached = None
            if cached is not None and cached.x_T.shape[1] == self.components.unet.config.in_channels:
                c = self.components
                return Inversion(cached.x_T.to(c.device), cached.latents.to(c.device), caption, prepared, cfg,
                                 c.model_id, seed, image_sha, c.fingerprint())
        generator = torch.Generator().manual_seed(seed)
        c = self.components
        latents = c.encode_image(pil_to_tensor(prepared).to(c.device), cfg.latent_sampling, generator)
        caption_emb = c.encode_text([caption])
        with self._bar(cfg.num_steps if cfg.grid == "mirror" else cfg.num_steps - 2, "invert") as on_step:
            x_T = invert_latents(c.eps_model, c.schedule, latents, caption_emb, cfg, generator, on_step)
        inversion = Inversion(x_T, latents, caption, prepared, cfg, c.model_id, seed, image_sha, c.fingerprint())
        if use_cache:
            inversion.save(cache_file)
        return inversion

    def check_inversion(self, inversion: Inversion) -> None:
        """Refuse an inversion made with other weights (by fingerprint; files without one: by model id) or shaped
        for another latent space."""
        c = self.components
        if inversion.model_fingerprint and inversion.model_fingerprint != c.fingerprint():
            raise ValueError(f"the inversion was made with {inversion.model} (weights {inversion.model_fingerprint}), "
                             "not with "
                             f"{c.model_id} (weights {c.fingerprint()}); {REINVERT} and this model")
        if not inversion.model_fingerprint and inversion.model != c.model_id:
            raise ValueError(f"the inversion was made with {inversion.model}, not with {c.model_id}; "
                             f"{REINVERT} and this model")
        channels, (height, width) = inversion.x_T.shape[1], inversion.x_T.shape[2:]
        pixels = (width * c.vae_scale_factor, height * c.vae_scale_factor)
        if channels != c.unet.config.in_channels or inversion.image.size != pixels:
            raise ValueError(f"the inversion's latent {tuple(inversion.x_T.shape)} does not fit {c.model_id} with its "
                             f"{inversion.image.width}x{inversion.image.height} image; {REINVERT}")

    def edit(self, image: str | os.PathLike[str] | Image.Image | Inversion, source: str, target: str | Sequence[str],
             caption: str | None = None, config: EditConfig | None = None, inversion_config: InversionConfig | None = None,
             image_config: ImageConfig | None = None, seed: int = 0, extra: Sequence[tuple[str, str, float]] = (),
             use_cache: bool = True, direction: Tensor | None = None, **edit_overrides: Any) -> EditResult:
        """Edit an image (or a ready `Inversion`) from `source` to each `target`; several targets share one inversion.

        `extra` adds weighted directions (source, target, weight) to every edit; `direction` (K, T, D)
        replaces the sentence-bank directions (e.g. `word_swap_direction`); `edit_overrides` set
        EditConfig fields (xa_guidance=0.2, strength=1.5, ...) on top of the preset or `config`.
        """
        cfg = override(config or self.preset.edit, **edit_overrides)
        targets = [target] if isinstance(target, str) else list(target)
        if not targets:
            raise ValueError("give at least one target")
        started = time.perf_counter()
        if isinstance(image, Inversion):
            self.check_inversion(image)
        inversion = image if isinstance(image, Inversion) else self.invert(image, caption, inversion_config, image_config, seed, use_cache)
        inverted_at = time.perf_counter()
        if inversion.config.num_steps != cfg.num_steps:
            raise ValueError(f"the inversion used {inversion.config.num_steps} steps but the edit asks for {cfg.num_steps}; "
                             "an edit must start at the noise level its inversion ended at, so use the same number")
        if direction is None:
            directions, edits = self._directions(source, targets, cfg.strength, extra)
        else:
            directions = cfg.strength * direction.to(self.components.device)
            edits = [{"source": source, "target": t, "strength": cfg.strength, "direction": "given"} for t in targets]
        caption_emb = self.components.encode_text([inversion.caption])
        negative = caption_emb if cfg.negative_prompt == "caption" else self.components.encode_text([""])
        reference = Conditioning(cond=caption_emb)  # with the caption as negative, CFG is the identity here (algorithm.md §3)
        target_cond = Conditioning(cond=caption_emb + directions, uncond=negative, scale=cfg.guidance_scale)
        edited, reconstructed = self._run_edit(inversion.x_T, reference, target_cond, cfg)
        config_record = self._config_record(cfg, inversion, image_config, seed)
        return self._result(edited, reconstructed, inversion.image, inversion.caption, edits, config_record,
                            {"invert": inverted_at - started, "edit": time.perf_counter() - inverted_at})

    def generate_and_edit(self, prompt: str, source: str, target: str | Sequence[str], seed: int = 0,
                          config: EditConfig | None = None, size: int | None = None, **edit_overrides: Any) -> EditResult:
        """The paper's synthetic mode: sample x_T ~ N(0, I) with `seed`, generate from `prompt` (CFG, empty negative
        prompt) as the reference branch, and edit it in lockstep. The 'input' and 'reconstruction' are the generation."""
        base = config or override(self.preset.edit, xa_guidance=self.preset.synthetic_xa_guidance)
        cfg = override(base, **edit_overrides)
        targets = [target] if isinstance(target, str) else list(target)
        c = self.components
        whole = isinstance(size, int) and not isinstance(size, bool)
        if size is not None and (not whole or not 8 <= size <= MAX_IMAGE_SIDE):
            raise ValueError(f"size must be a whole number of pixels from 8 to {MAX_IMAGE_SIDE}, got {size!r}")
        _check_seed(seed)
        side = max(1, (size or c.native_size) // c.vae_scale_factor)
        generator = torch.Generator().manual_seed(seed)
        x_T = torch.randn((1, c.unet.config.in_channels, side, side), generator=generator).to(c.device)
        started = time.perf_counter()
        directions, edits = self._directions(source, targets, cfg.strength, ())
        prompt_emb, empty_emb = c.encode_text([prompt]), c.encode_text([""])
        reference = Conditioning(cond=prompt_emb, uncond=empty_emb, scale=cfg.guidance_scale)
        target_cond = Conditioning(cond=prompt_emb + directions, uncond=empty_emb, scale=cfg.guidance_scale)
        edited, generated = self._run_edit(x_T, reference, target_cond, cfg)
        generated_image = tensor_to_pil(c.decode_latents(generated))[0]
        record = {**self._config_record(cfg, None, None, seed), "mode": "synthetic", "prompt": prompt}
        return self._result(edited, generated, generated_image, prompt, edits, record, {"edit": time.perf_counter() - started})

    # -- internals --------------------------------------------------------------------------------

    def _directions(self, source: str, targets: Sequence[str], strength: float,
                    extra: Sequence[tuple[str, str, float]]) -> tuple[Tensor, list[dict[str, Any]]]:
        """(K, T, D) strength·Δc per target (+ the weighted extra directions), and a record of each."""
        source_mean, source_origin, source_count = self.concept_embedding(source)
        extra_sum = combine_directions([self.direction(s, t) for s, t, _ in extra], [w for *_, w in extra]) if extra else 0.0
        rows, records = [], []
        for target in targets:
            if target.strip().lower() == source.strip().lower():
                raise ValueError(f"source and target are the same concept ({source!r})")
            target_mean, target_origin, target_count = self.concept_embedding(target)
            rows.append(strength * make_direction(source_mean, target_mean) + extra_sum)
            records.append({"source": source, "target": target, "strength": strength,
                            "extra_directions": [list(e) for e in extra],
                            "sentences": {"source": [source_origin, source_count], "target": [target_origin, target_count]}})
        return torch.cat(rows), records

    def _run_edit(self, x_T: Tensor, reference: Conditioning, target: Conditioning, cfg: EditConfig) -> tuple[Tensor, Tensor]:
        c = self.components
        recorder = AttentionRecorder()
        with hooked_cross_attention(c.unet, recorder, select=GUIDED_LAYERS[cfg.xa_layers]), self._bar(cfg.num_steps, "edit") as on_step:
            return edit_latents(c.eps_model, recorder, c.schedule, x_T, reference, target, cfg, on_step)

    def _result(self, edited: Tensor, reconstructed: Tensor, input_image: Image.Image, caption: str,
                edits: list[dict[str, Any]], config_record: dict[str, Any], timings: dict[str, float]) -> EditResult:
        started = time.perf_counter()
        c = self.components
        pixels = c.decode_latents(torch.cat([edited, reconstructed]))
        unsafe = c.flag_unsafe(pixels)
        pixels[torch.tensor(unsafe, dtype=torch.bool)] = 0.0  # the optional safety checker blanks flagged images
        *images, reconstruction = tensor_to_pil(pixels)
        timings = {**timings, "decode": time.perf_counter() - started}
        return EditResult(images, reconstruction, input_image, caption, edits, config_record, timings, unsafe)

    def _config_record(self, cfg: EditConfig, inversion: Inversion | None, image_config: ImageConfig | None, seed: int) -> dict[str, Any]:
        return {"model": self.components.model_id, "model_fingerprint": self.components.fingerprint(), "preset": self.preset.name,
                "preset_tuning": self.preset.tuning, "edit_config": asdict(cfg), "inversion_config": asdict(inversion.config) if inversion else None,
                "image_config": asdict(image_config or self.preset.image), "seed": seed, "dtype": str(self.components.dtype),
                "versions": versions()}

    def _bar(self, total: int, desc: str) -> _ProgressBar:
        return _ProgressBar(total, desc, enabled=self.progress)


class _ProgressBar:
    """A tqdm bar as an `on_step(i, n)` callback."""

    def __init__(self, total: int, desc: str, enabled: bool) -> None:
        self.bar = tqdm(total=total, desc=desc, unit="step", disable=not enabled, leave=False)

    def __enter__(self) -> Callable[[int, int], None]:
        return lambda i, n: self.bar.update(1)

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
