"""Random-weight Stable-Diffusion-architecture models for timing (compute does not depend on weight values).

Saved in the diffusers folder layout, so both this project and diffusers' pipelines load them.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import torch

SD_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
)

# block_out_channels, layers_per_block, heads, cross-attention dim, latent size, VAE channels, text layers
ARCHITECTURES: dict[str, dict[str, Any]] = {
    # A medium UNet with SD's layout and 768-d cross-attention, small enough for a CPU (37.5 M params;
    # docs/method.md#cost-notes)
    "sd-small": dict(
        unet=(64, 128, 256, 256), layers=2, heads=8, cross=768, latent=32, vae=(32, 64, 128, 128), text_layers=2
    ),
    # The true SD 1.x architecture (CompVis/stable-diffusion-v1-4 configs: 859.5 M UNet params) at 512 px
    "sd-1.x": dict(
        unet=(320, 640, 1280, 1280), layers=2, heads=8, cross=768, latent=64, vae=(128, 256, 512, 512), text_layers=12
    ),
}


def write_clip_tokenizer(folder: Path, words: list[str], max_length: int = 77) -> Path:
    """An offline CLIP BPE tokenizer whose merges spell out `words`; every ASCII character is in the vocab."""
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab: dict[str, int] = {}
    for ch in string.ascii_lowercase + string.digits + string.punctuation:
        vocab.setdefault(ch, len(vocab))
        vocab.setdefault(ch + "</w>", len(vocab))
    merges: list[str] = []
    for word in words:
        pieces = list(word[:-1]) + [word[-1] + "</w>"]
        while len(pieces) > 1:
            merge = f"{pieces[0]} {pieces[1]}"
            if merge not in merges:
                merges.append(merge)
            pieces = [pieces[0] + pieces[1]] + pieces[2:]
            vocab.setdefault(pieces[0], len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    tokenizer = CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length, pad_token="<|endoftext|>"
    )
    tokenizer.save_pretrained(str(folder))
    return folder


def build_random_sd(folder: Path, architecture: str = "sd-small", seed: int = 0) -> Path:
    """Save a random-weight SD-architecture model (UNet, VAE, CLIP text encoder, tokenizer, DDIM scheduler)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    if (folder / "model_index.json").is_file():
        return folder
    arch = ARCHITECTURES[architecture]
    words = "a photo of cat dog horse zebra tree sitting on the grass in with painting picture and".split()
    tokenizer = CLIPTokenizer.from_pretrained(str(write_clip_tokenizer(folder / "_tokenizer_source", words)))
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=arch["latent"],
        block_out_channels=arch["unet"],
        layers_per_block=arch["layers"],
        attention_head_dim=arch["heads"],
        cross_attention_dim=arch["cross"],
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    vae = AutoencoderKL(
        block_out_channels=arch["vae"],
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        layers_per_block=2,
        sample_size=arch["latent"] * 8,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=arch["cross"],
            intermediate_size=4 * arch["cross"],
            num_attention_heads=12,
            num_hidden_layers=arch["text_layers"],
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(**SD_SCHEDULER),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(folder))
    return folder


# SDXL layouts: UNet blocks (the first without attention), transformer layers per block, heads per block, the two text
# encoders' widths (their concatenation is the cross-attention width) and layers, latent size, VAE channels
SDXL_ARCHITECTURES: dict[str, dict[str, Any]] = {
    # Offline tests: every SDXL feature (two encoders, pooled text_embeds, time ids, a block of two transformer layers)
    "sdxl-tiny": dict(
        unet=(16, 32),
        layers=1,
        transformer_layers=(1, 2),
        heads=(2, 4),
        text=(16, 16),
        text_layers=(2, 2),
        latent=8,
        vae=(8, 16),
        time_embed=8,
        max_length=16,
        groups=8,
    ),
    # A medium SDXL-layout UNet small enough for a CPU (256 px)
    "sdxl-small": dict(
        unet=(64, 128, 256),
        layers=2,
        transformer_layers=(1, 2, 4),
        heads=(2, 4, 8),
        text=(256, 512),
        text_layers=(2, 2),
        latent=32,
        vae=(32, 64, 128, 128),
        time_embed=64,
        max_length=77,
        groups=32,
    ),
    # The true SDXL base 1.0 architecture (stabilityai/stable-diffusion-xl-base-1.0 configs: 2.57 B UNet params) at
    # 1024 px
    "sdxl": dict(
        unet=(320, 640, 1280),
        layers=2,
        transformer_layers=(1, 2, 10),
        heads=(5, 10, 20),
        text=(768, 1280),
        text_layers=(12, 32),
        latent=128,
        vae=(128, 256, 512, 512),
        time_embed=256,
        max_length=77,
        groups=32,
    ),
}


