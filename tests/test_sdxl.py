"""Stable Diffusion XL through the same engine, proven on tiny random SDXL components built in code."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_zero import Pix2PixZero
from pix2pix_zero.api import EditOptions
from pix2pix_zero.attention import AttentionRecorder, hooked_cross_attention
from pix2pix_zero.bench.random_models import build_random_sdxl, native_size
from pix2pix_zero.components import ModelNotAvailableError, SDXLComponents, load_components, preset_for
from pix2pix_zero.components_sdxl import pack_pooled, unpack_pooled
from pix2pix_zero.config import EditConfig, ImageConfig, InversionConfig, override
from pix2pix_zero.editing import sample
from pix2pix_zero.guidance import Conditioning, xa_guidance_step

CAPTION = "a photo of a cat"
SOURCE = ["a photo of a cat", "a cat on the grass", "a painting of a cat"]
TARGET = ["a photo of a dog", "a dog on the grass", "a painting of a dog", "a picture of a dog"]


@pytest.fixture(scope="module")
def sdxl_dir(tmp_path_factory):
    return build_random_sdxl(tmp_path_factory.mktemp("tiny-sdxl"), "sdxl-tiny")


@pytest.fixture(scope="module")
def components(sdxl_dir):
    return load_components(sdxl_dir)


@pytest.fixture(scope="module")
def pipe(sdxl_dir):
    from diffusers import StableDiffusionXLPipeline

    pipeline = StableDiffusionXLPipeline.from_pretrained(str(sdxl_dir), add_watermarker=False)
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


def _picture(width, height):
    pixels = torch.linspace(0, 255, height * width * 3).reshape(height, width, 3)
    return Image.fromarray(((pixels * 7) % 256).to(torch.uint8).numpy())


def test_an_sdxl_folder_loads_as_sdxl_with_its_presets(sdxl_dir, components):
    assert isinstance(components, SDXLComponents) and components.is_sdxl
    assert components.native_size == 16 and components.image_multiple == 4  # sample_size 8 x VAE factor 2; 2 x 2
    default, official = preset_for("default", sdxl_dir), preset_for("official", sdxl_dir)
    assert default.image.size == official.image.size == 16  # the native size: 1024 px on SDXL base
    assert native_size("sdxl") == 1024  # the true SDXL base layout
    assert (official.inversion.reg_loss_scale, official.edit.xa_loss_scale) == ("sd512", "sd512")
    assert official.edit.guidance_mode == "official"  # the rest of the authors' method is unchanged
    assert preset_for("official", None).inversion.reg_loss_scale == "mean"  # SD 1.x keeps the authors' code exactly


def test_the_full_sdxl_layout_has_70_cross_attention_layers_and_the_sd512_step_scale():
    """On SDXL base at 1024 px (shapes only, on the meta device): 10 layers at 64² and 60 at 32² pixels, 77 tokens, so
    the per-element attention step is SD 1.x's element count over SDXL's (docs/sdxl.md)."""
    from pix2pix_zero.bench.random_models import sdxl_unet
    from pix2pix_zero.guidance import xa_step_scale

    with torch.device("meta"):
        unet = sdxl_unet("sdxl")
    assert sum(p.numel() for p in unet.parameters()) == pytest.approx(2.567e9, rel=1e-3)
    keys = [k for k in unet.attn_processors if k.endswith("attn2.processor")]
    assert len(keys) == 70
    side = {"down_blocks.1": 64, "up_blocks.1": 64, "down_blocks.2": 32, "mid_block": 32, "up_blocks.0": 32}
    maps = {k: torch.empty(1, 1, side[k.split(".attentions")[0]] ** 2, 77, device="meta") for k in keys}
    assert xa_step_scale(maps, "sd512") == pytest.approx(0.263, abs=5e-4)


def test_the_pooled_vector_travels_as_one_extra_token_position():
    tokens, pooled = torch.randn(3, 5, 8), torch.randn(3, 6)
    packed = pack_pooled(tokens, pooled)
    assert packed.shape == (3, 6, 8) and torch.equal(packed[:, -1, 6:], torch.zeros(3, 2))
    back_tokens, back_pooled = unpack_pooled(packed.mean(0, keepdim=True), 6)  # linear maps commute with the packing
    assert torch.allclose(back_tokens, tokens.mean(0, keepdim=True)) and torch.allclose(
        back_pooled, pooled.mean(0, keepdim=True)
    )
    with pytest.raises(ValueError, match="wider"):
        pack_pooled(tokens, torch.randn(3, 9))


@pytest.mark.parametrize(("height", "width", "original"), [(16, 16, None), (16, 24, (40, 24))])
def test_our_sampler_matches_stable_diffusion_xl_pipeline(components, pipe, height, width, original):
    """Direction and guidance off: DDIM + CFG from the same latents and prompt, the empty negative prompt as zeros,
    any aspect ratio, and the micro-conditioning's original size."""
    steps = 5
    x_T = torch.randn((1, 4, height // 2, width // 2), generator=torch.Generator().manual_seed(0))
    kwargs = {} if original is None else {"original_size": (original[1], original[0])}  # diffusers: (height, width)
    theirs = pipe(
        CAPTION,
        height=height,
        width=width,
        num_inference_steps=steps,
        guidance_scale=5.0,
        latents=x_T.clone(),
        output_type="latent",
        **kwargs,
    ).images
    c = components
    cond = Conditioning(cond=c.encode_text([CAPTION]), uncond=c.encode_text([""]), scale=5.0)
    with c.size_conditioning(original):
        ours = sample(c.eps_model, c.schedule, x_T, cond, steps)
    assert not torch.allclose(ours, x_T, atol=1e-2)  # it really denoised
    assert torch.allclose(ours, theirs, atol=1e-4), (ours - theirs).abs().max()


def test_our_inversion_and_reconstruction_match_ddim_inverse_scheduler(sdxl_dir, components, pipe, cache_dir):
    """A plain DDIM inversion with diffusers' DDIMInverseScheduler on the same UNet, with the input image's original
    size as micro-conditioning; then the reconstruction from x_T with the caption."""
    from diffusers import DDIMInverseScheduler

    steps = 6
    editor = Pix2PixZero(components, captioner=lambda im: CAPTION, cache_dir=cache_dir, progress=False)
    inversion = editor.invert(
        _picture(48, 32),
        caption=CAPTION,
        use_cache=False,
        image_config=ImageConfig(size=24),
        config=InversionConfig(num_steps=steps, grid="mirror", latent_sampling="mean", lambda_ac=0.0, lambda_kl=0.0),
    )
    assert inversion.image.size == (24, 16) and inversion.original_size == (48, 32)  # the long side given, aspect kept

    prompt, _, pooled, _ = pipe.encode_prompt(CAPTION, do_classifier_free_guidance=False)
    time_ids = torch.tensor([[32.0, 48.0, 0.0, 0.0, 16.0, 24.0]])  # original (h, w), crop top-left, target (h, w)
    inverse = DDIMInverseScheduler.from_config(pipe.scheduler.config)
    inverse.set_timesteps(steps)
    x = inversion.latents.clone()
    with torch.no_grad():
        for t in inverse.timesteps:
            eps = pipe.unet(
                x, t, encoder_hidden_states=prompt, added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}
            ).sample
            x = inverse.step(eps, t, x).prev_sample
    assert not torch.allclose(x, inversion.latents, atol=1e-2)
    assert torch.allclose(inversion.x_T, x, atol=1e-4), (inversion.x_T - x).abs().max()

    reconstruction = pipe(
        prompt_embeds=prompt,
        pooled_prompt_embeds=pooled,
        height=16,
        width=24,
        num_inference_steps=steps,
        guidance_scale=1.0,
        latents=inversion.x_T.clone(),
        original_size=(32, 48),
        output_type="latent",
    ).images
    with components.size_conditioning(inversion.original_size):
        ours = sample(
            components.eps_model,
            components.schedule,
            inversion.x_T,
            Conditioning(cond=components.encode_text([CAPTION])),
            steps,
        )
    assert torch.allclose(ours, reconstruction, atol=1e-4), (ours - reconstruction).abs().max()


def test_the_recorder_sees_every_sdxl_cross_attention_layer_and_guidance_moves_the_latent(components):
    c = components
    cross = {k for k in c.unet.attn_processors if k.endswith("attn2.processor")}
    assert any(".transformer_blocks.1." in k for k in cross)  # a transformer block with several layers
    assert any(k.startswith("mid_block.") for k in cross) and any(k.startswith("up_blocks.") for k in cross)
    x = torch.randn((1, 4, 6, 8), generator=torch.Generator().manual_seed(1))
    caption = c.encode_text([CAPTION])
    recorder = AttentionRecorder()
    with hooked_cross_attention(c.unet, recorder):
        with recorder.recording():
            c.eps_model(x, 500, caption)
        maps = recorder.take()
        assert set(maps) == cross
        tokens = c.tokenizer.model_max_length
        assert all(
            m.shape[-1] == tokens for m in maps.values()
        )  # the UNet attends to the tokens, never the pooled slot
        target = Conditioning(cond=caption + 0.5 * c.encode_text(["a photo of a dog"]))
        moved, _ = xa_guidance_step(c.eps_model, recorder, x, 500, target, maps, step_size=0.1)
    assert (moved - x).abs().max() > 1e-6 and torch.isfinite(moved).all()


def test_the_direction_is_the_mean_difference_of_both_encoders_pooled_included(components, cache_dir, tmp_path):
    (tmp_path / "source.txt").write_text("\n".join(SOURCE))
    (tmp_path / "target.txt").write_text("\n".join(TARGET))
    editor = Pix2PixZero(components, captioner=lambda im: CAPTION, cache_dir=cache_dir, progress=False)
    direction = editor.direction(str(tmp_path / "source.txt"), str(tmp_path / "target.txt"))

    def embed(sentences):  # written out from the two encoders, independently of components_sdxl
        states, pooled = [], None
        for tokenizer, encoder in (
            (components.tokenizer, components.text_encoder),
            (components.tokenizer_2, components.text_encoder_2),
        ):
            ids = tokenizer(
                sentences,
                padding="max_length",
                max_length=tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            ).input_ids
            with torch.no_grad():
                out = encoder(ids, output_hidden_states=True)
            states.append(out.hidden_states[-2])
            pooled = getattr(out, "text_embeds", pooled)
        return torch.cat(states, dim=-1).mean(0), pooled.mean(0)

    (source_tokens, source_pooled), (target_tokens, target_pooled) = embed(SOURCE), embed(TARGET)
    tokens, pooled = unpack_pooled(direction, components.pooled_dim)
    assert direction.shape == (1, components.tokenizer.model_max_length + 1, 32)
    assert torch.allclose(tokens[0], target_tokens - source_tokens, atol=1e-5)
    assert torch.allclose(pooled[0], target_pooled - source_pooled, atol=1e-5)
    assert pooled.abs().max() > 1e-4  # the pooled direction is not empty


def test_an_sdxl_edit_end_to_end_keeps_its_size_conditioning(sdxl_dir, cache_dir, tmp_path):
    (tmp_path / "source.txt").write_text("\n".join(SOURCE))
    (tmp_path / "target.txt").write_text("\n".join(TARGET))
    editor = Pix2PixZero.from_pretrained(sdxl_dir, captioner=lambda im: CAPTION, cache_dir=cache_dir, progress=False)
    assert editor.preset.image.size == 16
    image = _picture(48, 32)
    config = EditConfig(num_steps=3, xa_guidance=0.1)
    inversion = editor.invert(image, config=InversionConfig(num_steps=3), image_config=ImageConfig(size=16))
    assert inversion.original_size == (48, 32)
    inversion.save(tmp_path / "inv.safetensors")
    assert type(inversion).load(tmp_path / "inv.safetensors").original_size == (48, 32)
    result = editor.edit(
        inversion, str(tmp_path / "source.txt"), str(tmp_path / "target.txt"), EditOptions(config=config)
    )
    assert result.image.size == (16, 12)
    pixels = torch.from_numpy(np.asarray(result.image, dtype=np.float32))
    assert pixels.std() > 0  # not a blank image
    generated = editor.generate_and_edit(
        CAPTION, str(tmp_path / "source.txt"), str(tmp_path / "target.txt"), config=config
    )
    assert generated.image.size == (16, 16)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_sdxl_gives_finite_images(sdxl_dir, cache_dir, tmp_path, dtype):
    """Both half types run on the CPU; the VAE (force_upcast) stays in float32, as diffusers decodes SDXL."""
    (tmp_path / "source.txt").write_text("\n".join(SOURCE))
    (tmp_path / "target.txt").write_text("\n".join(TARGET))
    editor = Pix2PixZero.from_pretrained(
        sdxl_dir, dtype=dtype, captioner=lambda im: CAPTION, cache_dir=cache_dir, progress=False
    )
    c = editor.components
    assert c.unet.dtype == c.text_encoder_2.dtype == dtype
    assert c.vae.dtype == (torch.float32 if dtype == torch.float16 else dtype)
    edited, reconstructed, _ = editor._run_edit(
        editor.invert(_picture(16, 16), config=InversionConfig(num_steps=3)).x_T,
        Conditioning(cond=c.encode_text([CAPTION])),
        Conditioning(
            cond=c.encode_text([CAPTION])
            + editor.direction(str(tmp_path / "source.txt"), str(tmp_path / "target.txt")),
            uncond=c.encode_text([CAPTION]),
            scale=5.0,
        ),
        EditConfig(num_steps=3, xa_guidance=0.1),
    )
    images = c.decode_latents(torch.cat([edited, reconstructed]))
    assert torch.isfinite(edited).all() and torch.isfinite(images).all()


def test_an_fp16_safe_vae_given_with_vae_stays_in_half_precision(sdxl_dir, tmp_path):
    from diffusers import AutoencoderKL

    fixed = AutoencoderKL.from_pretrained(str(sdxl_dir / "vae"))
    fixed.register_to_config(force_upcast=False)
    fixed.save_pretrained(str(tmp_path / "vae-fp16-fix"))
    c = load_components(sdxl_dir, dtype="float16", vae=tmp_path / "vae-fp16-fix")
    assert c.vae.dtype == torch.float16
    assert json.loads((tmp_path / "vae-fp16-fix" / "config.json").read_text())["force_upcast"] is False


def test_a_single_file_checkpoint_that_cannot_be_converted_is_one_clear_error(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "model.safetensors"
    save_file({"weight": torch.zeros(2)}, str(path))
    with pytest.raises(ModelNotAvailableError, match="model.safetensors") as error:
        load_components(path)
    assert "save_pretrained" in str(error.value) and "hf download" not in str(error.value)


def test_presets_command_shows_the_sdxl_values(sdxl_dir):
    from click.testing import CliRunner

    from pix2pix_zero.cli import main

    out = CliRunner().invoke(main, ["presets", "--json", "-m", str(sdxl_dir)])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.output)
    assert shown["default"]["image"]["size"] == 16 and shown["official"]["edit"]["xa_loss_scale"] == "sd512"


FAST = ["--steps", "3", "--num-reg-steps", "1", "--num-ac-rolls", "1", "-q"]


def test_every_command_runs_on_sdxl(sdxl_dir, cache_dir, tmp_path):
    """edit, invert, generate, direction and batch all load through Pix2PixZero.from_pretrained."""
    from click.testing import CliRunner

    from pix2pix_zero.cli import main
    from pix2pix_zero.images import read_png_metadata

    def run(*args):
        out = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert out.exit_code == 0, out.output
        return out

    photo = tmp_path / "kitty.png"
    _picture(48, 32).save(photo)
    model = ["-m", sdxl_dir]
    run("edit", photo, "-s", "cat", "-t", "dog", "--caption", CAPTION, "-o", tmp_path / "edit", *model, *FAST)
    meta = read_png_metadata(tmp_path / "edit" / "kitty.edit-dog.png")
    assert Image.open(tmp_path / "edit" / "kitty.edit-dog.png").size == (16, 12)  # native long side, aspect kept
    assert meta["image_config"]["size"] == 16 and meta["model"] == str(sdxl_dir) and meta["original_size"] == [48, 32]
    run("invert", photo, "--caption", CAPTION, "-o", tmp_path / "kitty.safetensors", *model, *FAST)
    assert (tmp_path / "kitty.safetensors").is_file()
    run("generate", "-p", CAPTION, "-s", "cat", "-t", "dog", "-o", tmp_path / "gen", *model, "--steps", "3", "-q")
    assert any(p.name.endswith(".png") for p in (tmp_path / "gen").iterdir())
    run("direction", "build", "-s", "cat", "-t", "dog", "-o", tmp_path / "cat-dog.safetensors", *model, "-q")
    assert (tmp_path / "cat-dog.safetensors").is_file()
    manifest = tmp_path / "items.jsonl"
    manifest.write_text(json.dumps({"image": photo.name, "caption": CAPTION}) + "\n")  # relative to the manifest
    run("batch", manifest, "-s", "cat", "-t", "dog", "-o", tmp_path / "batch", *model, *FAST)
    assert any(p.name.endswith("edit-dog.png") for p in (tmp_path / "batch").rglob("*.png"))


def test_the_web_app_edits_with_an_sdxl_model(sdxl_dir, cache_dir, tmp_path):
    from pix2pix_zero.ui.app import EditorApp

    editor = Pix2PixZero.from_pretrained(sdxl_dir, captioner=lambda im: CAPTION, cache_dir=cache_dir, progress=False)
    photo = tmp_path / "kitty.png"
    _picture(48, 32).save(photo)
    app = EditorApp(editor, output_root=tmp_path / "outputs")
    input_png, recon_png, gallery, caption, *_ = app.run_edit(
        str(photo), "", "cat", ["dog"], 0.1, 1.0, 3, 5.0, 0, progress=lambda *a, **k: None
    )
    assert caption == CAPTION and Image.open(gallery[0][0]).size == (16, 12)


def test_bench_speed_compares_sdxl_with_ledits_xl_whichever_way_the_ratio_falls(sdxl_dir):
    from pix2pix_zero.bench.speed import LEDITS_XL, _is_sdxl, summarize

    assert _is_sdxl(str(sdxl_dir))
    stage = {
        "invert_s": 2.0,
        "edit_s": 8.0,
        "total_s": 10.0,
        "invert_peak_mib": 100.0,
        "edit_peak_mib": 200.0,
        "total_peak_mib": 200.0,
    }
    rows = [
        {"model": "sdxl-small", "implementation": LEDITS_XL, "targets": 1, **stage},
        {
            "model": "sdxl-small",
            "implementation": "pix2pix-zero",
            "targets": 1,
            **stage,
            "edit_s": 32.0,
            "total_s": 34.0,
        },
    ]
    (summary,) = summarize(rows)
    assert summary["edit_speedup"] == pytest.approx(0.25) and summary["total_speedup"] == pytest.approx(10 / 34)


@pytest.mark.parametrize("preset", ["official", "default"])
def test_both_presets_edit_on_sdxl(sdxl_dir, cache_dir, tmp_path, preset):
    (tmp_path / "source.txt").write_text("\n".join(SOURCE))
    (tmp_path / "target.txt").write_text("\n".join(TARGET))
    editor = Pix2PixZero.from_pretrained(
        sdxl_dir, captioner=lambda im: CAPTION, cache_dir=cache_dir, progress=False, preset=preset
    )
    options = EditOptions(
        config=override(editor.preset.edit, num_steps=3, xa_layers="encoder"),
        inversion=override(editor.preset.inversion, num_steps=3),
    )
    result = editor.edit(_picture(32, 32), str(tmp_path / "source.txt"), str(tmp_path / "target.txt"), options)
    assert result.config["preset"] == preset and result.config["edit_config"]["xa_loss_scale"] == "sd512"
    assert result.image.size == (16, 16) and result.image.tobytes() != result.reconstruction.tobytes()


def test_exact_inversion_self_attention_injection_and_an_auto_mask_run_on_sdxl(sdxl_dir, cache_dir, tmp_path):
    """The quality options apply on SDXL too: with exact inversion and no direction, the edit branch reproduces the
    input latent, and injection with the auto mask gives a finite edit."""
    (tmp_path / "source.txt").write_text("\n".join(SOURCE))
    (tmp_path / "target.txt").write_text("\n".join(TARGET))
    editor = Pix2PixZero.from_pretrained(sdxl_dir, captioner=lambda im: CAPTION, cache_dir=cache_dir, progress=False)
    inversion = editor.invert(_picture(32, 24), config=override(editor.preset.inversion, num_steps=3), use_cache=False)
    source, target = str(tmp_path / "source.txt"), str(tmp_path / "target.txt")
    config = override(
        editor.preset.edit, num_steps=3, exact_inversion=True, self_attention_injection=0.5, xa_guidance=0.1
    )
    result = editor.edit(inversion, source, target, EditOptions(config=config, mask="auto"))
    assert result.image.size == (16, 12) and result.edits[0]["mask"] == "auto"
    assert np.isfinite(np.asarray(result.image, dtype=np.float32)).all()
    exact = override(config, strength=0.0, xa_guidance=0.0, self_attention_injection=0.0)
    captured = {}
    original = editor.components.decode_latents

    def capture(latents):
        captured["latents"] = latents
        return original(latents)

    editor.components.decode_latents = capture
    editor.edit(inversion, source, target, EditOptions(config=exact))
    assert torch.allclose(captured["latents"][0], inversion.latents[0], atol=1e-4)
