"""Our `official` semantics reproduce diffusers' StableDiffusionPix2PixZeroPipeline on the same components.

With the regularizers off (the port draws roll offsets that may be 0, a documented bug, so random
draws cannot match), the port's inversion grid equals our mirror grid and its editing loop is the
authors' CFG-pair guidance: the final latents must agree to float precision.
"""

import pytest
import torch
from PIL import Image

from pix2pix_zero import EditConfig, InversionConfig, Pix2PixZero

SOURCE = ["a photo of a cat", "a cat sitting on the grass", "a painting of a cat"]
TARGET = ["a photo of a dog", "a dog sitting on the grass", "a painting of a dog"]
CAPTION = "a photo of a cat"


@pytest.mark.parametrize("xa_guidance", [0.0, 0.1])
def test_official_guidance_matches_the_diffusers_port(tiny_model_dir, cache_dir, tmp_path, xa_guidance):
    from diffusers import DDIMInverseScheduler, DDIMScheduler, StableDiffusionPix2PixZeroPipeline

    steps = 6
    image = Image.fromarray(torch.linspace(0, 255, 16 * 16 * 3).reshape(16, 16, 3).to(torch.uint8).numpy())
    pipe = StableDiffusionPix2PixZeroPipeline.from_pretrained(
        str(tiny_model_dir),
        safety_checker=None,
        feature_extractor=None,
        caption_generator=None,
        caption_processor=None,
        requires_safety_checker=False,
    )
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.inverse_scheduler = DDIMInverseScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    inverted = pipe.invert(
        CAPTION,
        image=image,
        num_inference_steps=steps,
        generator=torch.Generator().manual_seed(3),
        lambda_auto_corr=0.0,
        lambda_kl=0.0,
    ).latents
    theirs = pipe(
        CAPTION,
        source_embeds=pipe.get_embeds(SOURCE),
        target_embeds=pipe.get_embeds(TARGET),
        num_inference_steps=steps,
        guidance_scale=5.0,
        cross_attention_guidance_amount=xa_guidance,
        latents=inverted,
        negative_prompt=CAPTION,
        output_type="latent",
    ).images

    editor = Pix2PixZero.from_pretrained(
        tiny_model_dir, captioner=lambda im: CAPTION, cache_dir=cache_dir, progress=False, preset="official"
    )
    (tmp_path / "source.txt").write_text("\n".join(SOURCE))
    (tmp_path / "target.txt").write_text("\n".join(TARGET))
    inversion = editor.invert(
        image,
        caption=CAPTION,
        seed=3,
        use_cache=False,
        config=InversionConfig(num_steps=steps, grid="mirror", latent_sampling="sample", lambda_ac=0.0, lambda_kl=0.0),
    )
    assert torch.allclose(inversion.x_T, inverted, atol=1e-5)
    config = EditConfig(
        num_steps=steps, guidance_scale=5.0, xa_guidance=xa_guidance, guidance_mode="official", xa_loss_scale="sum"
    )  # the port sums the loss
    captured = {}
    original = editor.components.decode_latents

    def capture(latents):
        captured["latents"] = latents
        return original(latents)

    editor.components.decode_latents = capture
    editor.edit(inversion, str(tmp_path / "source.txt"), str(tmp_path / "target.txt"), config=config)
    ours = captured["latents"][:1]
    assert not torch.allclose(ours, inverted, atol=1e-2)  # it really denoised
    assert torch.allclose(ours, theirs, atol=1e-4), (ours - theirs).abs().max()
