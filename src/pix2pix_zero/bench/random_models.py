"""Random-weight Stable-Diffusion-architecture models for timing (compute does not depend on weight values).

Saved in the diffusers folder layout, so both this project and diffusers' pipelines load them.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import torch

SD_SCHEDULER = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                    set_alpha_to_one=False, steps_offset=1)

# block_out_channels, layers_per_block, heads, cross-attention dim, latent size, VAE channels, text layers
ARCHITECTURES: dict[str, dict[str, Any]] = {
    # A medium UNet with SD's layout and 768-d cross-attention, small enough for a CPU (37.5 M params;
    # docs/method.md#cost-notes)
    "sd-small": dict(unet=(64, 128, 256, 256), layers=2, heads=8, cross=768, latent=32, vae=(32, 64, 128, 128), text_layers=2),
    # The true SD 1.x architecture (CompVis/stable-diffusion-v1-4 configs: 859.5 M UNet params) at 512 px
    "sd-1.x": dict(unet=(320, 640, 1280, 1280), layers=2, heads=8, cross=768, latent=64, vae=(128, 256, 512, 512), text_layers=12),
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
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length,
                              pad_token="<|endoftext|>")
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
        sample_size=arch["latent"], block_out_channels=arch["unet"], layers_per_block=arch["layers"], attention_head_dim=arch["heads"],
        cross_attention_dim=arch["cross"], down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    vae = AutoencoderKL(block_out_channels=arch["vae"], down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2, sample_size=arch["latent"] * 8)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        hidden_size=arch["cross"], intermediate_size=4 * arch["cross"], num_attention_heads=12, num_hidden_layers=arch["text_layers"],
        vocab_size=len(tokenizer), max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=DDIMScheduler(**SD_SCHEDULER), safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(str(folder))
    return folder