def native_size(architecture: str) -> int:
    """Image side in pixels at an architecture's latent size."""
    arch = {**ARCHITECTURES, **SDXL_ARCHITECTURES}[architecture]
    return int(arch["latent"]) * 2 ** (len(arch["vae"]) - 1)


def sdxl_unet(architecture: str) -> Any:
    """A random SDXL-layout UNet (under `torch.device("meta")`, only its shapes): text_time added conditioning."""
    from diffusers import UNet2DConditionModel

    arch = SDXL_ARCHITECTURES[architecture]
    n = len(arch["unet"])
    return UNet2DConditionModel(
        sample_size=arch["latent"],
        block_out_channels=arch["unet"],
        layers_per_block=arch["layers"],
        transformer_layers_per_block=arch["transformer_layers"],
        attention_head_dim=arch["heads"],
        cross_attention_dim=sum(arch["text"]),
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=arch["time_embed"],
        projection_class_embeddings_input_dim=6 * arch["time_embed"] + arch["text"][1],
        norm_num_groups=arch["groups"],
    )


def build_random_sdxl(folder: Path, architecture: str = "sdxl-small", seed: int = 0) -> Path:
    """Save a random-weight SDXL-architecture model (UNet with text_time conditioning, VAE, CLIP-L-like and
    bigG-like-with-projection text encoders, two tokenizers, DDIM scheduler) that StableDiffusionXLPipeline loads."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionXLPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    if (folder / "model_index.json").is_file():
        return folder
    arch = SDXL_ARCHITECTURES[architecture]
    words = "a photo of cat dog horse zebra tree sitting on the grass in with painting picture and".split()
    tokenizer = CLIPTokenizer.from_pretrained(
        str(write_clip_tokenizer(folder / "_tokenizer_source", words, arch["max_length"]))
    )
    torch.manual_seed(seed)
    width_1, width_2 = arch["text"]
    unet = sdxl_unet(architecture)
    vae = AutoencoderKL(
        block_out_channels=arch["vae"],
        down_block_types=("DownEncoderBlock2D",) * len(arch["vae"]),
        up_block_types=("UpDecoderBlock2D",) * len(arch["vae"]),
        latent_channels=4,
        layers_per_block=2,
        norm_num_groups=min(arch["groups"], arch["vae"][0]),
        sample_size=native_size(architecture),
        scaling_factor=0.13025,
        force_upcast=True,
    )

    def text_config(width: int, layers: int, **extra: Any) -> Any:
        return CLIPTextConfig(
            hidden_size=width,
            intermediate_size=4 * width,
            num_attention_heads=max(1, width // 64) if width >= 64 else 2,
            num_hidden_layers=layers,
            vocab_size=len(tokenizer),
            max_position_embeddings=arch["max_length"],
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **extra,
        )

    text_encoder = CLIPTextModel(text_config(width_1, arch["text_layers"][0]))
    text_encoder_2 = CLIPTextModelWithProjection(text_config(width_2, arch["text_layers"][1], projection_dim=width_2))
    pipe = StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=DDIMScheduler(**SD_SCHEDULER),
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    pipe.save_pretrained(str(folder))
    return folder
