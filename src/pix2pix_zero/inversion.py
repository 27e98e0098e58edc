"""Regularized DDIM inversion (paper §3.1, Algorithm 1 lines 1-6): image latent -> editable noise x_T."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .config import InversionConfig
from .ddim import Schedule, ddim_step, inversion_steps
from .guidance import EpsModel
from .regularizers import regularize_eps

StepCallback = Callable[[int, int], None]  # (step index, number of steps)


@torch.no_grad()
def invert(
    model: EpsModel,
    schedule: Schedule,
    latents: Tensor,
    caption_emb: Tensor,
    cfg: InversionConfig,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
) -> Tensor:
    """DDIM inversion of `latents` (B, 4, h, w) conditioned on the caption, with ε regularized toward white noise.

    No classifier-free guidance: both of the authors' callers invert with guidance_scale=1, i.e.
    the caption embedding alone (algorithm.md §2). Returns x_T with the shape of `latents`.
    """
    return invert_trajectory(model, schedule, latents, caption_emb, cfg, generator, on_step)[-1]


@torch.no_grad()
def invert_trajectory(
    model: EpsModel,
    schedule: Schedule,
    latents: Tensor,
    caption_emb: Tensor,
    cfg: InversionConfig,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
) -> Tensor:
    """`invert`, keeping every latent on the way: (steps + 1, B, 4, h, w), z*_0 (the input latent) .. z*_T.

    Exact inversion (Direct Inversion) puts the reference branch back on these points at every edit step.
    """
    steps = inversion_steps(cfg.num_steps, schedule, cfg.grid)
    x = latents.float()
    trajectory = [x]
    for i, step in enumerate(steps):
        # ε_θ(x_t, t, c): the UNet's noise estimate for the caption at this noise level
        eps = model(x, step.t_model, caption_emb).float()
        # Make ε look like i.i.d. Gaussian noise (auto-correlation + KL gradient steps on ε, λ=20 each)
        eps = regularize_eps(eps, cfg, generator)
        # Deterministic DDIM step toward more noise
        x = ddim_step(x, eps, schedule.alpha_bar(step.t_from), schedule.alpha_bar(step.t_to))
        trajectory.append(x)
        if on_step is not None:
            on_step(i, len(steps))
    return torch.stack(trajectory)
