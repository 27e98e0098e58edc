"""Cross-attention guided editing (paper §3.2, Algorithm 1 lines 7-14): x_T -> edited latents.

The reference branch (caption only) and the edit branch (caption + Δ) run in lockstep, one
timestep loop for both, so only the current step's reference maps are ever held. The result is
identical to the authors' two-pass order (record every step, then edit) because the reference
branch never depends on the edit branch.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch import Tensor

from .config import EditConfig
from .ddim import Schedule, ddim_step, sampling_steps
from .guidance import (Conditioning, EpsModel, MapRecorder, predict_eps, xa_guidance_step, xa_guidance_step_official,
                       xa_step_scale)
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
    for i, step in enumerate(steps):
        t = step.t_model
        # 1. Reference branch: denoise with the caption and record this step's cross-attention maps M_ref
        with recorder.recording() if guided else nullcontext():
            eps_ref = predict_eps(model, x_ref, t, reference)
        ref_maps = recorder.take() if guided else {}
        # 2. Cross-attention guidance: one gradient step on the latent toward maps matching M_ref (λ_xa;
        #    with xa_loss_scale="sd512" per map element in SD-512 units, so the step transfers across models)
        step_size = cfg.xa_guidance * xa_step_scale(ref_maps, cfg.xa_loss_scale)
        x_carried, x_prompt = guidance_step(model, recorder, x, t, target, ref_maps, step_size)
        # 3. Edited noise estimate: CFG with the caption as negative prompt and caption + Δ as prompt
        eps = predict_eps(model, x_prompt, t, target, x_uncond=x_carried)
        # 4. Both branches take the same DDIM step
        ab_from, ab_to = schedule.alpha_bar(step.t_from), schedule.alpha_bar(step.t_to)
        x_ref = ddim_step(x_ref, eps_ref.float(), ab_from, ab_to)
        x = ddim_step(x_carried, eps.float(), ab_from, ab_to)
        if on_step is not None:
            on_step(i, len(steps))
    return x, x_ref


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
    x = ab.sqrt() * latents.float() + (1 - ab).sqrt() * noise
    for i, step in enumerate(steps):
        eps = predict_eps(model, x, step.t_model, target)
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
