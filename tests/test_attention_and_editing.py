"""Attention processors, cross-attention guidance and the lockstep edit loop on a tiny random SD UNet."""

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from pix2pix_zero.attention import GUIDED_LAYERS, AttentionRecorder, hooked_cross_attention, is_cross_attention_key
from pix2pix_zero.components import load_components
from pix2pix_zero.config import EditConfig
from pix2pix_zero.ddim import ddim_step, sampling_steps
from pix2pix_zero.editing import edit
from pix2pix_zero.guidance import (
    Branch,
    Conditioning,
    LateGuidance,
    attention_area,
    predict_eps,
    predict_eps_together,
    xa_guidance_step,
    xa_guidance_step_official,
    xa_loss,
    xa_step_scale,
)


@pytest.fixture(scope="module")
def components(tiny_model_dir):
    return load_components(tiny_model_dir)


@pytest.fixture(scope="module")
def inputs(components):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 4, 8, 8, generator=generator)
    caption = components.encode_text(["a photo of a cat"])
    delta = 0.5 * torch.randn(caption.shape, generator=generator)
    return x, caption, delta


def _forward(components, x, emb, t=500):
    return components.eps_model(x, t, emb)


def test_recording_processor_matches_the_fused_kernel_and_records_softmax_maps(components, inputs):
    x, caption, _ = inputs
    baseline = _forward(components, x, caption)
    recorder = AttentionRecorder()
    with hooked_cross_attention(components.unet, recorder):
        not_recording = _forward(components, x, caption)
        with recorder.recording():
            recording = _forward(components, x, caption)
        maps = recorder.take()
    assert torch.equal(not_recording, baseline)  # outside recording the previous processor runs untouched
    assert torch.allclose(recording, baseline, atol=1e-5)
    cross_keys = [k for k in components.unet.attn_processors if is_cross_attention_key(k)]
    assert sorted(maps) == sorted(cross_keys) and len(maps) == 7  # down 1+1, mid 1, up 2+2
    for probs in maps.values():
        batch, heads, pixels, tokens = probs.shape
        assert (batch, tokens) == (1, caption.shape[1]) and heads >= 1 and pixels in (64, 16)
        assert torch.allclose(probs.sum(-1), torch.ones(batch, heads, pixels), atol=1e-5)


def test_only_cross_attention_is_hooked_and_processors_are_restored_after_errors(components, inputs):
    x, caption, _ = inputs
    before = dict(components.unet.attn_processors)
    recorder = AttentionRecorder()
    with pytest.raises(RuntimeError, match="boom"):
        with hooked_cross_attention(components.unet, recorder):
            during = dict(components.unet.attn_processors)
            for key, proc in during.items():
                assert (proc is before[key]) != key.endswith("attn2.processor")
            raise RuntimeError("boom")
    after = dict(components.unet.attn_processors)
    assert all(after[k] is before[k] for k in before)
    assert all(isinstance(p, AttnProcessor2_0) for p in after.values())


def test_take_fails_loudly_when_a_layer_did_not_fire(components):
    recorder = AttentionRecorder()
    with hooked_cross_attention(components.unet, recorder):
        with recorder.recording():
            pass
        with pytest.raises(RuntimeError, match="did not record"):
            recorder.take()


def test_guidance_gradient_reaches_the_latent_only(components, inputs):
    x, caption, delta = inputs
    recorder = AttentionRecorder()
    with hooked_cross_attention(components.unet, recorder):
        with recorder.recording():
            components.eps_model(x, 500, caption)
        ref_maps = recorder.take()
        same, _ = xa_guidance_step(components.eps_model, recorder, x, 500, Conditioning(cond=caption), ref_maps, 1.0)
        moved, moved_prompt = xa_guidance_step(
            components.eps_model, recorder, x, 500, Conditioning(cond=caption + delta), ref_maps, 1.0
        )
    assert torch.allclose(same, x, atol=1e-7)  # identical maps: zero loss, zero gradient
    assert not torch.allclose(moved, x) and torch.equal(moved, moved_prompt)
    assert all(p.grad is None for p in components.unet.parameters())  # weights frozen, never receive gradients


