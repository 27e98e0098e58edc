"""Classifier-free guidance and cross-attention guidance (paper §3.2). Pure torch.

The CFG batch layout is a named value (`Conditioning`), never a magic slice: "negative prompt =
source caption" is `Conditioning(cond=caption + Δ, uncond=caption, scale=5)`.

Attention maps arrive as {layer key: (B, heads, HW, T)} from a `MapRecorder` (attention.py); this
module does not know how they are captured.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import Tensor

AttentionMaps = dict[str, Tensor]  # layer key -> (B, heads, HW, T) softmax probabilities


class EpsModel(Protocol):
    """The UNet seen as a noise predictor: (x (B,4,h,w), t, text_emb (B,T,D)) -> ε (B,4,h,w).

    t is one timestep for the whole batch, or a (B,) tensor of one timestep per row.
    """

    def __call__(self, x: Tensor, t: int | Tensor, text_emb: Tensor) -> Tensor: ...


class MapRecorder(Protocol):
    def recording(
        self, stop_when_complete: bool = False, last_rows: int | None = None
    ) -> AbstractContextManager[None]: ...
    def take(self) -> AttentionMaps: ...


class MapsComplete(Exception):
    """Raised inside a UNet forward once every hooked layer has recorded its map (`recording(stop_when_complete=True)`):
    the guidance needs only the maps, so the rest of the forward would be thrown away."""


@dataclass(frozen=True)
class Conditioning:
    """Text conditioning of one denoising branch, with optional classifier-free guidance."""

    cond: Tensor  # (B, T, D) prompt embedding (for edits: caption + Δ)
    uncond: Tensor | None = None  # (B or 1, T, D) negative prompt embedding; None = no CFG
    scale: float | Tensor = 1.0  # or (B, 1, 1, 1): one scale per edit (`LateGuidance`)

    @property
    def uses_cfg(self) -> bool:
        return self.uncond is not None and (isinstance(self.scale, Tensor) or self.scale != 1.0)


@dataclass(frozen=True)
class Branch:
    """One denoising branch's share of a UNet call: its latent, timestep and conditioning."""

    x: Tensor  # (B, 4, h, w)
    t: int
    c: Conditioning
    x_uncond: Tensor | None = None  # the latent the negative half sees, if not x (the authors' CFG-pair guidance)

    def rows(self) -> tuple[Tensor, Tensor]:
        """(latents, text embeddings) of the batch rows; with CFG, [negative half, prompt half]."""
        if not self.c.uses_cfg:
            return self.x, self.c.cond
        assert self.c.uncond is not None
        x_u = self.x if self.x_uncond is None else self.x_uncond
        return torch.cat([x_u, self.x]), torch.cat([self.c.uncond.expand(self.x.shape[0], -1, -1), self.c.cond])


def predict_eps_together(model: EpsModel, branches: list[Branch]) -> list[Tensor]:
    """Each branch's ε (with CFG: ε_u + s·(ε_c − ε_u)) from one batched UNet call, in the order given.

    Rows keep their own timestep, so branches at different steps of the chain can share a call.
    """
    latents, embeddings = zip(*(b.rows() for b in branches))
    sizes = [len(rows) for rows in latents]
    per_row = [b.t for b, n in zip(branches, sizes) for _ in range(n)]
    t: int | Tensor = per_row[0] if len(set(per_row)) == 1 else torch.tensor(per_row)
    out = model(torch.cat(latents), t, torch.cat(embeddings))
    eps = []
    for branch, chunk in zip(branches, out.split(sizes)):
        if branch.c.uses_cfg:
            eps_u, eps_c = chunk.chunk(2)
            scale = branch.c.scale.to(chunk) if isinstance(branch.c.scale, Tensor) else branch.c.scale
            chunk = eps_u + scale * (eps_c - eps_u)
        eps.append(chunk)
    return eps


def predict_eps(model: EpsModel, x: Tensor, t: int, c: Conditioning, x_uncond: Tensor | None = None) -> Tensor:
    """ε of one branch, with CFG's two halves in one batched UNet call (see `Branch`)."""
    return predict_eps_together(model, [Branch(x, t, c, x_uncond)])[0]


