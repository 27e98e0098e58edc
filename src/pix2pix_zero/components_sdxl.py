"""The Stable Diffusion XL adapter: what SDXL does differently from SD 1.x, in one place (docs/sdxl.md).

SDXL conditions its UNet on more than a token sequence:
  - two CLIP text encoders, whose penultimate hidden states are concatenated on the feature axis
    (768 + 1280 = 2048 on SDXL base), and the second encoder's pooled, projected embedding (1280);
  - "micro-conditioning": six time ids, the original image size, the crop's top-left corner and the
    target size, embedded with the pooled vector and added to the timestep embedding.

The method (directions, means, `caption + Δ`, CFG batches) does arithmetic on one text tensor per
prompt. Here the pooled vector travels as one extra token position at the end of that tensor,
zero-padded to the feature width: (N, T + 1, D). Every linear operation of the method then acts on the
pooled vector exactly as on the tokens — the direction's pooled part is the mean pooled difference,
CFG batches carry it, a cached concept mean holds it — and `SDXLNoisePredictor` unpacks it just
before the UNet. The time ids do not depend on the text, so they are state of the noise predictor,
set per image by `Components.size_conditioning`.

This module holds SDXL's conventions as functions; `SDXLComponents` and `SDXLNoisePredictor` in components.py
are the thin classes that apply them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


def pack_pooled(tokens: Tensor, pooled: Tensor) -> Tensor:
    """(N, T, D) token states and (N, P) pooled embeddings, P <= D -> (N, T + 1, D), the pooled vector last."""
    if pooled.shape[-1] > tokens.shape[-1]:
        raise ValueError(
            f"the pooled embedding ({pooled.shape[-1]}) is wider than the token states ({tokens.shape[-1]})"
        )
    row = torch.nn.functional.pad(pooled, (0, tokens.shape[-1] - pooled.shape[-1]))
    return torch.cat([tokens, row[:, None]], dim=1)


def unpack_pooled(text_emb: Tensor, pooled_dim: int) -> tuple[Tensor, Tensor]:
    """The inverse of `pack_pooled`: (N, T + 1, D) -> ((N, T, D) token states, (N, pooled_dim) pooled)."""
    return text_emb[:, :-1], text_emb[:, -1, :pooled_dim]


def time_ids(
    x: Tensor,
    vae_scale_factor: int,
    original_size: tuple[int, int] | None,
    crop_top_left: tuple[int, int] = (0, 0),
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """(B, 6) micro-conditioning: original (H, W), crop top-left, target (H, W). The target is this latent's pixel size;
    without an input image (generation) the original size is the target size, as StableDiffusionXLPipeline's default."""
    target = (x.shape[-2] * vae_scale_factor, x.shape[-1] * vae_scale_factor)
    ids = (*(original_size or target), *crop_top_left, *target)
    return torch.tensor([ids], dtype=dtype, device=x.device).expand(x.shape[0], -1)


def encode_with_both(
    sentences: list[str], tokenizers: tuple[Any, Any], encoders: tuple[Any, Any], zeros_for_empty: bool
) -> Tensor:
    """Both encoders' penultimate hidden states side by side, the second's pooled projected embedding packed last:
    (N, T + 1, D) float32; the empty prompt is zeros when the model says so (`force_zeros_for_empty_prompt`)."""
    states, pooled = [], None
    for tokenizer, encoder in zip(tokenizers, encoders):
        ids = tokenizer(
            sentences, padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
        ).input_ids
        out = encoder(ids.to(encoder.device), output_hidden_states=True)
        states.append(out.hidden_states[-2].float())
        pooled = out[0].float()  # the last encoder's projected pooled embedding (text_embeds)
    assert pooled is not None
    packed = pack_pooled(torch.cat(states, dim=-1), pooled)
    if zeros_for_empty:  # as StableDiffusionXLPipeline's empty negative prompt
        empty = torch.tensor([not s.strip() for s in sentences], device=packed.device)
        packed = torch.where(empty[:, None, None], torch.zeros_like(packed), packed)
    return packed