def test_official_guidance_keeps_the_negative_half(components, inputs):
    """At the first edit step the authors' carried latent does not move: its maps come from the unedited caption."""
    x, caption, delta = inputs
    recorder = AttentionRecorder()
    target = Conditioning(cond=caption + delta, uncond=caption, scale=5.0)
    with hooked_cross_attention(components.unet, recorder):
        with recorder.recording():
            components.eps_model(x, 981, caption)
        ref_maps = recorder.take()
        carried, prompt = xa_guidance_step_official(components.eps_model, recorder, x, 981, target, ref_maps, 1.0)
        edited, _ = xa_guidance_step(components.eps_model, recorder, x, 981, target, ref_maps, 1.0)
    assert torch.allclose(carried, x, atol=1e-7)
    assert not torch.allclose(prompt, x)
    assert torch.allclose(prompt - x, 0.5 * (edited - x), atol=1e-6)  # mean over the two CFG halves halves the step


def _two_pass_edit(components, x_T, reference, target, cfg):
    """The authors' order: record every step's reference maps first, then edit. Used only to check lockstep."""
    recorder = AttentionRecorder()
    steps = sampling_steps(cfg.num_steps, components.schedule)
    with hooked_cross_attention(components.unet, recorder), torch.no_grad():
        all_maps, x_ref = [], x_T
        for step in steps:
            with recorder.recording():
                eps = predict_eps(components.eps_model, x_ref, step.t_model, reference)
            all_maps.append(recorder.take())
            x_ref = ddim_step(
                x_ref, eps, components.schedule.alpha_bar(step.t_from), components.schedule.alpha_bar(step.t_to)
            )
        x = x_T
        for step, ref_maps in zip(steps, all_maps):
            step_size = cfg.xa_guidance * xa_step_scale(ref_maps, cfg.xa_loss_scale)
            x, _ = xa_guidance_step(components.eps_model, recorder, x, step.t_model, target, ref_maps, step_size)
            eps = predict_eps(components.eps_model, x, step.t_model, target)
            x = ddim_step(x, eps, components.schedule.alpha_bar(step.t_from), components.schedule.alpha_bar(step.t_to))
    return x, x_ref


def _edit(components, x_T, reference, target, cfg, late=None):
    recorder = AttentionRecorder()
    with hooked_cross_attention(components.unet, recorder):
        return edit(components.eps_model, recorder, components.schedule, x_T, reference, target, cfg, late=late)


def test_lockstep_equals_two_pass(components, inputs):
    x, caption, delta = inputs
    cfg = EditConfig(num_steps=6, xa_guidance=2.0)
    reference, target = Conditioning(cond=caption), Conditioning(cond=caption + delta, uncond=caption, scale=5.0)
    lock_x, lock_ref = _edit(components, x, reference, target, cfg)
    two_x, two_ref = _two_pass_edit(components, x, reference, target, cfg)
    assert torch.allclose(lock_ref, two_ref, atol=1e-6)
    assert torch.allclose(lock_x, two_x, atol=1e-5)


def test_zero_direction_and_zero_guidance_reproduce_the_reconstruction(components, inputs):
    x, caption, delta = inputs
    cfg = EditConfig(num_steps=8, xa_guidance=0.0)
    edited, recon = _edit(
        components,
        x,
        Conditioning(cond=caption),
        Conditioning(cond=caption + 0 * delta, uncond=caption, scale=5.0),
        cfg,
    )
    assert torch.allclose(edited, recon, atol=1e-5)
    moved, _ = _edit(
        components, x, Conditioning(cond=caption), Conditioning(cond=caption + delta, uncond=caption, scale=5.0), cfg
    )
    assert (moved - recon).abs().max() > 1e-2


def test_batched_targets_equal_separate_edits(components, inputs):
    x, caption, delta = inputs
    cfg = EditConfig(num_steps=5, xa_guidance=1.0, xa_loss_scale="sum")
    deltas = torch.cat([delta, -delta])
    both, _ = _edit(
        components, x, Conditioning(cond=caption), Conditioning(cond=caption + deltas, uncond=caption, scale=5.0), cfg
    )
    for i in range(2):
        single, _ = _edit(
            components,
            x,
            Conditioning(cond=caption),
            Conditioning(cond=caption + deltas[i : i + 1], uncond=caption, scale=5.0),
            cfg,
        )
        assert torch.allclose(both[i : i + 1], single, atol=1e-5)


