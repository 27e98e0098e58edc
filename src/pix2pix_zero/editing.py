"""Cross-attention guided editing (paper §3.2, Algorithm 1 lines 7-14): x_T -> edited latents.

The reference branch (caption only) and the edit branch (caption + Δ) run in lockstep, one
timestep loop for both, so only the current step's reference maps are ever held. The result is
identical to the authors' two-pass order (record every step, then edit) because the reference
branch never depends on the edit branch. For the same reason the reference's next step can share
the UNet call of the edit's CFG pair (`EditConfig.fuse_reference`).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

import torch
from torch import Tensor

from .config import EditConfig
from .ddim import Schedule, Step, ddim_step, sampling_steps
from .guidance import (
    AttentionMaps,
    Branch,
    Conditioning,
    EpsModel,
    LateGuidance,
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
    trajectory: Tensor | None = None,
    mask: Tensor | AutoMask | None = None,
    structure: StructureSharer | None = None,
    late: LateGuidance | None = None,
) -> tuple[Tensor, Tensor]:
    """Denoise x_T (1, 4, h, w) once with the reference conditioning and K times with the edit conditioning.

    `target.cond` is (K, T, D): K edits of one image share one reference branch. `trajectory` (steps + 1, 1, 4, h, w)
    is the inversion's z*_0..z*_T, needed by `cfg.exact_inversion`. `mask` (1 or K, 1, h, w), 1 where the edit may
    act, or an `AutoMask` that finds it from the attention maps as the steps go. `structure` hands the reference's
    self-attention to the edit branch (`cfg.self_attention_injection`). `late` strengthens CFG and weakens
    cross-attention guidance from half the steps on for the edits of small objects (`cfg.late_guidance_factor`,
    `cfg.late_guidance_xa`). Returns (edited latents (K, 4, h, w), reconstruction latents (1, 4, h, w)).
    """
    guidance_step = xa_guidance_step_official if cfg.guidance_mode == "official" else xa_guidance_step
    steps = sampling_steps(cfg.num_steps, schedule)
    on_trajectory = _trajectory_points(trajectory, len(steps)) if cfg.exact_inversion else None
    shared = [structure is not None and i < cfg.self_attention_injection * len(steps) for i in range(len(steps))]
    auto = mask if isinstance(mask, AutoMask) else None
    x_ref = x_T.float()
    x = x_ref.expand(target.cond.shape[0], -1, -1, -1)
    calls = _Calls(
        model,
        recorder,
        structure,
        reference,
        target,
        record_ref=cfg.xa_guidance > 0 or auto is not None or (late is not None and late.needs_maps),
        record_edit=auto is not None,
    )
    eps_ref, ref_maps, edit_c, late_xa = None, {}, target, 1.0
    for i, step in enumerate(steps):
        t = step.t_model
        # 1. Reference branch: denoise with the caption and record this step's cross-attention maps M_ref
        #    (unless the previous step's shared call already did)
        if eps_ref is None:
            eps_ref, ref_maps = calls.reference(Branch(x_ref, t, reference), share=shared[i])
        # 2. Cross-attention guidance: one gradient step on the latent toward maps matching M_ref (λ_xa;
        #    with xa_loss_scale="sd512" per map element in SD-512 units, so the step transfers across models)
        step_size = cfg.xa_guidance * xa_step_scale(ref_maps, cfg.xa_loss_scale) * late_xa
        x_carried, x_prompt = guidance_step(model, recorder, x, t, target, ref_maps, step_size)
        # 2b. Late guidance: shapes are decided in the last half of the steps; an edit of a small object (by the
        #     source word's attention, or how little it has moved) takes a stronger CFG and a weaker step 2 for the rest
        if late is not None and i == len(steps) // 2:
            edit_c, late_xa = late.at_half(x_prompt, x_ref, ref_maps, edit_c)
        # 4a. The reference takes its DDIM step now: it needs nothing from the edit. Exact inversion (Direct
        #     Inversion) puts it back on the inversion's trajectory; the edit gets the same correction in 4b
        ab_from, ab_to = schedule.alpha_bar(step.t_from), schedule.alpha_bar(step.t_to)
        x_ref_stepped = ddim_step(x_ref, eps_ref.float(), ab_from, ab_to)
        x_ref = x_ref_stepped if on_trajectory is None else on_trajectory[i]
        # 3. Edited noise estimate: CFG against the negative prompt with caption + Δ as prompt, with the
        #    reference's self-attention maps in the first steps; the reference's next ε and maps (step 1 of the next
        #    iteration) ride along in the same UNet call
        fused = cfg.fuse_reference and i + 1 < len(steps)
        next_reference = Branch(x_ref, steps[i + 1].t_model, reference) if fused else None
        eps, edit_maps, eps_ref, next_maps = calls.edit(
            Branch(x_prompt, t, edit_c, x_uncond=x_carried),
            next_reference,
            share=shared[i],
            share_next=fused and shared[i + 1],
        )
        if auto is not None:
            auto.add(edit_maps, ref_maps, i, len(steps))
        ref_maps = next_maps
        # 4b. The edit takes the same DDIM step (and correction); outside the mask it follows the reference
        x = ddim_step(x_carried, eps.float(), ab_from, ab_to) + (x_ref - x_ref_stepped)
        where = auto.current() if auto is not None else mask
        if where is not None:
            x = torch.where(where.bool(), x, x_ref)
        if on_step is not None:
            on_step(i, len(steps))
    return x, x_ref


def _trajectory_points(trajectory: Tensor | None, num_steps: int) -> list[Tensor]:
    """The inversion latent each sampling step must land on: z*_{T-1}, ..., z*_0."""
    if trajectory is None or trajectory.shape[0] != num_steps + 1:
        found = "none" if trajectory is None else f"{trajectory.shape[0] - 1} steps"
        raise ValueError(
            f"exact inversion needs the inversion's trajectory of {num_steps} steps (found {found}); "
            "invert again with this version and the same number of steps"
        )
    return [trajectory[num_steps - 1 - i].float() for i in range(num_steps)]


class StructureSharer(Protocol):
    """Self-attention sharing between branches of one UNet call (attention.py implements it)."""

    def sharing(
        self, capture_last: int | None = None, inject: Tensor | None = None
    ) -> AbstractContextManager[None]: ...


class _Calls:
    """The UNet calls of one edit: which rows record maps, which capture or take the reference's self-attention."""

    def __init__(
        self,
        model: EpsModel,
        recorder: MapRecorder,
        structure: StructureSharer | None,
        reference: Conditioning,
        target: Conditioning,
        record_ref: bool,
        record_edit: bool,
    ) -> None:
        self.model, self.recorder, self.structure = model, recorder, structure
        self.record_ref, self.record_edit = record_ref, record_edit
        self.ref_rows = reference.cond.shape[0] * (2 if reference.uses_cfg else 1)
        k = target.cond.shape[0]
        self.edit_rows = k * (2 if target.uses_cfg else 1)
        # each edit row takes the reference row of its own CFG half ([negative, prompt]; a single row serves both)
        halves = [0, self.ref_rows - 1] if target.uses_cfg else [self.ref_rows - 1]
        self.source_rows = torch.tensor([h for h in halves for _ in range(k)])

    def _share(self, capture: bool, inject: bool) -> AbstractContextManager[None]:
        if self.structure is None or not (capture or inject):
            return nullcontext()
        return self.structure.sharing(self.ref_rows if capture else None, self.source_rows if inject else None)

    def reference(self, branch: Branch, share: bool) -> tuple[Tensor, AttentionMaps]:
        with self.recorder.recording() if self.record_ref else nullcontext(), self._share(capture=share, inject=False):
            eps = predict_eps_together(self.model, [branch])[0]
        return eps, self.recorder.take() if self.record_ref else {}

    def edit(
        self, branch: Branch, next_reference: Branch | None, share: bool, share_next: bool
    ) -> tuple[Tensor, AttentionMaps, Tensor | None, AttentionMaps]:
        """(edit ε, edit prompt-half maps, next reference ε, next M_ref); the reference rows come last in the batch."""
        record_ref = self.record_ref and next_reference is not None
        record = self.record_edit or record_ref
        last_rows = None if self.record_edit else self.ref_rows  # rows that are not recorded keep the fused kernel
        with self.recorder.recording(last_rows=last_rows) if record else nullcontext(), self._share(share_next, share):
            eps = predict_eps_together(self.model, [branch] + ([next_reference] if next_reference is not None else []))
        maps = self.recorder.take() if record else {}
        k = branch.x.shape[0]
        edit_maps = {n: m[self.edit_rows - k : self.edit_rows] for n, m in maps.items()} if self.record_edit else {}
        next_maps = {n: m[-self.ref_rows :] for n, m in maps.items()} if record_ref else {}
        return eps[0], edit_maps, eps[1] if next_reference is not None else None, next_maps


