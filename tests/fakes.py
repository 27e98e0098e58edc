"""Tiny random Stable-Diffusion-architecture models built in code, and oracle denoisers, for offline tests."""

from __future__ import annotations

from pathlib import Path

import torch

from pix2pix_zero.bench.random_models import write_clip_tokenizer

WORDS = [
    "a",
    "photo",
    "of",
    "cat",
    "dog",
    "horse",
    "zebra",
    "red",
    "blue",
    "circle",
    "square",
    "on",
    "white",
    "background",
    "the",
    "in",
    "with",
    "hat",
    "tree",
    "painting",
    "picture",
    "sitting",
    "grass",
    "an",
    "and",
]


def write_tiny_clip_tokenizer(folder: Path, words: list[str] = WORDS, max_length: int = 16) -> Path:
    return write_clip_tokenizer(folder, words, max_length)


def build_tiny_pipeline_folder(folder: Path, seed: int = 0, prediction_type: str = "epsilon") -> Path:
    """Save a tiny SD-architecture model (UNet with cross-attention at two resolutions) in the diffusers layout."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(str(write_tiny_clip_tokenizer(folder / "_tok")))
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        sample_size=16,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=16,
            intermediate_size=32,
            num_attention_heads=2,
            num_hidden_layers=2,
            vocab_size=len(tokenizer),
            max_position_embeddings=16,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            projection_dim=16,
        )
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
        prediction_type=prediction_type,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(folder))
    return folder


class ConstantEps:
    """Oracle denoiser: the same ε everywhere makes DDIM exactly invertible."""

    def __init__(self, value: float = 0.3) -> None:
        self.value, self.num_calls, self.timesteps = value, 0, []

    def __call__(self, x, t, text_emb):
        self.num_calls += 1
        self.timesteps.append(t)
        return torch.full_like(x, self.value)