class LateGuidance:
    """Guidance that changes at half the steps for the edits that are small by then.

    Shapes are decided late: on ShapesWorld a small circle becomes a square only if CFG is strong in the last half of
    the steps, and strong CFG throughout draws every other shape further from the ideal edit (guidance that grows
    over the steps: Wang et al. 2024, "Analysis of Classifier-Free Guidance Weight Schedulers";
    docs/quality-local-edits.md); cross-attention guidance holds a small object's outline along with its maps. At
    half the steps an edit is small when the source word's attention covers less than `area` of the image
    (`source_tokens`: its positions in the caption) or its latent has moved less than `movement` from the
    reference's; for the rest of the steps its CFG scale is multiplied by `factor` (without CFG there is no scale to
    strengthen) and its cross-attention guidance step by `xa_factor`. `area_covered`, `moved`, `small` and
    `strengthened` record what was found.
    """

    def __init__(
        self,
        factor: float,
        area: float = 0.0,
        movement: float = 0.0,
        source_tokens: Sequence[int] = (),
        xa_factor: float = 1.0,
    ) -> None:
        self.factor, self.area, self.movement, self.source_tokens = factor, area, movement, list(source_tokens)
        self.xa_factor = xa_factor
        self.area_covered: float | None = None
        self.moved: Tensor | None = None
        self.small: Tensor | None = None
        self.strengthened: Tensor | None = None

    @property
    def needs_maps(self) -> bool:
        return self.area > 0 and bool(self.source_tokens)

    def at_half(
        self, x_edit: Tensor, x_reference: Tensor, ref_maps: AttentionMaps, c: Conditioning
    ) -> tuple[Conditioning, Tensor]:
        """The edit branch's conditioning and the (K, 1, 1, 1) factor on its cross-attention guidance step for the
        second half of the steps, from the (K, 4, h, w) edit and (1, 4, h, w) reference latents and the reference's
        maps at half the steps."""
        self.moved = (x_edit.float() - x_reference.float()).abs().mean(dim=(1, 2, 3))
        small = self.moved < self.movement
        if self.needs_maps:
            self.area_covered = attention_area(ref_maps, self.source_tokens, tuple(x_edit.shape[-2:]))
            small = small | (self.area_covered < self.area)
        self.small = small
        self.strengthened = small & c.uses_cfg & (self.factor != 1)
        xa_step = torch.where(small, self.xa_factor, 1.0).view(-1, 1, 1, 1).to(x_edit.device)
        if not bool(self.strengthened.any()):
            return c, xa_step
        factor = torch.where(self.strengthened, self.factor, 1.0).view(-1, 1, 1, 1)
        return replace(c, scale=c.scale * factor.to(x_edit.device)), xa_step