def test_a_cfg_scale_per_row_equals_each_row_with_its_own_scale(components, inputs):
    x, caption, delta = inputs
    both = torch.cat([x, x.flip(-1)])
    cond = caption + torch.cat([delta, -delta])
    per_row = Conditioning(cond=cond, uncond=caption, scale=torch.tensor([3.0, 7.0]).view(-1, 1, 1, 1))
    eps = predict_eps_together(components.eps_model, [Branch(both, 500, per_row)])[0]
    for i, scale in enumerate((3.0, 7.0)):
        alone = predict_eps(components.eps_model, both[i : i + 1], 500, Conditioning(cond[i : i + 1], caption, scale))
        assert torch.allclose(eps[i : i + 1], alone, atol=1e-5)


def test_late_guidance_strengthens_only_the_edits_that_barely_moved(components, inputs):
    x, caption, delta = inputs
    cfg = EditConfig(num_steps=6, xa_guidance=0.5)
    reference = Conditioning(cond=caption)
    target = Conditioning(cond=caption + torch.cat([delta, 0.1 * delta]), uncond=caption, scale=3.0)
    plain, _ = _edit(components, x, reference, target, cfg)
    never = LateGuidance(factor=2.0, movement=0.0)
    assert torch.equal(_edit(components, x, reference, target, cfg, never)[0], plain)
    assert never.strengthened is not None and not never.strengthened.any()
    every = LateGuidance(factor=2.0, movement=1e9)
    strengthened, _ = _edit(components, x, reference, target, cfg, every)
    assert every.strengthened is not None and every.strengthened.all()
    assert ((strengthened - plain).abs().amax(dim=(1, 2, 3)) > 1e-3).all()
    # the smaller direction moves the latent less by half the steps; a threshold between the two picks it alone
    moved = every.moved
    assert moved is not None and moved[1] < moved[0]
    mixed_late = LateGuidance(factor=2.0, movement=float(moved.mean()))
    mixed, _ = _edit(components, x, reference, target, cfg, mixed_late)
    assert mixed_late.strengthened is not None and mixed_late.strengthened.tolist() == [False, True]
    assert torch.allclose(mixed[0], plain[0], atol=1e-5) and torch.allclose(mixed[1], strengthened[1], atol=1e-5)


def test_late_guidance_leaves_an_edit_without_cfg_as_it_is():
    x_edit, x_reference = torch.zeros(2, 4, 3, 3), torch.zeros(1, 4, 3, 3)
    without_cfg = Conditioning(cond=torch.zeros(2, 5, 8))
    late = LateGuidance(factor=2.0, movement=1.0)
    assert late.at_half(x_edit, x_reference, {}, without_cfg)[0] is without_cfg
    assert late.strengthened is not None and late.strengthened.tolist() == [False, False]
    assert late.small is not None and late.small.tolist() == [True, True]
    with_cfg = Conditioning(cond=torch.zeros(2, 5, 8), uncond=torch.zeros(1, 5, 8), scale=4.0)
    assert late.at_half(x_edit, x_reference, {}, with_cfg)[0].scale.flatten().tolist() == [8.0, 8.0]


def test_late_cross_attention_guidance_weakens_only_the_small_edits(components, inputs):
    x, caption, delta = inputs
    target = Conditioning(cond=caption + torch.cat([delta, 0.1 * delta]), uncond=caption, scale=3.0)
    for mode in ("edited", "official"):
        cfg = EditConfig(num_steps=6, xa_guidance=0.5, guidance_mode=mode)
        plain, _ = _edit(components, x, Conditioning(cond=caption), target, cfg)
        every = LateGuidance(factor=1.0, movement=1e9, xa_factor=0.0)
        weakened, _ = _edit(components, x, Conditioning(cond=caption), target, cfg, every)
        assert every.small is not None and every.small.all() and not every.strengthened.any()  # CFG as it was
        assert ((weakened - plain).abs().amax(dim=(1, 2, 3)) > 1e-4).all()
        # the smaller direction has moved less by half the steps: a threshold between the two weakens it alone
        assert every.moved is not None and every.moved[1] < every.moved[0]
        one = LateGuidance(factor=1.0, movement=float(every.moved.mean()), xa_factor=0.0)
        mixed, _ = _edit(components, x, Conditioning(cond=caption), target, cfg, one)
        assert one.small is not None and one.small.tolist() == [False, True]
        assert torch.allclose(mixed[0], plain[0], atol=1e-5) and torch.allclose(mixed[1], weakened[1], atol=1e-5)
    # without cross-attention guidance there is nothing to weaken
    cfg = EditConfig(num_steps=6, xa_guidance=0.0)
    unguided, _ = _edit(components, x, Conditioning(cond=caption), target, cfg)
    late = LateGuidance(factor=1.0, movement=1e9, xa_factor=0.0)
    assert torch.equal(_edit(components, x, Conditioning(cond=caption), target, cfg, late)[0], unguided)


