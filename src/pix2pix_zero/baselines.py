"""The methods the paper compares against (Table 1), on this project's components and code.

- DDIM inversion + word swap: plain DDIM inversion (no regularization), then denoising with the
  caption whose source word is swapped for the target word (no cross-attention guidance).
- SDEdit + word swap: noise the image to strength·T and denoise with the swapped caption.
- Prompt-to-prompt (word swap): DDIM inversion, then the swapped caption with the reference
  branch's cross-attention (and, early, self-attention) maps injected.
- No edit: the input through the VAE and back, what doing nothing scores on each metric.
- The target caption from fresh noise: text-to-image of the swapped caption, which keeps nothing of the input
  but shows how often the generator draws the target at all for this scene, a ceiling for "landed".

Each returns an `EditResult` like `Pix2PixZero.edit`, so benchmarks treat all methods alike.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from PIL import Image

from .api import EditOptions, EditResult, Inversion, Pix2PixZero, swap_word
from .attention import AttentionRecorder, hooked_cross_attention, is_transformer_attention_key
from .config import EditConfig, InversionConfig
from .editing import prompt_to_prompt, sample, sdedit
from .guidance import Conditioning
from .images import pil_to_tensor, tensor_to_pil


def plain_inversion_config(num_steps: int = 50) -> InversionConfig:
    """DDIM inversion without pix2pix-zero's noise regularization."""
    return InversionConfig(num_steps=num_steps, lambda_ac=0.0, lambda_kl=0.0)


def ddim_word_swap(editor: Pix2PixZero, image: Any, source: str, target: str, caption: str, num_steps: int = 50,
                   guidance_scale: float = 5.0, seed: int = 0, exact_inversion: bool = False) -> EditResult:
    """DDIM inversion + word swap: no regularization, no guidance, the empty prompt as CFG negative; with
    `exact_inversion`, Direct Inversion's correction (as PIE-Bench runs it)."""
    inversion = image if isinstance(image, Inversion) else editor.invert(image, caption, plain_inversion_config(num_steps), seed=seed)
    config = EditConfig(num_steps=num_steps, guidance_scale=guidance_scale, xa_guidance=0.0, negative_prompt="empty",
                        exact_inversion=exact_inversion)
    direction = editor.word_swap_direction(inversion.caption, source, target)
    return editor.edit(inversion, source, target, EditOptions(config=config, direction=direction))


def sdedit_word_swap(editor: Pix2PixZero, image: Any, source: str, target: str, caption: str, num_steps: int = 50,
                     strength: float = 0.75, guidance_scale: float = 7.5, seed: int = 0) -> EditResult:
    """SDEdit + word swap (Meng et al. 2022): noise to strength·T with a seeded draw, denoise with the swapped caption."""
    c = editor.components
    started = time.perf_counter()
    prepared = editor.prepare_image(image)
    latents = c.encode_image(pil_to_tensor(prepared).to(c.device))
    target_cond = _swapped_caption(editor, caption, source, target, guidance_scale)
    edited = sdedit(c.eps_model, c.schedule, latents, target_cond, num_steps, strength, torch.Generator().manual_seed(seed))
    config = {"method": "sdedit+word-swap", "strength": strength, "guidance_scale": guidance_scale, "num_steps": num_steps, "seed": seed}
    return _result(editor, edited, latents, prepared, caption, source, target, config, started)


def prompt_to_prompt_word_swap(editor: Pix2PixZero, image: Any, source: str, target: str, caption: str, num_steps: int = 50,
                               guidance_scale: float = 7.5, cross_replace: float = 0.8, self_replace: float = 0.4,
                               seed: int = 0, exact_inversion: bool = False) -> EditResult:
    """Prompt-to-prompt word swap on a plain DDIM inversion (settings from the prompt-to-prompt notebooks); with
    `exact_inversion`, Direct Inversion's correction on both branches (PIE-Bench's "Direct Inversion + P2P")."""
    c = editor.components
    started = time.perf_counter()
    inversion = image if isinstance(image, Inversion) else editor.invert(image, caption, plain_inversion_config(num_steps), seed=seed)
    caption_emb, empty = c.encode_text([inversion.caption]), c.encode_text([""])
    reference = Conditioning(cond=caption_emb, uncond=empty, scale=guidance_scale)
    target_cond = Conditioning(cond=c.encode_text([swap_word(inversion.caption, source, target)]), uncond=empty, scale=guidance_scale)
    recorder = AttentionRecorder()
    with hooked_cross_attention(c.unet, recorder, select=is_transformer_attention_key):
        edited, reconstructed = prompt_to_prompt(c.eps_model, recorder, c.schedule, inversion.x_T, reference, target_cond, num_steps,
                                                 cross_replace, self_replace,
                                                 trajectory=_trajectory_for(inversion, num_steps) if exact_inversion else None)
    config = {"method": "prompt-to-prompt", "guidance_scale": guidance_scale, "cross_replace": cross_replace,
              "self_replace": self_replace, "num_steps": num_steps, "seed": seed, "exact_inversion": exact_inversion}
    return _result(editor, edited, reconstructed, inversion.image, inversion.caption, source, target, config, started, decode_reference=True)