def attention_area(maps: AttentionMaps, tokens: Sequence[int], latent_size: tuple[int, int]) -> float:
    """The fraction of the image where `tokens`' attention (prompt half, mean over heads and layers) is at least half
    its peak, on the layers at half the latent's resolution: coarse enough that an object's map is one blob, fine
    enough to tell a small object from a medium one (on ShapesWorld the finest and the coarsest layers do not)."""
    h, w = latent_size
    cells = -(-h // 2) * -(-w // 2)
    at_level = [m[-1][..., list(tokens)].sum(-1).mean(0) for m in maps.values() if m.shape[-2] == cells]
    if not at_level:
        raise RuntimeError(f"no cross-attention maps of {cells} pixels were recorded to measure the object's area")
    response = torch.stack(at_level).float().mean(0)
    return float((response >= 0.5 * response.max()).float().mean())


def xa_loss(maps: AttentionMaps, ref_maps: AttentionMaps) -> Tensor:
    """Per-element L2 distance to the reference maps: Σ_layers Σ_{pixels, tokens} (M − M_ref)², mean over heads.

    This is the authors' formula (both implementations); returns (B,) so batched edits stay independent.
    Reference maps broadcast over the batch.
    """
    if maps.keys() != ref_maps.keys():
        raise RuntimeError(f"attention layers differ from the reference: {sorted(maps.keys() ^ ref_maps.keys())}")
    return sum(((maps[k] - ref_maps[k]) ** 2).sum(dim=(-2, -1)).mean(dim=-1) for k in maps)  # type: ignore[return-value]


# Σ over SD 1.x's 16 cross-attention layers of their pixels at 512 px (64²·5 + 32²·5 + 16²·5 + 8²), times 77 tokens
SD512_XA_ELEMENTS = (64 * 64 * 5 + 32 * 32 * 5 + 16 * 16 * 5 + 8 * 8) * 77


def xa_step_scale(ref_maps: AttentionMaps, loss_scale: str) -> float:
    """Factor on the guidance step for `EditConfig.xa_loss_scale`: 1 for 'sum'; for 'sd512', SD 1.x's element count
    at 512 px over this model's (pixels × tokens summed over the guided layers), i.e. a per-element loss in SD units."""
    if loss_scale == "sum":
        return 1.0
    if loss_scale != "sd512":
        raise ValueError(f"unknown xa_loss_scale {loss_scale!r}; choose 'sum' or 'sd512'")
    elements = sum(m.shape[-2] * m.shape[-1] for m in ref_maps.values())
    return SD512_XA_ELEMENTS / elements if elements else 1.0


def _grad_of_maps_loss(
    model: EpsModel, recorder: MapRecorder, x: Tensor, t: int, text_emb: Tensor, ref_maps: AttentionMaps
) -> Tensor:
    """∂/∂x of Σ_batch xa_loss: one forward with recorded maps, one backward to the latent only (weights frozen)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        with recorder.recording(stop_when_complete=True):
            try:
                model(x, t, text_emb)  # run only to record this step's maps, with the graph
            except MapsComplete:
                pass  # stopped after the last guided layer: its ε would be discarded anyway
        loss = xa_loss(recorder.take(), ref_maps).sum()
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def xa_guidance_step(
    model: EpsModel,
    recorder: MapRecorder,
    x: Tensor,
    t: int,
    target: Conditioning,
    ref_maps: AttentionMaps,
    step_size: float | Tensor,
) -> tuple[Tensor, Tensor]:
    """Guidance as the paper writes it: x ← x − λ_xa ∇_x ‖M(x, c_edit) − M_ref‖².

    `step_size` is λ_xa, or one per edit (K, 1, 1, 1). Returns (carried latent, latent the prompt half sees); here
    both are the moved x.
    """
    if _no_step(step_size):
        return x, x
    ref_cond = {k: m[-1:] for k, m in ref_maps.items()}  # the reference's prompt half
    x = x - step_size * _grad_of_maps_loss(model, recorder, x, t, target.cond, ref_cond)
    return x, x


def xa_guidance_step_official(
    model: EpsModel,
    recorder: MapRecorder,
    x: Tensor,
    t: int,
    target: Conditioning,
    ref_maps: AttentionMaps,
    step_size: float | Tensor,
) -> tuple[Tensor, Tensor]:
    """The authors' guidance: SGD on the CFG-doubled latent [x, x] with prompts [negative, caption + Δ].

    The loss averages both halves; the UNet does not mix batch rows, so the negative half moves by
    its own maps only. The authors then carry the *negative* half forward (`x_in.chunk(2)[0]`), while
    the prompt half's latent is used only for this step's conditional ε (docs/method.md#the-guidance-step).
    """
    if _no_step(step_size) or target.uncond is None:
        return xa_guidance_step(model, recorder, x, t, target, ref_maps, step_size)
    k = x.shape[0]
    pair_emb = torch.cat([target.uncond.expand(k, -1, -1), target.cond])
    ref_pair = {
        n: torch.cat([m[:1].expand(k, *m.shape[1:]), m[-1:].expand(k, *m.shape[1:])]) for n, m in ref_maps.items()
    }
    # mean over the 2 CFG halves (the authors' .mean(0) over batch·heads) = 0.5 × per-half loss
    grad = 0.5 * _grad_of_maps_loss(model, recorder, torch.cat([x, x]), t, pair_emb, ref_pair)
    pair_step = torch.cat([step_size, step_size]) if isinstance(step_size, Tensor) else step_size
    x_negative, x_prompt = (torch.cat([x, x]) - pair_step * grad).chunk(2)
    return x_negative, x_prompt


def _no_step(step_size: float | Tensor) -> bool:
    """Whether a guidance step of this size (λ_xa, or one per edit) moves nothing: then no gradient is taken."""
    return bool((torch.as_tensor(step_size) == 0).all())
