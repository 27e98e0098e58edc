"""pix2pix-zero's noise regularization for DDIM inversion (paper §3.1). Pure torch.

Inverted noise from plain DDIM is not Gaussian: it keeps the image's spatial correlations, which
makes it hard to edit. The authors nudge each predicted ε toward white noise with gradient steps
on two losses, both computed as in `src/utils/ddim_inv.py` (docs/method.md#noise-regularization):
  - auto-correlation: squared correlations of ε with rolled copies of itself, over a pyramid;
  - KL: of the whole map's mean and variance to N(0, 1).
They act on ε, not on x_t, and are gentle nudges (λ=20 on means over thousands of elements). A mean's
gradient per element is 1/N of the element's term, so with `reg_loss_scale="sd512"` λ is multiplied by
N / 16384 (SD 1.x's 4×64×64 at 512 px): the authors' per-element steps on any latent size.
"""

from __future__ import annotations

import functools
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import InversionConfig
from .cuda_graphs import GraphedFunction


def _roll_offset(size: int, min_roll: int, generator: torch.Generator | None) -> int:
    high = size // 2  # authors: random.randrange(1, size // 2)
    if high <= min_roll:
        return min_roll  # tiny maps: the only offset left (never 0, which would penalize variance instead)
    return int(torch.randint(min_roll, high, (1,), generator=generator))


def _pyramid_sizes(h: int, w: int, min_size: int) -> list[tuple[int, int]]:
    """Map sizes of the auto-correlation pyramid: halve (avg-pool 2) until the side is <= min_size."""
    sizes = [(h, w)]
    while min(h, w) > min_size:
        h, w = h // 2, w // 2
        sizes.append((h, w))
    return sizes


def _roll_index(shifts: Tensor, n: int) -> Tensor:
    """Gather indices of ``torch.roll(·, δ)`` along an axis of length n for every δ in `shifts`: (..., n)."""
    return (torch.arange(n, device=shifts.device) - shifts[..., None]) % n  # roll: out[j] = in[j - δ]


def _roll_rows(maps: Tensor, index: Tensor, dim: int) -> Tensor:
    """Roll every map i of `maps` (N, H, W) along `dim` by its own offset, given as gather indices (N, n)."""
    index = index[:, :, None] if dim == 1 else index[:, None, :]
    return torch.gather(maps, dim, index.expand_as(maps))


def _roll_indices(shifts: Tensor, sizes: list[tuple[int, int]]) -> list[list[tuple[Tensor, Tensor]]]:
    """[level][axis] -> gather indices of the roll by +δ and by −δ, for shifts (..., maps, levels, 2)."""
    return [
        [
            (_roll_index(shifts[..., level, axis], n), _roll_index(-shifts[..., level, axis], n))
            for axis, n in enumerate(size)
        ]
        for level, size in enumerate(sizes)
    ]


def _draw_shifts(
    calls: int, num_maps: int, sizes: list[tuple[int, int]], min_roll: int, generator: torch.Generator | None
) -> Tensor:
    """Roll offsets of `calls` consecutive auto-correlation evaluations: (calls, maps, levels, 2) (δh, δw).

    Drawn in the authors' loop order (call, element, channel, level), so drawing them all up front gives the
    same offsets as drawing them call by call; the tensor reaches the device in one copy.
    """
    offsets = []
    for _ in range(calls):
        per_map = []
        for _ in range(num_maps):
            per_level = []
            for lh, lw in sizes:
                dh = _roll_offset(lh, min_roll, generator)
                per_level.append((dh, dh if lh == lw else _roll_offset(lw, min_roll, generator)))
            per_map.append(per_level)
        offsets.append(per_map)
    return torch.tensor(offsets)


def _pyramid(eps: Tensor, levels: int) -> list[Tensor]:
    """The noise maps (B·C, H, W) and their average-pooled halvings."""
    b, c, h, w = eps.shape
    maps = [eps.reshape(b * c, h, w)]
    for _ in range(1, levels):
        maps.append(F.avg_pool2d(maps[-1][:, None], kernel_size=2)[:, 0])
    return maps


def auto_corr_loss(
    eps: Tensor, generator: torch.Generator | None = None, min_roll: int = 1, min_size: int = 8
) -> Tensor:
    """Σ over batch, channel and pyramid level of mean(n·roll(n, δ))² along H and along W.

    eps: (B, C, H, W). Each channel of each element is its own noise map; the pyramid halves it with
    average pooling down to the level whose side is <= min_size (64→32→16→8 for SD at 512 px). One
    random δ per channel, level and call; square maps use the same δ for both axes, as the authors do.
    The maps are rolled all at once, which keeps the kernel count per call independent of B·C (8 rolls
    per level instead of 8·B·C), the cost that dominates inversion on a GPU.
    """
    b, c, h, w = eps.shape
    sizes = _pyramid_sizes(h, w, min_size)
    shifts = _draw_shifts(1, b * c, sizes, min_roll, generator)[0].to(eps.device)  # (B·C, levels, 2)
    loss = eps.new_zeros(())
    for level, maps in enumerate(_pyramid(eps, len(sizes))):
        for dim in (1, 2):
            index = _roll_index(shifts[:, level, dim - 1], maps.shape[dim])
            loss = loss + ((maps * _roll_rows(maps, index, dim)).mean(dim=(1, 2)) ** 2).sum()
    return loss