def test_late_guidance_finds_a_small_object_by_its_words_attention_area():
    # reference maps (rows: [prompt half], heads 2, pixels, tokens 3) on a 4x4 latent: the 2x2 layer decides
    coarse = torch.full((1, 2, 4, 3), 0.1)
    coarse[..., 0, 1] = 0.9  # token 1 attends to one cell of four
    finest = torch.full((1, 2, 16, 3), 0.1)
    finest[..., :, 1] = 0.9  # ... and everywhere on the 4x4 layer, which is not read
    maps = {"down.attn2": coarse, "up.attn2": finest}
    assert attention_area(maps, [1], (4, 4)) == 0.25
    x_edit, x_reference = torch.ones(2, 4, 4, 4), torch.zeros(1, 4, 4, 4)  # moved far: not small by movement
    c = Conditioning(cond=torch.zeros(2, 5, 8), uncond=torch.zeros(1, 5, 8), scale=4.0)
    small = LateGuidance(factor=1.5, area=0.3, movement=0.5, source_tokens=[1])
    assert small.at_half(x_edit, x_reference, maps, c)[0].scale.flatten().tolist() == [6.0, 6.0]
    assert small.area_covered == 0.25
    large = LateGuidance(factor=1.5, area=0.2, movement=0.5, source_tokens=[1])
    assert large.at_half(x_edit, x_reference, maps, c)[0] is c and large.strengthened.tolist() == [False, False]
    unnamed = LateGuidance(factor=1.5, area=0.3, source_tokens=[])  # a caption without the source word
    assert unnamed.at_half(x_edit, x_reference, maps, c)[0] is c and unnamed.area_covered is None
    with pytest.raises(RuntimeError, match="no cross-attention maps of 4 pixels"):
        LateGuidance(factor=1.5, area=0.3, source_tokens=[1]).at_half(x_edit, x_reference, {"up": finest}, c)


@pytest.mark.parametrize("fuse", [True, False])
@pytest.mark.parametrize("mode,xa,calls_per_step", [("edited", 0.1, 3), ("edited", 0.0, 2), ("official", 0.1, 3)])
def test_unet_calls_per_edit_step(components, inputs, mode, xa, calls_per_step, fuse):
    """Reference forward + guidance forward/backward + CFG forward; no guidance forward when λ_xa = 0. Fused, the
    reference's next forward shares the CFG call: one call fewer per step, plus the first step's reference."""
    x, caption, delta = inputs
    before = components.eps_model.num_calls
    _edit(
        components,
        x,
        Conditioning(cond=caption),
        Conditioning(cond=caption + delta, uncond=caption, scale=5.0),
        EditConfig(num_steps=4, xa_guidance=xa, guidance_mode=mode, fuse_reference=fuse),
    )
    assert components.eps_model.num_calls - before == (1 + 4 * (calls_per_step - 1) if fuse else 4 * calls_per_step)


