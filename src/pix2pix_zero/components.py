"""Model loading and the adapters around the diffusers/transformers models. With attention.py, the
only module that touches their internals.

`Components` holds a Stable-Diffusion-family model (UNet, VAE, CLIP text encoder and tokenizer,
noise schedule) and turns it into what the algorithm needs: ε predictions, text embeddings,
latents and pixels. All weights are frozen: guidance only needs gradients to the latent.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from . import components_sdxl as sdxl
from .components_sdxl import SINGLE_FILE_SUFFIXES
from .config import Preset, get_preset, tuned
from .ddim import Schedule, to_eps

BUNDLED_MODELS: dict[str, Path] = {"shapesworld": Path(str(files("pix2pix_zero") / "assets" / "shapesworld"))}
PRESET_TUNING_FILE = "pix2pix_zero.json"  # a model folder's own measured preset settings: {"presets": {name: changes}}

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


class ModelNotAvailableError(OSError):
    """A model could not be loaded from the given hub id or folder."""


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    try:
        return DTYPES[dtype.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}; choose one of float32, float16, bfloat16") from None


def resolve_model(model: str | os.PathLike[str]) -> str:
    """Map a bundled name to its folder and check local folders; hub ids pass through unchanged."""
    name = str(model)
    if name in BUNDLED_MODELS:
        folder = BUNDLED_MODELS[name]
        if not (folder / "model_index.json").is_file():
            raise ModelNotAvailableError(f"the bundled model '{name}' is missing from the installed package ({folder})")
        return str(folder)
    path = Path(name).expanduser()
    if path.is_file() and path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        return str(path)  # a single-file checkpoint (load_components converts it with diffusers' from_single_file)
    if path.exists():
        if not (path / "unet").is_dir():
            raise ModelNotAvailableError(
                f"'{path}' is not a diffusers-format Stable Diffusion folder: it has no unet/ subfolder "
                "(expected model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/)"
            )
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:  # hub ids are 'owner/name'
        raise ModelNotAvailableError(f"model folder '{name}' does not exist")
    return name


# The presets on SDXL: its native size (1024 px on SDXL base), and for `official` the per-element loss scales, so the
# authors' λ values (measured on SD 1.x at 512 px) give the same steps per element on SDXL's larger latent and its 70
# cross-attention maps (`default` has them already)
SDXL_PRESET_TUNING: dict[str, dict[str, Any]] = {
    "default": {"why": "SDXL: the model's native size (1024 px long side on SDXL base)."},
    "official": {
        "inversion": {"reg_loss_scale": "sd512"},
        "edit": {"xa_loss_scale": "sd512"},
        "why": "SDXL: the model's native size (1024 px on SDXL base), and the authors' steps per element (SD-512 "
        "units) for the regularizers and the attention loss; their summed/mean losses are tied to SD 1.x's "
        "sizes.",
    },
}


def model_name(model_id: str) -> str:
    """How to show a loaded model to a person: a bundled model by its name, anything else as given."""
    for name, folder in BUNDLED_MODELS.items():
        if Path(model_id) == folder:
            return name
    return model_id


DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(device: str | torch.device) -> str | torch.device:
    """`device` if torch knows it and this machine has it (cpu, cuda, cuda:N, mps), else a one-line ValueError."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"unknown device {str(device)!r}; use cpu, cuda, cuda:N or mps") from None
    if parsed.type not in DEVICE_TYPES:
        raise ValueError(f"unsupported device {str(device)!r}; use cpu, cuda, cuda:N or mps")
    if parsed.type == "cuda" and (not torch.cuda.is_available() or (parsed.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA devices; use cpu")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: MPS is not available on this machine; use cpu")
    return device


def preset_for(
    name: str, model: str | os.PathLike[str] | None, is_sdxl: bool | None = None, native_size: int | None = None
) -> Preset:
    """The named preset as it applies to `model`: with the changes its folder's `pix2pix_zero.json` records for this
    preset, if it has one (the bundled model does; a hub id or a folder without the file gets the preset as written).
    SDXL models (`is_sdxl`, else detected from the model) get `SDXL_PRESET_TUNING` first, at `native_size` (else
    read from the folder; 1024 for a hub id)."""
    preset = get_preset(name)
    folder = Path(resolve_model(model)) if model is not None else None
    if is_sdxl if is_sdxl is not None else (folder is not None and sdxl.is_sdxl_model(str(folder))):
        size = native_size or (sdxl.native_size_of(folder) if folder is not None else 1024)
        preset = tuned(preset, {**SDXL_PRESET_TUNING[name], "image": {"size": size}})
    file = folder / PRESET_TUNING_FILE if folder is not None and folder.is_dir() else None
    if file is None or not file.is_file():
        return preset
    try:
        presets = json.loads(file.read_text()).get("presets", {})
        if "official" in presets:  # the authors' method stays theirs on every model
            raise ValueError("'official' is the authors' method and takes no tuning; tune 'default'")
        changes = presets.get(name)
        return tuned(preset, changes) if changes else preset
    except (json.JSONDecodeError, AttributeError, TypeError, ValueError) as error:
        raise ValueError(
            f"{file} holds no valid preset tuning ({error}); expected "
            '{"presets": {"default": {"edit": {"xa_guidance": 0.03}, "why": "..."}}}'
        ) from error


def pads_to_square(model: str | os.PathLike[str] | None) -> bool:
    """Whether the model folder's `pix2pix_zero.json` says it knows square images only ({"inputs": {"square": "pad"}}):
    a non-square input is then padded to a square with its border colour and the outputs cropped back (the bundled
    model, trained on 64x64 scenes, says so; stretching would turn its circles into ellipses)."""
    return _model_inputs(model).get("square") == "pad"


def known_words(model: str | os.PathLike[str] | None) -> frozenset[str] | None:
    """The words a model was trained on, when its folder's `pix2pix_zero.json` lists them ({"inputs": {"words":
    [...]}}; the bundled model does, a real model's tokenizer takes any word): concepts and captions with other words
    are refused, since the model cannot draw them."""
    words = _model_inputs(model).get("words")
    if words is None:
        return None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise ValueError(f"{Path(resolve_model(model)) / PRESET_TUNING_FILE}: inputs.words must be a list of words")
    return frozenset(w.lower() for w in words)


def _model_inputs(model: str | os.PathLike[str] | None) -> dict[str, Any]:
    """The `inputs` block of the model folder's `pix2pix_zero.json` ({} without one)."""
    folder = Path(resolve_model(model)) if model is not None else None
    file = folder / PRESET_TUNING_FILE if folder is not None else None
    if file is None or not file.is_file():
        return {}
    try:
        inputs = json.loads(file.read_text()).get("inputs", {})
        if not isinstance(inputs, dict):
            raise AttributeError("'inputs' is not an object")
        return inputs
    except (json.JSONDecodeError, AttributeError) as error:
        raise ValueError(f"{file} holds no valid model settings ({error})") from error


DIFFUSERS_LAYOUT = "diffusers format: model_index.json, unet/, vae/, text_encoder/, tokenizer/, scheduler/"


def _config_bytes(module: Any) -> bytes:
    """A module's config as sorted JSON, without the keys that say where it was loaded from (`_name_or_path`)."""
    config = module.config.to_dict() if hasattr(module.config, "to_dict") else dict(module.config)
    return json.dumps({k: v for k, v in config.items() if not k.startswith("_")}, sort_keys=True, default=str).encode()


def load_part(
    loader: Callable[..., Any],
    model: str,
    what: str,
    option: str = "--model",
    layout: str | None = DIFFUSERS_LAYOUT,
    hint: str | None = None,
    **kwargs: Any,
) -> Any:
    """`loader(model, **kwargs)` (a `from_pretrained`), any failure one ModelNotAvailableError that names the part
    (`what`) and says how to get it where there is no hub: `hint`, or by default the download and the `option` that
    then takes its folder."""
    try:
        return loader(model, **kwargs)
    except Exception as error:  # hub, network and file errors all arrive here with many types
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        folder = "./" + model.rstrip("/").split("/")[-1]
        download = (
            f"If the hub cannot be reached, download it where it can (`hf download {model} --local-dir {folder}`) "
            f"and pass the local folder: {option} {folder}" + (f" ({layout})." if layout else ".")
        )
        path = Path(model).expanduser()
        if path.exists() or model.startswith(("/", ".", "~")) or model.count("/") > 1:  # a path, not a hub id
            state = "holds no complete checkpoint" if path.exists() else "does not exist"
            download = f"{model} is a local path and {state}: check the path given to {option}" + (
                f" ({layout})." if layout else "."
            )
        raise ModelNotAvailableError(
            f"could not load the {what} of '{model}': {type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}\n"
            f"{'The hub is switched off (HF_HUB_OFFLINE=1). ' if offline else ''}{hint or download}"
        ) from error


class NoisePredictor:
    """The UNet as ε(x, t, text_emb): casts to the model dtype and converts v/x0 outputs to ε."""

    def __init__(self, unet: Any, schedule: Schedule) -> None:
        self.unet, self.schedule = unet, schedule
        self.num_calls = 0

    def __call__(self, x: Tensor, t: int | Tensor, text_emb: Tensor) -> Tensor:
        """t: one timestep, or a (B,) tensor of one per row."""
        self.num_calls += 1
        dtype = self.unet.dtype
        timestep = torch.as_tensor(t)
        out = self.unet_forward(x.to(dtype), timestep.to(x.device), text_emb.to(x.device, dtype))
        alpha_bar = (
            self.schedule.alphas_cumprod[timestep].reshape(-1, 1, 1, 1)
            if timestep.ndim
            else self.schedule.alpha_bar(int(t))
        )
        return to_eps(out.float(), x.float(), alpha_bar.to(x.device, torch.float32), self.schedule.prediction_type)

    def unet_forward(self, x: Tensor, timestep: Tensor, text_emb: Tensor) -> Tensor:
        """The UNet's raw output for inputs already in its dtype (SDXL adds its extra conditioning here)."""
        return self.unet(x, timestep, encoder_hidden_states=text_emb).sample


@dataclass
class Components:
    unet: Any
    vae: Any
    text_encoder: Any
    tokenizer: Any
    schedule: Schedule
    model_id: str
    safety_checker: Any = None
    feature_extractor: Any = None

    def __post_init__(self) -> None:
        for module in (self.unet, self.vae, *self.text_encoders):
            # gradients go to the latent only (docs/method.md#cost-notes: 60 s -> 42 s per SD step)
            module.requires_grad_(False)
            module.eval()
        if self.unet.device.type == "cpu":
            # NHWC convolutions take oneDNN's faster path on CPU: the same weights in another memory layout
            # (results agree to float rounding; bench speed, sd-small: edit 56.2 s -> 47.3 s)
            self.unet.to(memory_format=torch.channels_last)
        self.eps_model = NoisePredictor(self.unet, self.schedule)
        self._fingerprint: str | None = None

    @property
    def device(self) -> torch.device:
        return self.unet.device

    @property
    def text_encoders(self) -> tuple[Any, ...]:
        return (self.text_encoder,)

    @property
    def is_sdxl(self) -> bool:
        return False

    @contextmanager
    def size_conditioning(self, original_size: tuple[int, int] | None) -> Iterator[None]:
        """Condition the block's UNet calls on an input image's original (width, height): a no-op on SD 1.x/2.x,
        SDXL's micro-conditioning in components_sdxl.py."""
        yield

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def model_dir(self) -> Path | None:
        path = Path(self.model_id)
        return path if path.is_dir() else None

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_multiple(self) -> int:
        """Image sides must be multiples of this: the VAE's and the UNet's downsamplings together."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def native_size(self) -> int:
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @torch.no_grad()
    def encode_text(
        self, sentences: Sequence[str], batch_size: int = 64, on_batch: Callable[[int], None] | None = None
    ) -> Tensor:
        """CLIP last hidden states of each sentence, padded to the tokenizer's length: (N, T, D) float32."""
        chunks = []
        for start in range(0, len(sentences), batch_size):
            batch = list(sentences[start : start + batch_size])
            ids = self.tokenizer(
                batch,
                padding="max_length",
                max_length=self.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids
            chunks.append(self.text_encoder(ids.to(self.text_encoder.device))[0].float())
            if on_batch is not None:
                on_batch(len(batch))
        return torch.cat(chunks)

    def token_positions(self, text: str, word: str) -> list[int]:
        """Where `word`'s tokens sit in `text` as the (first) text encoder reads it, the start token at 0."""
        ids = self.tokenizer(text, truncation=True, max_length=self.tokenizer.model_max_length).input_ids
        word_ids = self.tokenizer(word.strip(), add_special_tokens=False).input_ids
        n = len(word_ids)
        return [i + j for i in range(len(ids) - n + 1) if n and ids[i : i + n] == word_ids for j in range(n)]

    @torch.no_grad()
    def encode_image(self, image: Tensor, sampling: str = "mean", generator: torch.Generator | None = None) -> Tensor:
        """(B, 3, H, W) in [-1, 1] -> scaled VAE latents (B, 4, H/f, W/f), float32."""
        posterior = self.vae.encode(image.to(self.vae.device, self.vae.dtype)).latent_dist
        if sampling == "mean":
            latents = posterior.mean
        else:
            noise = torch.randn(posterior.mean.shape, generator=generator, dtype=torch.float32).to(
                posterior.mean.device
            )
            latents = posterior.mean + posterior.std * noise.to(posterior.mean.dtype)
        return latents.float() * self.vae.config.scaling_factor

    @torch.no_grad()
    def decode_latents(self, latents: Tensor) -> Tensor:
        """Scaled latents -> images (B, 3, H, W) in [0, 1], float32."""
        images = self.vae.decode((latents / self.vae.config.scaling_factor).to(self.vae.device, self.vae.dtype)).sample
        return (images.float() / 2 + 0.5).clamp(0, 1)

    @torch.no_grad()
    def fingerprint(self) -> str:
        """A short hash of the text encoder, UNet and VAE (configs and weights), for cache keys and the inversion files'
        check: the content only, not where the folder lies, so a second copy of a model reuses the first one's cached
        results. Every weight tensor counts, by its name, shape and 4096 values spread over it (read as they are, so
        the same on any device), so a merged LoRA or a fine-tune that moves any layer changes it."""
        if self._fingerprint is not None:
            return self._fingerprint
        digest = hashlib.sha256()
        for module in (*self.text_encoders, self.unet, self.vae):
            digest.update(_config_bytes(module))
            for name, weight in module.named_parameters():
                flat = weight.detach().flatten()
                sample = flat[:: max(1, flat.numel() // 4096)][:4096].float()
                digest.update(f"{name}{tuple(weight.shape)}".encode())
                digest.update(sample.cpu().numpy().tobytes())
        self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    @torch.no_grad()
    def legacy_fingerprint(self) -> str:
        """The fingerprint inversion files of earlier versions carry (three weight tensors sampled): read only to keep
        those files usable on the model they were made with."""
        digest = hashlib.sha256()
        for module in (*self.text_encoders, self.unet, self.vae):
            digest.update(_config_bytes(module))
            params = list(module.parameters())
            for p in (params[0], params[len(params) // 2], params[-1]):
                digest.update(p.detach().float().cpu().flatten()[:65536].numpy().tobytes())
        return digest.hexdigest()[:16]

    @torch.no_grad()
    def flag_unsafe(self, images: Tensor) -> list[bool]:
        """Run the optional safety checker on images in [0, 1]; False for every image when it is off."""
        if self.safety_checker is None:
            return [False] * images.shape[0]
        pixels = self.feature_extractor(images=list(images.cpu()), do_rescale=False, return_tensors="pt").pixel_values
        _, flags = self.safety_checker(images=images.cpu().numpy(), clip_input=pixels.to(self.device, self.dtype))
        return [bool(f) for f in flags]


class SDXLNoisePredictor(NoisePredictor):
    """ε(x, t, packed text) for an SDXL UNet: unpacks the pooled vector and adds the micro-conditioning time ids
    (components_sdxl.py)."""

    def __init__(self, unet: Any, schedule: Schedule, pooled_dim: int, vae_scale_factor: int) -> None:
        super().__init__(unet, schedule)
        self.pooled_dim, self.vae_scale_factor = pooled_dim, vae_scale_factor
        self.original_size: tuple[int, int] | None = None  # (height, width) of the input before resizing

    def unet_forward(self, x: Tensor, timestep: Tensor, text_emb: Tensor) -> Tensor:
        tokens, pooled = sdxl.unpack_pooled(text_emb, self.pooled_dim)
        ids = sdxl.time_ids(x, self.vae_scale_factor, self.original_size, dtype=self.unet.dtype)
        return self.unet(
            x, timestep, encoder_hidden_states=tokens, added_cond_kwargs={"text_embeds": pooled, "time_ids": ids}
        ).sample


@dataclass
class SDXLComponents(Components):
    """An SDXL model: the second text encoder and tokenizer beside the first; text embeddings are packed
    (N, T + 1, D) with the pooled embedding last (components_sdxl.py)."""

    text_encoder_2: Any = None
    tokenizer_2: Any = None
    force_zeros_for_empty_prompt: bool = True  # SDXL base's model_index.json: the empty prompt is the zero embedding

    def __post_init__(self) -> None:
        super().__post_init__()
        self.eps_model = SDXLNoisePredictor(self.unet, self.schedule, self.pooled_dim, self.vae_scale_factor)

    @property
    def is_sdxl(self) -> bool:
        return True

    @property
    def pooled_dim(self) -> int:
        return int(self.text_encoder_2.config.projection_dim)

    @property
    def text_encoders(self) -> tuple[Any, ...]:
        return (self.text_encoder, self.text_encoder_2)

    @torch.no_grad()
    def encode_text(
        self, sentences: Sequence[str], batch_size: int = 64, on_batch: Callable[[int], None] | None = None
    ) -> Tensor:
        """Both encoders' penultimate hidden states side by side, the pooled embedding packed last:
        (N, T + 1, D) float32."""
        chunks = []
        for start in range(0, len(sentences), batch_size):
            batch = list(sentences[start : start + batch_size])
            chunks.append(
                sdxl.encode_with_both(
                    batch, (self.tokenizer, self.tokenizer_2), self.text_encoders, self.force_zeros_for_empty_prompt
                )
            )
            if on_batch is not None:
                on_batch(len(batch))
        return torch.cat(chunks)

    @contextmanager
    def size_conditioning(self, original_size: tuple[int, int] | None) -> Iterator[None]:
        """Condition on an input image's original (width, height) for the block (crop top-left: 0, 0, since images are
        resized, never cropped); None: the original size is the target size."""
        model = self.eps_model
        assert isinstance(model, SDXLNoisePredictor)
        previous = model.original_size
        model.original_size = None if original_size is None else (int(original_size[1]), int(original_size[0]))
        try:
            yield
        finally:
            model.original_size = previous


def sdxl_components(
    modules: dict[str, Any], schedule: Schedule, model_id: str, device: str | torch.device
) -> SDXLComponents:
    return SDXLComponents(
        unet=modules["unet"].to(device),
        vae=modules["vae"].to(device),
        text_encoder=modules["text_encoder"].to(device),
        tokenizer=modules["tokenizer"],
        schedule=schedule,
        model_id=model_id,
        text_encoder_2=modules["text_encoder_2"].to(device),
        tokenizer_2=modules["tokenizer_2"],
        force_zeros_for_empty_prompt=modules["force_zeros_for_empty_prompt"],
    )


def load_components(
    model: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    dtype: str | torch.dtype = "float32",
    safety_checker: bool = False,
    vae: str | os.PathLike[str] | None = None,
) -> Components:
    """Load a diffusers-format SD 1.x/2.x or SDXL model (hub id, local folder, a single-file checkpoint diffusers can
    convert, or a bundled name such as 'shapesworld'). `vae`: another VAE to use (hub id or folder, e.g. an
    fp16-fixed SDXL VAE)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    check_device(device)
    model_id = resolve_model(model)
    torch_dtype = resolve_dtype(dtype)
    if Path(model_id).is_file():
        return load_single_file(model_id, device, torch_dtype, vae)
    if sdxl.is_sdxl_model(model_id):
        modules = sdxl.load_sdxl_modules(model_id, torch_dtype, None if vae is None else str(vae), load_part)
        return sdxl_components(modules, schedule_from_scheduler(modules.pop("scheduler")), model_id, device)
    unet = load_part(UNet2DConditionModel.from_pretrained, model_id, "UNet", subfolder="unet", torch_dtype=torch_dtype)
    vae_model = (
        load_part(AutoencoderKL.from_pretrained, model_id, "VAE", subfolder="vae", torch_dtype=torch_dtype)
        if vae is None
        else load_part(AutoencoderKL.from_pretrained, os.fspath(vae), "VAE", torch_dtype=torch_dtype)
    )
    text_encoder = load_part(
        CLIPTextModel.from_pretrained, model_id, "text encoder", subfolder="text_encoder", torch_dtype=torch_dtype
    )
    tokenizer = load_part(CLIPTokenizer.from_pretrained, model_id, "tokenizer", subfolder="tokenizer")
    scheduler = load_part(DDIMScheduler.from_pretrained, model_id, "scheduler config", subfolder="scheduler")
    checker = extractor = None
    if safety_checker:
        from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
        from transformers import CLIPImageProcessor

        checker = load_part(
            StableDiffusionSafetyChecker.from_pretrained,
            model_id,
            "safety checker",
            subfolder="safety_checker",
            torch_dtype=torch_dtype,
        )
        extractor = load_part(
            CLIPImageProcessor.from_pretrained, model_id, "safety feature extractor", subfolder="feature_extractor"
        )
        checker.to(device)
    return Components(
        unet=unet.to(device),
        vae=vae_model.to(device),
        text_encoder=text_encoder.to(device),
        tokenizer=tokenizer,
        schedule=schedule_from_scheduler(scheduler),
        model_id=model_id,
        safety_checker=checker,
        feature_extractor=extractor,
    )


def load_single_file(
    path: str, device: str | torch.device, torch_dtype: torch.dtype, vae: str | os.PathLike[str] | None = None
) -> Components:
    """A single-file checkpoint (.safetensors/.ckpt) through diffusers' `from_single_file`, SDXL or SD 1.x/2.x as
    diffusers recognises it from the weights. diffusers fetches the matching configs from the hub (or its cache)."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, StableDiffusionXLPipeline
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type, load_single_file_checkpoint

    convert = (
        "A single-file checkpoint takes its model's configs from the hub (or its cache); where there is no hub, "
        "convert it where there is one (`from_single_file(path).save_pretrained(folder)` in diffusers) and pass "
        "the folder: --model ./folder."
    )
    unreadable = f"{path} could not be read as a checkpoint (.safetensors or .ckpt): is the file whole?"
    checkpoint = load_part(load_single_file_checkpoint, path, "weights", hint=unreadable)
    try:
        is_xl = infer_diffusers_model_type(checkpoint) == "xl_base"
    except Exception as error:  # diffusers reads the weights' key names, failing in many ways on other files
        raise ModelNotAvailableError(
            f"{path} is not a Stable Diffusion checkpoint diffusers recognises: {type(error).__name__}: {error}"
        ) from error
    del checkpoint
    pipeline_class = StableDiffusionXLPipeline if is_xl else StableDiffusionPipeline
    extra = {} if is_xl else {"safety_checker": None, "requires_safety_checker": False}
    pipe = load_part(
        pipeline_class.from_single_file, path, "single-file checkpoint", hint=convert, torch_dtype=torch_dtype, **extra
    )
    autoencoder = (
        pipe.vae
        if vae is None
        else load_part(AutoencoderKL.from_pretrained, os.fspath(vae), "VAE", torch_dtype=torch_dtype)
    )
    schedule = schedule_from_scheduler(pipe.scheduler)
    if is_xl:
        modules = dict(
            unet=pipe.unet,
            vae=sdxl.safe_vae(autoencoder),
            text_encoder=pipe.text_encoder,
            text_encoder_2=pipe.text_encoder_2,
            tokenizer=pipe.tokenizer,
            tokenizer_2=pipe.tokenizer_2,
            force_zeros_for_empty_prompt=bool(pipe.config.get("force_zeros_for_empty_prompt", True)),
        )
        return sdxl_components(modules, schedule, path, device)
    return Components(
        unet=pipe.unet.to(device),
        vae=autoencoder.to(device),
        text_encoder=pipe.text_encoder.to(device),
        tokenizer=pipe.tokenizer,
        schedule=schedule,
        model_id=path,
    )


def schedule_from_scheduler(scheduler: Any) -> Schedule:
    """Read ᾱ and the timestep conventions from any diffusers scheduler built on a beta schedule."""
    config = scheduler.config
    alphas_cumprod = scheduler.alphas_cumprod.double()
    clean = 1.0 if config.get("set_alpha_to_one", False) else float(alphas_cumprod[0])
    return Schedule(
        alphas_cumprod,
        clean_alpha_bar=clean,
        steps_offset=int(config.get("steps_offset", 0)),
        prediction_type=config.get("prediction_type", "epsilon"),
    )
