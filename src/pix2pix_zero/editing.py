"""Cross-attention guided editing (paper §3.2, Algorithm 1 lines 7-14): x_T -> edited latents.

The reference branch (caption only) and the edit branch (caption + Δ) run in lockstep, one
timestep loop for both, so only the current step's reference maps are ever held. The result is
identical to the authors' two-pass order (record every step, then edit) because the reference
branch never depends on the edit branch. For the same reason the reference's next step can share
the UNet call of the edit's CFG pair (`EditConfig.fuse_reference`).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import Tensor

from .config import EditConfig
from .ddim import Schedule, Step, ddim_step, sampling_steps
from .guidance import (
    AttentionMaps,
    Branch,
    Conditioning,
    EpsModel,
    MapRecorder,
    predict_eps,
    predict_eps_together,
    xa_guidance_step,
    xa_guidance_step_official,
    xa_step_scale,
)
from .inversion import StepCallback


@torch.no_grad()
def edit(
    model: EpsModel,
    recorder: MapRecorder,
    schedule: Schedule,
    x_T: Tensor,
    reference: Conditioning,
    target: Conditioning,
    cfg: EditConfig,
    on_step: StepCallback | None = None,
) -> tuple[Tensor, Tensor]:
    """Denoise x_T (1, 4, h, w) once with the reference conditioning and K times with the edit conditioning.

    `target.cond` is (K, T, D): K edits of one image share one reference branch. Returns
    (edited latents (K, 4, h, w), reconstruction latents (1, 4, h, w)).
    """
    guidance_step = xa_guidance_step_official if cfg.guidance_mode == "official" else xa_guidance_step
    steps = sampling_steps(cfg.num_steps, schedule)
    x_ref = x_T.float()
    x = x_ref.expand(target.cond.shape[0], -1, -1, -1)
    guided = cfg.xa_guidance > 0
    ref_rows = reference.cond.shape[0] * (2 if reference.uses_cfg else 1)
    eps_ref, ref_maps = None, {}
    for i, step in enumerate(steps):
        t = step.t_model
        # 1. Reference branch: denoise with the caption and record this step's cross-attention maps M_ref
        #    (unless the previous step's shared call already did)
        if eps_ref is None:
            with recorder.recording() if guided else nullcontext():
                eps_ref = predict_eps(model, x_ref, t, reference)
            ref_maps = recorder.take() if guided else {}
        # 2. Cross-attention guidance: one gradient step on the latent toward maps matching M_ref (λ_xa;
        #    with xa_loss_scale="sd512" per map element in SD-512 units, so the step transfers across models)
        step_size = cfg.xa_guidance * xa_step_scale(ref_maps, cfg.xa_loss_scale)
        x_carried, x_prompt = guidance_step(model, recorder, x, t, target, ref_maps, step_size)
        # 4a. The reference takes its DDIM step now: it needs nothing from the edit
        ab_from, ab_to = schedule.alpha_bar(step.t_from), schedule.alpha_bar(step.t_to)
        x_ref = ddim_step(x_ref, eps_ref.float(), ab_from, ab_to)
        # 3. Edited noise estimate: CFG with the caption as negative prompt and caption + Δ as prompt; the
        #    reference's next ε and maps (step 1 of the next iteration) ride along in the same UNet call
        edit_branch = Branch(x_prompt, t, target, x_uncond=x_carried)
        if cfg.fuse_reference and i + 1 < len(steps):
            eps, eps_ref, ref_maps = _edit_and_next_reference(model, recorder, edit_branch,
                                                              Branch(x_ref, steps[i + 1].t_model, reference), ref_rows, guided)
        else:
            eps, eps_ref = predict_eps_together(model, [edit_branch])[0], None
        # 4b. The edit takes the same DDIM step
        x = ddim_step(x_carried, eps.float(), ab_from, ab_to)
        if on_step is not None:
            on_step(i, len(steps))
    return x, x_ref


def _edit_and_next_reference(model: EpsModel, recorder: MapRecorder, edit_branch: Branch, next_reference: Branch,
                             ref_rows: int, guided: bool) -> tuple[Tensor, Tensor, AttentionMaps]:
    """One UNet call for the edit's CFG pair at step t and the reference at the next step; the reference rows come
    last, so the recorder keeps only their maps. Returns (edit ε, next reference ε, next M_ref)."""
    with recorder.recording(last_rows=ref_rows) if guided else nullcontext():
        eps, eps_ref = predict_eps_together(model, [edit_branch, next_reference])
    return eps, eps_ref, recorder.take() if guided else {}


# -- baselines the paper compares against (Table 1), on the same components -----------------------


@torch.no_grad()
def sdedit(model: EpsModel, schedule: Schedule, latents: Tensor, target: Conditioning, num_steps: int, strength: float,
           generator: torch.Generator | None = None, on_step: StepCallback | None = None) -> Tensor:
    """SDEdit (Meng et al., ICLR 2022): noise the image latent to t₀ = strength·T, then denoise with the target prompt."""
    if not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    steps = sampling_steps(num_steps, schedule)
    steps = steps[len(steps) - max(1, round(strength * len(steps))):]  # the last strength·N steps
    ab = schedule.alpha_bar(steps[0].t_from).float()
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    return _denoise(model, schedule, ab.sqrt() * latents.float() + (1 - ab).sqrt() * noise, steps, target, on_step)


@torch.no_grad()
def sample(model: EpsModel, schedule: Schedule, x_T: Tensor, c: Conditioning, num_steps: int,
           on_step: StepCallback | None = None) -> Tensor:
    """Plain DDIM sampling (Song et al. 2021) from x_T: text-to-image, as Stable Diffusion's pipeline does it."""
    return _denoise(model, schedule, x_T.float(), sampling_steps(num_steps, schedule), c, on_step)