@pytest.mark.parametrize("mode", ["edited", "official"])
@pytest.mark.parametrize("reference_cfg", [False, True])
def test_fused_reference_call_gives_the_same_edit(components, inputs, mode, reference_cfg):
    """The reference's next step batched with the edit's CFG pair (rows at two timesteps, maps recorded from the last
    rows only) gives the edit and reconstruction of separate calls, for two targets and a CFG reference too."""
    x, caption, delta = inputs
    empty = components.encode_text([""])
    reference = Conditioning(cond=caption, uncond=empty, scale=5.0) if reference_cfg else Conditioning(cond=caption)
    target = Conditioning(cond=caption + torch.cat([delta, -delta]), uncond=caption, scale=5.0)
    runs = [
        _edit(
            components,
            x,
            reference,
            target,
            EditConfig(num_steps=5, xa_guidance=2.0, guidance_mode=mode, fuse_reference=fuse),
        )
        for fuse in (True, False)
    ]
    (fused_x, fused_ref), (alone_x, alone_ref) = runs
    for fused, alone in ((fused_ref, alone_ref), (fused_x, alone_x)):  # float rounding only: within 1e-6 of the scale
        assert (fused - alone).abs().max() <= 1e-6 * alone.abs().max()
    assert (fused_x[0] - fused_x[1]).abs().max() > 1e-2  # the two targets are different edits


def test_recording_the_last_rows_keeps_the_fused_kernel_for_the_others(components, inputs):
    x, caption, delta = inputs
    latents, embeddings = torch.cat([x, -x, 0.5 * x]), torch.cat([caption, caption + delta, caption - delta])
    recorder = AttentionRecorder()
    with hooked_cross_attention(components.unet, recorder):
        with recorder.recording():
            whole = _forward(components, latents, embeddings)
        all_maps = recorder.take()
        with recorder.recording(last_rows=1):
            split = _forward(components, latents, embeddings)
        last_maps = recorder.take()
    assert torch.allclose(split, whole, atol=1e-5)
    assert sorted(last_maps) == sorted(all_maps)
    for key, maps in last_maps.items():
        assert maps.shape[0] == 1 and torch.allclose(maps, all_maps[key][-1:], atol=1e-6)


@pytest.mark.parametrize("model_dir", ["tiny_model_dir", "tiny_vpred_model_dir"])
def test_noise_predictor_takes_one_timestep_per_row(request, model_dir, inputs):
    """Rows at different timesteps in one call give each row's ε of a call at its own timestep (v-prediction too,
    whose conversion to ε depends on the row's ᾱ)."""
    model = load_components(request.getfixturevalue(model_dir)).eps_model
    x, caption, _ = inputs
    together = model(torch.cat([x, 0.5 * x]), torch.tensor([981, 21]), torch.cat([caption, caption]))
    assert torch.allclose(together[:1], model(x, 981, caption), atol=1e-5)
    assert torch.allclose(together[1:], model(0.5 * x, 21, caption), atol=1e-5)
    assert not torch.allclose(together[:1], model(x, 21, caption), atol=1e-3)


def test_xa_loss_is_per_element_and_checks_layers():
    ref = {"a": torch.rand(1, 2, 4, 3)}
    maps = {"a": torch.cat([ref["a"], ref["a"] + 1])}
    assert torch.allclose(xa_loss(maps, ref), torch.tensor([0.0, 12.0]))
    with pytest.raises(RuntimeError, match="differ"):
        xa_loss({"b": maps["a"]}, ref)


def test_injected_maps_replace_the_computed_ones_on_the_chosen_rows(components, inputs):
    from pix2pix_zero.attention import is_transformer_attention_key

    x, caption, delta = inputs
    recorder = AttentionRecorder()
    with hooked_cross_attention(components.unet, recorder, select=is_transformer_attention_key):
        with recorder.recording():
            components.eps_model(x, 500, caption)
        ref = recorder.take()
        assert any(k.endswith("attn1.processor") for k in ref) and any(k.endswith("attn2.processor") for k in ref)
        pair_x, pair_emb = torch.cat([x, x]), torch.cat([caption, caption + delta])
        with recorder.injecting(ref, rows=slice(1, None)), recorder.recording():
            injected_eps = components.eps_model(pair_x, 500, pair_emb)
        injected = recorder.take()
        free_eps = components.eps_model(pair_x, 500, pair_emb)
    for key in ref:
        assert torch.allclose(injected[key][1:], ref[key], atol=1e-6)  # row 1 carries the reference maps
    # Every attention map of row 1 equals the reference's, and the values only differ through the text: the edit
    # survives
    assert not torch.allclose(injected_eps[1:], free_eps[1:], atol=1e-5)
    assert torch.allclose(injected_eps[:1], free_eps[:1], atol=1e-5)  # row 0 untouched