def is_sdxl_folder(folder: Path) -> bool:
    """An SDXL diffusers folder: model_index.json names an XL pipeline, or it has a second text encoder."""
    index = folder / "model_index.json"
    if index.is_file():
        try:
            name = str(json.loads(index.read_text()).get("_class_name", ""))
        except (json.JSONDecodeError, AttributeError):
            name = ""
        if "XL" in name:
            return True
    return (folder / "text_encoder_2").is_dir()


def is_sdxl_model(model_id: str) -> bool:
    """For a folder, `is_sdxl_folder`; for a hub id, its model_index.json (from the local hub cache when offline);
    a single-file checkpoint is recognised from its weights by `load_single_file`."""
    path = Path(model_id)
    if path.is_dir():
        return is_sdxl_folder(path)
    if path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        return False
    try:
        from diffusers import DiffusionPipeline

        config = DiffusionPipeline.load_config(model_id)
    except Exception:  # no index reachable: the component loads that follow report the model as unavailable
        return False
    return "XL" in str(config.get("_class_name", "")) or "text_encoder_2" in config


def load_sdxl_modules(
    model_id: str, torch_dtype: torch.dtype, vae: str | None, load: Callable[..., Any]
) -> dict[str, Any]:
    """The modules of an SDXL diffusers folder or hub id, each loaded through `load` (which turns failures into one
    clear error). `vae`: another VAE (hub id or folder, e.g. an fp16-fixed one)."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    autoencoder = (
        load(AutoencoderKL.from_pretrained, model_id, "VAE", subfolder="vae", torch_dtype=torch_dtype)
        if vae is None
        else load(AutoencoderKL.from_pretrained, os.fspath(vae), "VAE", torch_dtype=torch_dtype)
    )
    return dict(
        unet=load(UNet2DConditionModel.from_pretrained, model_id, "UNet", subfolder="unet", torch_dtype=torch_dtype),
        vae=safe_vae(autoencoder),
        text_encoder=load(
            CLIPTextModel.from_pretrained, model_id, "text encoder", subfolder="text_encoder", torch_dtype=torch_dtype
        ),
        text_encoder_2=load(
            CLIPTextModelWithProjection.from_pretrained,
            model_id,
            "second text encoder",
            subfolder="text_encoder_2",
            torch_dtype=torch_dtype,
        ),
        tokenizer=load(CLIPTokenizer.from_pretrained, model_id, "tokenizer", subfolder="tokenizer"),
        tokenizer_2=load(CLIPTokenizer.from_pretrained, model_id, "second tokenizer", subfolder="tokenizer_2"),
        scheduler=load(DDIMScheduler.from_pretrained, model_id, "scheduler config", subfolder="scheduler"),
        force_zeros_for_empty_prompt=_force_zeros_for_empty_prompt(model_id),
    )


def safe_vae(vae: Any) -> Any:
    """The SDXL VAE overflows in float16 (black or NaN images): unless its config says it is fp16-safe
    (`force_upcast: false`, as the fp16-fixed VAEs), it runs in float32 whatever the model's dtype."""
    if vae.dtype == torch.float16 and vae.config.get("force_upcast", True):
        return vae.to(torch.float32)
    return vae


def native_size_of(folder: Path) -> int:
    """Image side in pixels at the UNet's sample size, read from a diffusers folder's configs; 1024 (SDXL base) for a
    hub id or a single file."""
    try:
        unet = json.loads((folder / "unet" / "config.json").read_text())
        vae = json.loads((folder / "vae" / "config.json").read_text())
        return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        return 1024


def _force_zeros_for_empty_prompt(model_id: str) -> bool:
    index = Path(model_id) / "model_index.json"
    if index.is_file():
        try:
            return bool(json.loads(index.read_text()).get("force_zeros_for_empty_prompt", True))
        except (json.JSONDecodeError, AttributeError):
            return True
    return True