def _denoise(model: EpsModel, schedule: Schedule, x: Tensor, steps: list[Step], c: Conditioning, on_step: StepCallback | None) -> Tensor:
    for i, step in enumerate(steps):
        eps = predict_eps(model, x, step.t_model, c)
        x = ddim_step(x, eps.float(), schedule.alpha_bar(step.t_from), schedule.alpha_bar(step.t_to))
        if on_step is not None:
            on_step(i, len(steps))
    return x


@torch.no_grad()
def prompt_to_prompt(model: EpsModel, recorder: MapRecorder, schedule: Schedule, x_T: Tensor, reference: Conditioning,
                     target: Conditioning, num_steps: int, cross_replace: float = 0.8, self_replace: float = 0.4,
                     on_step: StepCallback | None = None) -> tuple[Tensor, Tensor]:
    """Prompt-to-prompt word swap (Hertz et al. 2022): during the first `cross_replace` (`self_replace`) of the steps,
    the edit branch's cross- (self-) attention maps are replaced by the reference branch's, on the prompt half.

    `recorder` must hook self- and cross-attention and support `injecting(maps)` (attention.py).
    """
    steps = sampling_steps(num_steps, schedule)
    x_ref, x = x_T.float(), x_T.float().expand(target.cond.shape[0], -1, -1, -1)
    for i, step in enumerate(steps):
        with recorder.recording():
            eps_ref = predict_eps(model, x_ref, step.t_model, reference)
        ref_maps = {k: m[-1:] for k, m in recorder.take().items()}  # the reference's prompt half
        keep = [k for k in ref_maps if (k.endswith("attn2.processor") and i < cross_replace * len(steps))
                or (k.endswith("attn1.processor") and i < self_replace * len(steps))]
        prompt_rows = slice(x.shape[0], None) if target.uses_cfg else slice(None)  # CFG batch rows are [negative, prompt]
        with recorder.injecting({k: ref_maps[k] for k in keep}, rows=prompt_rows):
            eps = predict_eps(model, x, step.t_model, target)
        ab_from, ab_to = schedule.alpha_bar(step.t_from), schedule.alpha_bar(step.t_to)
        x_ref, x = ddim_step(x_ref, eps_ref.float(), ab_from, ab_to), ddim_step(x, eps.float(), ab_from, ab_to)
        if on_step is not None:
            on_step(i, len(steps))
    return x, x_ref