def test_sdedit_and_prompt_to_prompt_baselines_run_and_behave(components, inputs):
    from pix2pix_zero.attention import is_transformer_attention_key
    from pix2pix_zero.editing import prompt_to_prompt, sdedit

    x, caption, delta = inputs
    target = Conditioning(cond=caption + delta, uncond=torch.zeros_like(caption), scale=5.0)
    light = sdedit(components.eps_model, components.schedule, x, target, 10, 0.2, torch.Generator().manual_seed(0))
    again = sdedit(components.eps_model, components.schedule, x, target, 10, 0.2, torch.Generator().manual_seed(0))
    heavy = sdedit(components.eps_model, components.schedule, x, target, 10, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(light, again)
    assert (light - x).abs().mean() < (heavy - x).abs().mean()  # less noise, closer to the input
    with pytest.raises(ValueError, match="strength"):
        sdedit(components.eps_model, components.schedule, x, target, 10, 0.0)
    recorder = AttentionRecorder()
    reference = Conditioning(cond=caption, uncond=torch.zeros_like(caption), scale=5.0)
    with hooked_cross_attention(components.unet, recorder, select=is_transformer_attention_key):
        same, recon = prompt_to_prompt(
            components.eps_model,
            recorder,
            components.schedule,
            x,
            reference,
            Conditioning(cond=caption, uncond=torch.zeros_like(caption), scale=5.0),
            6,
        )
        swapped, _ = prompt_to_prompt(components.eps_model, recorder, components.schedule, x, reference, target, 6)
        unreplaced, _ = prompt_to_prompt(
            components.eps_model, recorder, components.schedule, x, reference, target, 6, 0.0, 0.0
        )
    assert torch.allclose(same, recon, atol=1e-5)  # the same prompt reproduces the reference branch
    assert not torch.allclose(swapped, recon, atol=1e-4)
    assert (swapped - recon).abs().mean() < (unreplaced - recon).abs().mean()  # injected maps keep it closer


def test_sampling_matches_a_diffusers_ddim_loop(components, inputs, tiny_model_dir):
    """`sample` (text-to-image) is Stable Diffusion's DDIM + CFG loop, step for step."""
    from diffusers import DDIMScheduler

    from pix2pix_zero.editing import sample

    x, caption, delta = inputs
    uncond = torch.zeros_like(caption)
    ours = sample(
        components.eps_model, components.schedule, x, Conditioning(cond=caption + delta, uncond=uncond, scale=5.0), 6
    )
    scheduler = DDIMScheduler.from_pretrained(tiny_model_dir, subfolder="scheduler")
    scheduler.set_timesteps(6)
    latents = x.clone()
    with torch.no_grad():
        for t in scheduler.timesteps:
            out = components.unet(
                torch.cat([latents, latents]), t, encoder_hidden_states=torch.cat([uncond, caption + delta])
            ).sample
            eps_u, eps_c = out.chunk(2)
            latents = scheduler.step(eps_u + 5.0 * (eps_c - eps_u), t, latents).prev_sample
    assert torch.allclose(ours, latents, atol=1e-4), (ours - latents).abs().max()
    assert not torch.allclose(
        ours, sample(components.eps_model, components.schedule, x, Conditioning(cond=caption), 6), atol=1e-3
    )


def _guidance_gradient_without_early_exit(components, recorder, x, emb, ref_maps, t=500):
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        with recorder.recording():
            components.eps_model(x, t, emb)
        (grad,) = torch.autograd.grad(xa_loss(recorder.take(), ref_maps).sum(), x)
    return grad


@pytest.mark.parametrize("layers", ["all", "encoder"])
def test_guided_forward_stops_after_the_last_guided_layer_with_the_same_gradient(components, inputs, layers):
    x, caption, delta = inputs
    recorder = AttentionRecorder()
    decoder_calls = []
    hook = components.unet.conv_out.register_forward_hook(lambda *args: decoder_calls.append(1))
    try:
        with hooked_cross_attention(components.unet, recorder, select=GUIDED_LAYERS[layers]):
            with recorder.recording():
                components.eps_model(x, 500, caption)
            ref_maps = recorder.take()
            assert len(decoder_calls) == 1  # the reference pass runs the whole UNet
            expected = _guidance_gradient_without_early_exit(components, recorder, x, caption + delta, ref_maps)
            moved, _ = xa_guidance_step(
                components.eps_model, recorder, x, 500, Conditioning(cond=caption + delta), ref_maps, 1.0
            )
    finally:
        hook.remove()
    assert len(decoder_calls) == 2  # reference + the check above; the guided forward never reached conv_out
    assert expected.abs().max() > 1e-3
    torch.testing.assert_close(x - moved, expected, rtol=1e-4, atol=1e-6)  # x − (x − g): rounding of x's size
    if layers == "encoder":
        assert sorted(ref_maps) == sorted(
            k
            for k in components.unet.attn_processors
            if k.endswith("attn2.processor") and not k.startswith("up_blocks.")
        )


def test_encoder_layer_guidance_is_a_different_edit(components, inputs):
    x, caption, delta = inputs
    results = {}
    for layers in ("all", "encoder"):
        recorder = AttentionRecorder()
        with hooked_cross_attention(components.unet, recorder, select=GUIDED_LAYERS[layers]):
            cfg = EditConfig(num_steps=4, xa_guidance=5.0, xa_layers=layers)
            results[layers], _ = edit(
                components.eps_model,
                recorder,
                components.schedule,
                x,
                Conditioning(cond=caption),
                Conditioning(cond=caption + delta),
                cfg,
            )
    assert not torch.allclose(results["all"], results["encoder"])


def test_cpu_unet_runs_channels_last_with_the_same_noise_prediction(components, inputs):
    conv = next(m for m in components.unet.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous()
    x, emb, _ = inputs
    eps_nhwc = components.eps_model(x, 501, emb)
    components.unet.to(memory_format=torch.contiguous_format)
    try:
        eps_nchw = components.eps_model(x, 501, emb)
    finally:
        components.unet.to(memory_format=torch.channels_last)
    torch.testing.assert_close(eps_nhwc, eps_nchw, rtol=1e-4, atol=1e-5)


def test_sd512_loss_scale_is_one_on_sd_at_512px_and_a_rescaled_step_elsewhere(components, inputs):
    from pix2pix_zero.guidance import SD512_XA_ELEMENTS

    # SD 1.x at 512 px: 16 cross-attention layers (down 2×64², 2×32², 2×16²; mid 8²; up 3×16², 3×32², 3×64²), 77 tokens
    sides = [64, 64, 32, 32, 16, 16, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64]
    sd_maps = {f"layer{i}": torch.empty(1, 1, side * side, 77) for i, side in enumerate(sides)}
    assert xa_step_scale(sd_maps, "sd512") == 1.0 and xa_step_scale(sd_maps, "sum") == 1.0
    half = dict(list(sd_maps.items())[:7])  # fewer, smaller maps: a larger step per unit of summed loss
    assert xa_step_scale(half, "sd512") == SD512_XA_ELEMENTS / sum(m.shape[-2] * 77 for m in half.values())
    with pytest.raises(ValueError, match="xa_loss_scale"):
        xa_step_scale(sd_maps, "mean")

    x, caption, delta = inputs
    recorder = AttentionRecorder()
    with hooked_cross_attention(components.unet, recorder):
        with recorder.recording():
            components.eps_model(x, 500, caption)
        factor = xa_step_scale(recorder.take(), "sd512")
    assert factor > 1  # the tiny UNet has far fewer map elements than SD at 512 px
    reference, target = Conditioning(cond=caption), Conditioning(cond=caption + delta, uncond=caption, scale=5.0)
    scaled, _ = _edit(
        components, x, reference, target, EditConfig(num_steps=3, xa_guidance=0.01, xa_loss_scale="sd512")
    )
    by_hand, _ = _edit(
        components, x, reference, target, EditConfig(num_steps=3, xa_guidance=0.01 * factor, xa_loss_scale="sum")
    )
    plain, _ = _edit(components, x, reference, target, EditConfig(num_steps=3, xa_guidance=0.01, xa_loss_scale="sum"))
    torch.testing.assert_close(scaled, by_hand)
    assert not torch.allclose(scaled, plain)
