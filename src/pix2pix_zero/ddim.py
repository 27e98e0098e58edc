"""Deterministic DDIM in both directions, driven by explicit steps. Pure torch.

A `Step` names the timestep the UNet sees (`t_model`) and the two noise levels it moves between
(`t_from` -> `t_to`, indices into ᾱ; -1 is the clean end). Writing the grid out, instead of
relying on a scheduler's internal alignment, makes the authors' grid and ours two short,
testable functions (docs/method.md#the-ddim-grid; diffusers #3436, #5145).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

CLEAN = -1  # ᾱ index of the clean end of the chain


@dataclass(frozen=True)
class Schedule:
    """The training noise schedule: ᾱ_t for t in [0, num_train_timesteps)."""

    alphas_cumprod: Tensor  # (num_train_timesteps,), float64
    clean_alpha_bar: float  # ᾱ at the clean end: 1.0, or ᾱ_0 when set_alpha_to_one=False (SD's config)
    steps_offset: int = 1  # SD's config: timesteps 981, 961, ..., 1
    prediction_type: str = "epsilon"

    @property
    def num_train_timesteps(self) -> int:
        return self.alphas_cumprod.shape[0]

    def alpha_bar(self, t: int) -> Tensor:
        return self.alphas_cumprod.new_tensor(self.clean_alpha_bar) if t == CLEAN else self.alphas_cumprod[t]

    @classmethod
    def stable_diffusion(cls) -> Schedule:
        """SD 1.x/2.x: scaled_linear β from 0.00085 to 0.012, 1000 steps, set_alpha_to_one=False."""
        betas = torch.linspace(0.00085**0.5, 0.012**0.5, 1000, dtype=torch.float32) ** 2  # as diffusers computes it
        alphas_cumprod = torch.cumprod(1 - betas, 0).double()
        return cls(alphas_cumprod, clean_alpha_bar=float(alphas_cumprod[0]))


@dataclass(frozen=True)
class Step:
    t_model: int  # timestep given to the UNet
    t_from: int  # ᾱ index of the current latent
    t_to: int  # ᾱ index of the next latent


def timesteps(num_steps: int, schedule: Schedule) -> list[int]:
    """Descending sampling timesteps with diffusers' 'leading' spacing: 981, 961, ..., 1 for SD at 50 steps."""
    stride = schedule.num_train_timesteps // num_steps
    if stride < 1:
        raise ValueError(f"num_steps={num_steps} exceeds the {schedule.num_train_timesteps} training timesteps")
    return [i * stride + schedule.steps_offset for i in reversed(range(num_steps))]


def sampling_steps(num_steps: int, schedule: Schedule) -> list[Step]:
    ts = timesteps(num_steps, schedule)
    return [Step(t, t, t_next) for t, t_next in zip(ts, ts[1:] + [CLEAN])]


def inversion_steps(num_steps: int, schedule: Schedule, grid: Literal["mirror", "official"] = "mirror") -> list[Step]:
    """Steps from clean to noisy.

    'mirror': each sampling step reversed, the UNet queried at the noisier timestep, so inversion and
    sampling use the same timesteps and a perfect ε makes them exact inverses (prompt-to-prompt's
    convention). 'official': the authors' loop over `timesteps.flip(0)[1:-1]`, ε at the less noisy
    t, moving ᾱ[t-1] -> ᾱ[t-1+stride]; for 50 steps that is 48 UNet calls ending at ᾱ[980].
    """
    if grid == "mirror":
        return [Step(s.t_model, s.t_to, s.t_from) for s in reversed(sampling_steps(num_steps, schedule))]
    if grid == "official":
        stride = schedule.num_train_timesteps // num_steps
        ascending = list(reversed(timesteps(num_steps, schedule)))[1:-1]
        return [Step(t, t - 1, t - 1 + stride) for t in ascending]
    raise ValueError(f"unknown inversion grid {grid!r}; choose 'mirror' or 'official'")


def ddim_step(x: Tensor, eps: Tensor, ab_from: Tensor, ab_to: Tensor) -> Tensor:
    """Deterministic DDIM update between two noise levels (DDIM paper Eq. 12 with η=0); works both ways."""
    x0 = (x - (1 - ab_from).sqrt() * eps) / ab_from.sqrt()
    return ab_to.sqrt() * x0 + (1 - ab_to).sqrt() * eps


def to_eps(model_output: Tensor, x: Tensor, alpha_bar: Tensor, prediction_type: str) -> Tensor:
    """Convert a UNet output to ε, so regularizers and DDIM see noise for every parametrization (SD 2.x: v)."""
    if prediction_type == "epsilon":
        return model_output
    ab = alpha_bar.to(model_output.dtype)
    if prediction_type == "v_prediction":  # v = √ᾱ ε − √(1−ᾱ) x0  ⇒  ε = √ᾱ v + √(1−ᾱ) x_t
        return ab.sqrt() * model_output + (1 - ab).sqrt() * x
    if prediction_type == "sample":  # the model predicts x0
        return (x - ab.sqrt() * model_output) / (1 - ab).sqrt()
    raise ValueError(f"unsupported prediction_type {prediction_type!r}")