def _trajectory_for(inversion: Inversion, num_steps: int) -> torch.Tensor:
    if inversion.trajectory is None or inversion.config.grid != "mirror" or inversion.config.num_steps != num_steps:
        raise ValueError(f"exact inversion needs a 'mirror'-grid inversion of {num_steps} steps with its trajectory; "
                         "invert the image again")
    return inversion.trajectory


def no_edit(editor: Pix2PixZero, image: Any, source: str, target: str, caption: str) -> EditResult:
    """The input through the VAE and back: every method's edit is decoded by the same VAE, so this is what an edit
    that changes nothing scores (on ShapesWorld circle->square, an unchanged circle already overlaps the ideal square)."""
    c = editor.components
    started = time.perf_counter()
    prepared = editor.prepare_image(image)
    round_trip = tensor_to_pil(c.decode_latents(c.encode_image(pil_to_tensor(prepared).to(c.device))))[0]
    return EditResult([round_trip], round_trip, prepared, caption, [{"source": source, "target": target}],
                      {"model": c.model_id, "method": "no edit"}, {"total": time.perf_counter() - started})


def target_from_noise(editor: Pix2PixZero, image: Any, source: str, target: str, caption: str, num_steps: int = 50,
                      guidance_scale: float = 5.0, seed: int = 0) -> EditResult:
    """Text-to-image of the caption with the source word swapped, from seeded N(0, I) noise (CFG, empty negative).
    Nothing is reconstructed: the result's reconstruction is the generated image itself."""
    c = editor.components
    started = time.perf_counter()
    prepared = editor.prepare_image(image)
    side_w, side_h = (n // c.vae_scale_factor for n in prepared.size)
    x_T = torch.randn((1, c.unet.config.in_channels, side_h, side_w), generator=torch.Generator().manual_seed(seed)).to(c.device)
    target_cond = _swapped_caption(editor, caption, source, target, guidance_scale)
    generated = sample(c.eps_model, c.schedule, x_T, target_cond, num_steps)
    image_out = tensor_to_pil(c.decode_latents(generated))[0]
    config = {"model": c.model_id, "method": "target caption from noise", "guidance_scale": guidance_scale, "num_steps": num_steps,
              "seed": seed}
    return EditResult([image_out], image_out, prepared, caption, [{"source": source, "target": target}], config,
                      {"total": time.perf_counter() - started})


def _swapped_caption(editor: Pix2PixZero, caption: str, source: str, target: str, guidance_scale: float) -> Conditioning:
    """The caption with the source word swapped for the target, CFG against the empty prompt."""
    c = editor.components
    return Conditioning(cond=c.encode_text([swap_word(caption, source, target)]), uncond=c.encode_text([""]), scale=guidance_scale)


def _result(editor: Pix2PixZero, edited: torch.Tensor, reference: torch.Tensor, input_image: Image.Image, caption: str, source: str,
            target: str, config: dict[str, Any], started: float, decode_reference: bool = False) -> EditResult:
    c = editor.components
    images = tensor_to_pil(c.decode_latents(torch.cat([edited, reference]) if decode_reference else edited))
    reconstruction = images[-1] if decode_reference else tensor_to_pil(c.decode_latents(reference))[0]
    return EditResult([images[0]], reconstruction, input_image, caption, [{"source": source, "target": target}],
                      {"model": c.model_id, **config}, {"total": time.perf_counter() - started})