class AutoMask:
    """Where the edit acts, found from the cross-attention maps (prompt-to-prompt's local blend; DiffEdit and LEDITS++
    find theirs from the noise estimates), averaged over heads, layers and the steps so far, scaled to [0, 1] between
    its lowest and highest value, thresholded and widened by one latent cell. Applied from `start` of the steps on, as
    prompt-to-prompt's local blend.

    With `words` (per edit: the source word's token positions in the caption and the target word's in the edited
    caption, known when the direction comes from the caption) the response is where those words attend in the
    reference and the edit branch, prompt-to-prompt's local blend itself. Without, it is how far the edit branch's
    maps are from the reference branch's, summed over tokens: a sentence-bank direction changes every token's
    embedding, so this needs no word of the caption."""

    def __init__(
        self,
        size: tuple[int, int],
        threshold: float,
        start: float = 0.2,
        words: Sequence[tuple[Sequence[int], Sequence[int]]] | None = None,
    ) -> None:
        self.size, self.threshold, self.start, self.words = size, threshold, start, words
        self.response: Tensor | None = None  # (K, 1, h, w), summed over steps
        self.active = False

    def _response(self, edit: Tensor, reference: Tensor) -> Tensor:
        """(K, heads, HW, T) edit maps and (1, heads, HW, T) reference maps -> (K, HW)."""
        if self.words is None:
            return (edit - reference).abs().sum(-1).mean(1)
        return torch.stack(
            [
                reference[0][..., list(source)].sum(-1).mean(0) + edit[k][..., list(target)].sum(-1).mean(0)
                for k, (source, target) in enumerate(self.words)
            ]
        )

    def add(self, edit_maps: AttentionMaps, ref_maps: AttentionMaps, step: int, num_steps: int) -> None:
        per_layer = [_on_latent_grid(self._response(edit_maps[k], ref_maps[k][-1:]), self.size) for k in edit_maps]
        if not per_layer:
            raise RuntimeError("the automatic mask needs cross-attention maps; none were recorded")
        response = torch.stack(per_layer).mean(0)
        self.response = response if self.response is None else self.response + response
        self.active = step + 1 >= self.start * num_steps

    def current(self) -> Tensor | None:
        return self.mask() if self.active else None

    def mask(self) -> Tensor:
        """(K, 1, h, w) of 0/1: 1 where the edit may act."""
        if self.response is None:
            raise RuntimeError("the automatic mask has seen no step yet")
        # scaled to [0, 1] per edit (as DiffEdit): a direction shifts every token, so the maps move a little
        # everywhere and the floor of the response is far above zero (about half the peak on ShapesWorld)
        low = self.response.amin(dim=(-2, -1), keepdim=True)
        span = (self.response.amax(dim=(-2, -1), keepdim=True) - low).clamp_min(1e-12)
        hard = ((self.response - low) / span >= self.threshold).float()
        return torch.nn.functional.max_pool2d(hard, 3, stride=1, padding=1)


