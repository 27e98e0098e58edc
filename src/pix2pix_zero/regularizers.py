"""pix2pix-zero's noise regularization for DDIM inversion (paper §3.1). Pure torch.

Inverted noise from plain DDIM is not Gaussian: it keeps the image's spatial correlations, which
makes it hard to edit. The authors nudge each predicted ε toward white noise with gradient steps
on two losses, both computed as in `src/utils/ddim_inv.py` (algorithm.md §2):
  - auto-correlation: squared correlations of ε with rolled copies of itself, over a pyramid;
  - KL: of the whole map's mean and variance to N(0, 1).
They act on ε, not on x_t, and are gentle nudges (λ=20 on means over thousands of elements).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .config import InversionConfig


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


def _roll_rows(maps: Tensor, shifts: Tensor, dim: int) -> Tensor:
    """``torch.roll(maps[i], shifts[i], dim - 1)`` for every map i at once (maps: (N, H, W))."""
    n = maps.shape[dim]
    index = (torch.arange(n, device=maps.device)[None, :] - shifts[:, None]) % n  # roll: out[j] = in[j - δ]
    index = index[:, :, None] if dim == 1 else index[:, None, :]
    return torch.gather(maps, dim, index.expand_as(maps))


def auto_corr_loss(eps: Tensor, generator: torch.Generator | None = None, min_roll: int = 1, min_size: int = 8) -> Tensor:
    """Σ over batch, channel and pyramid level of mean(n·roll(n, δ))² along H and along W.

    eps: (B, C, H, W). Each channel of each element is its own noise map; the pyramid halves it with
    average pooling down to the level whose side is <= min_size (64→32→16→8 for SD at 512 px). One
    random δ per channel, level and call; square maps use the same δ for both axes, as the authors do.
    The offsets are drawn in the authors' loop order (element, channel, level); the maps are then
    rolled all at once, which keeps the kernel count per call independent of B·C (8 rolls per level
    instead of 8·B·C), the cost that dominates inversion on a GPU.
    """
    b, c, h, w = eps.shape
    sizes = _pyramid_sizes(h, w, min_size)
    offsets = []  # [map][level] -> (δh, δw)
    for _ in range(b * c):
        per_level = []
        for lh, lw in sizes:
            dh = _roll_offset(lh, min_roll, generator)
            per_level.append((dh, dh if lh == lw else _roll_offset(lw, min_roll, generator)))
        offsets.append(per_level)
    shifts = torch.tensor(offsets, device=eps.device)  # (B·C, levels, 2)
    maps = eps.reshape(b * c, h, w)
    loss = eps.new_zeros(())
    for level in range(len(sizes)):
        if level:
            maps = F.avg_pool2d(maps[:, None], kernel_size=2)[:, 0]
        for dim in (1, 2):
            loss = loss + ((maps * _roll_rows(maps, shifts[:, level, dim - 1], dim)).mean(dim=(1, 2)) ** 2).sum()
    return loss


def kl_divergence(eps: Tensor) -> Tensor:
    """Σ over the batch of KL-style penalty var + mean² − 1 − log var of each element's whole map."""
    flat = eps.flatten(1)
    var, mean = flat.var(dim=1), flat.mean(dim=1)  # unbiased variance, as torch.var in the authors' code
    return (var + mean**2 - 1 - torch.log(var + 1e-7)).sum()


def regularize_eps(eps: Tensor, cfg: InversionConfig, generator: torch.Generator | None = None) -> Tensor:
    """num_reg_steps × (num_ac_rolls auto-correlation steps + 1 KL step) of plain gradient descent on ε."""
    eps = eps.detach().float()
    with torch.enable_grad():
        for _ in range(cfg.num_reg_steps):
            if cfg.lambda_ac > 0:
                for _ in range(cfg.num_ac_rolls):
                    var = eps.clone().requires_grad_(True)
                    loss = auto_corr_loss(var, generator, cfg.ac_min_roll, cfg.ac_min_size)
                    (grad,) = torch.autograd.grad(loss, var)
                    eps = eps - cfg.lambda_ac * grad / cfg.num_ac_rolls
            if cfg.lambda_kl > 0:
                var = eps.clone().requires_grad_(True)
                (grad,) = torch.autograd.grad(kl_divergence(var), var)
                eps = eps - cfg.lambda_kl * grad
    return eps.detach()