def auto_corr_grad(eps: Tensor, indices: list[list[tuple[Tensor, Tensor]]]) -> Tensor:
    """∂ auto_corr_loss / ∂ε in closed form (no autograd graph), for the roll offsets given as
    `_roll_indices` of one call's shifts (B·C, levels, 2).

    For a = mean(m · roll(m, δ)) over n pixels, ∂a²/∂m = 2a/n · (roll(m, δ) + roll(m, −δ)); a level's
    gradient reaches the level above through the adjoint of 2×2 average pooling (a quarter to each of
    the four pixels; a trailing odd row or column was dropped by the pooling and gets none).
    """
    b, c, h, w = eps.shape
    grad = None
    for level, maps in reversed(list(enumerate(_pyramid(eps, len(indices))))):
        g = None
        for dim, (forward, backward) in zip((1, 2), indices[level]):
            rolled = _roll_rows(maps, forward, dim)
            a = (maps * rolled).mean(dim=(1, 2), keepdim=True)
            term = (2 / maps[0].numel()) * a * (rolled + _roll_rows(maps, backward, dim))
            g = term if g is None else g + term
        if grad is not None:
            n, gh, gw = grad.shape
            g[:, : 2 * gh, : 2 * gw] += (
                (0.25 * grad)[:, :, None, :, None].expand(n, gh, 2, gw, 2).reshape(n, 2 * gh, 2 * gw)
            )
        grad = g
    return grad.reshape(b, c, h, w)


def kl_divergence(eps: Tensor) -> Tensor:
    """Σ over the batch of KL-style penalty var + mean² − 1 − log var of each element's whole map."""
    flat = eps.flatten(1)
    var, mean = flat.var(dim=1), flat.mean(dim=1)  # unbiased variance, as torch.var in the authors' code
    return (var + mean**2 - 1 - torch.log(var + 1e-7)).sum()


def kl_grad(eps: Tensor) -> Tensor:
    """∂ kl_divergence / ∂ε in closed form: (1 − 1/(var + 1e-7))·2(ε − mean)/(n − 1) + 2·mean/n per element."""
    flat = eps.flatten(1)
    n = flat.shape[1]
    var, mean = flat.var(dim=1, keepdim=True), flat.mean(dim=1, keepdim=True)
    grad = (1 - 1 / (var + 1e-7)) * 2 * (flat - mean) / (n - 1) + 2 * mean / n
    return grad.reshape(eps.shape)


SD512_EPS_ELEMENTS = 4 * 64 * 64  # one ε of SD 1.x at 512 px


def regularize_eps(eps: Tensor, cfg: InversionConfig, generator: torch.Generator | None = None) -> Tensor:
    """num_reg_steps × (num_ac_rolls auto-correlation steps + 1 KL step) of plain gradient descent on ε.

    The gradients are the closed forms above (tested against autograd): no graph is built, and all
    roll offsets of the call are drawn first, in the authors' order, and copied to the device at once.
    On a GPU the descent replays as one CUDA graph (cuda_graphs.py): same kernels, one launch.
    """
    eps = eps.detach().float()
    b, c, h, w = eps.shape
    if cfg.reg_loss_scale == "sd512":  # the same per-element steps as on SD 1.x at 512 px (module docstring)
        factor = c * h * w / SD512_EPS_ELEMENTS
        cfg = replace(cfg, lambda_ac=cfg.lambda_ac * factor, lambda_kl=cfg.lambda_kl * factor, reg_loss_scale="mean")
    calls = cfg.num_reg_steps * cfg.num_ac_rolls if cfg.lambda_ac > 0 else 0
    sizes = _pyramid_sizes(h, w, cfg.ac_min_size)
    shifts = _draw_shifts(calls, b * c, sizes, cfg.ac_min_roll, generator).reshape(calls, b * c, len(sizes), 2)
    return _graphed_descent(cfg)(eps, shifts.to(eps.device))


@functools.lru_cache(maxsize=8)
def _graphed_descent(cfg: InversionConfig) -> GraphedFunction:
    return GraphedFunction(functools.partial(_descend, cfg=cfg))


def _descend(eps: Tensor, shifts: Tensor, cfg: InversionConfig) -> Tensor:
    """The descent of `regularize_eps` given every call's roll offsets (calls, B·C, levels, 2): tensor ops only."""
    indices = _roll_indices(
        shifts, _pyramid_sizes(*eps.shape[-2:], cfg.ac_min_size)
    )  # (calls, maps, n) per level, axis, sign
    call = 0
    for _ in range(cfg.num_reg_steps):
        if cfg.lambda_ac > 0:
            for _ in range(cfg.num_ac_rolls):
                of_call = [[(f[call], r[call]) for f, r in level] for level in indices]
                eps = eps - cfg.lambda_ac * auto_corr_grad(eps, of_call) / cfg.num_ac_rolls
                call += 1
        if cfg.lambda_kl > 0:
            eps = eps - cfg.lambda_kl * kl_grad(eps)
    return eps