def _on_latent_grid(per_pixel: Tensor, size: tuple[int, int]) -> Tensor:
    """(K, HW) at a layer's resolution -> (K, 1, h, w) at the latent's (the UNet halves sides, rounding up)."""
    h, w = size
    for factor in (1, 2, 4, 8, 16, 32, 64):
        side_h, side_w = -(-h // factor), -(-w // factor)
        if side_h * side_w == per_pixel.shape[-1]:
            grid = per_pixel.reshape(-1, 1, side_h, side_w).float()
            return torch.nn.functional.interpolate(grid, size=size, mode="bilinear", align_corners=False)
    raise RuntimeError(f"a map of {per_pixel.shape[-1]} pixels does not fit a {h}x{w} latent")


# -- baselines the paper compares against (Table 1), on the same components -----------------------


@torch.no_grad()
def sdedit(
    model: EpsModel,
    schedule: Schedule,
    latents: Tensor,
    target: Conditioning,
    num_steps: int,
    strength: float,
    generator: torch.Generator | None = None,
    on_step: StepCallback | None = None,
) -> Tensor:
    """SDEdit (Meng et al., ICLR 2022): noise the image latent to t₀ = strength·T, then denoise with the target
    prompt."""
    if not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    steps = sampling_steps(num_steps, schedule)
    steps = steps[len(steps) - max(1, round(strength * len(steps))) :]  # the last strength·N steps
    ab = schedule.alpha_bar(steps[0].t_from).float()
    noise = torch.randn(latents.shape, generator=generator).to(latents.device)
    return _denoise(model, schedule, ab.sqrt() * latents.float() + (1 - ab).sqrt() * noise, steps, target, on_step)


@torch.no_grad()
def sample(
    model: EpsModel,
    schedule: Schedule,
    x_T: Tensor,
    c: Conditioning,
    num_steps: int,
    on_step: StepCallback | None = None,
) -> Tensor:
    """Plain DDIM sampling (Song et al. 2021) from x_T: text-to-image, as Stable Diffusion's pipeline does it."""
    return _denoise(model, schedule, x_T.float(), sampling_steps(num_steps, schedule), c, on_step)


def _denoise(
    model: EpsModel, schedule: Schedule, x: Tensor, steps: list[Step], c: Conditioning, on_step: StepCallback | None
) -> Tensor:
    for i, step in enumerate(steps):
        eps = predict_eps(model, x, step.t_model, c)
        x = ddim_step(x, eps.float(), schedule.alpha_bar(step.t_from), schedule.alpha_bar(step.t_to))
        if on_step is not None:
            on_step(i, len(steps))
    return x


@torch.no_grad()
def prompt_to_prompt(
    model: EpsModel,
    recorder: MapRecorder,
    schedule: Schedule,
    x_T: Tensor,
    reference: Conditioning,
    target: Conditioning,
    num_steps: int,
    cross_replace: float = 0.8,
    self_replace: float = 0.4,
    on_step: StepCallback | None = None,
    trajectory: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Prompt-to-prompt word swap (Hertz et al. 2022): during the first `cross_replace` (`self_replace`) of the steps,
    the edit branch's cross- (self-) attention maps are replaced by the reference branch's, on the prompt half.
    With the inversion's `trajectory`, exact inversion (Direct Inversion) as in `edit`.

    `recorder` must hook self- and cross-attention and support `injecting(maps)` (attention.py).
    """
    steps = sampling_steps(num_steps, schedule)
    on_trajectory = _trajectory_points(trajectory, len(steps)) if trajectory is not None else None
    x_ref, x = x_T.float(), x_T.float().expand(target.cond.shape[0], -1, -1, -1)
    for i, step in enumerate(steps):
        with recorder.recording():
            eps_ref = predict_eps(model, x_ref, step.t_model, reference)
        ref_maps = {k: m[-1:] for k, m in recorder.take().items()}  # the reference's prompt half
        keep = [
            k
            for k in ref_maps
            if (k.endswith("attn2.processor") and i < cross_replace * len(steps))
            or (k.endswith("attn1.processor") and i < self_replace * len(steps))
        ]
        prompt_rows = (
            slice(x.shape[0], None) if target.uses_cfg else slice(None)
        )  # CFG batch rows are [negative, prompt]
        with recorder.injecting({k: ref_maps[k] for k in keep}, rows=prompt_rows):
            eps = predict_eps(model, x, step.t_model, target)
        ab_from, ab_to = schedule.alpha_bar(step.t_from), schedule.alpha_bar(step.t_to)
        x_ref, x = ddim_step(x_ref, eps_ref.float(), ab_from, ab_to), ddim_step(x, eps.float(), ab_from, ab_to)
        if (
            on_trajectory is not None
        ):  # Direct Inversion: the reference back on the trajectory, the edit corrected alike
            x_ref, x = on_trajectory[i], x + (on_trajectory[i] - x_ref)
        if on_step is not None:
            on_step(i, len(steps))
    return x, x_ref
