"""Math invariants of the DDIM grids and the inversion regularizers, with oracle denoisers."""

import pytest
import torch
from fakes import ConstantEps

from pix2pix_zero import regularizers
from pix2pix_zero.config import InversionConfig
from pix2pix_zero.ddim import CLEAN, Schedule, ddim_step, inversion_steps, sampling_steps, timesteps, to_eps
from pix2pix_zero.inversion import invert
from pix2pix_zero.regularizers import auto_corr_loss, kl_divergence, regularize_eps

SD = Schedule.stable_diffusion()
NO_REG = InversionConfig(lambda_ac=0.0, lambda_kl=0.0)


def test_sd_timesteps_and_alpha_bars_match_diffusers():
    from diffusers import DDIMScheduler

    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    scheduler.set_timesteps(50)
    assert timesteps(50, SD) == scheduler.timesteps.tolist()
    assert torch.allclose(SD.alphas_cumprod.float(), scheduler.alphas_cumprod)
    assert SD.alpha_bar(CLEAN) == pytest.approx(float(scheduler.final_alpha_cumprod))


def test_mirror_inversion_is_the_exact_reverse_of_sampling():
    sampling = sampling_steps(50, SD)
    inversion = inversion_steps(50, SD, "mirror")
    assert len(inversion) == len(sampling) == 50
    assert [(s.t_to, s.t_from) for s in reversed(sampling)] == [(s.t_from, s.t_to) for s in inversion]
    assert [s.t_model for s in inversion] == [s.t_model for s in reversed(sampling)]
    assert inversion[0].t_from == CLEAN and inversion[-1].t_to == 981


def test_official_grid_has_48_calls_offset_by_one():
    steps = inversion_steps(50, SD, "official")
    assert len(steps) == 48  # the authors' `timesteps.flip(0)[1:-1]`
    assert (steps[0].t_model, steps[0].t_from, steps[0].t_to) == (21, 20, 40)
    assert (steps[-1].t_model, steps[-1].t_from, steps[-1].t_to) == (961, 960, 980)


@pytest.mark.parametrize("grid,calls", [("mirror", 50), ("official", 48)])
def test_inversion_makes_exactly_one_model_call_per_step(grid, calls):
    model = ConstantEps()
    invert(
        model, SD, torch.randn(1, 4, 8, 8), torch.zeros(1, 3, 4), InversionConfig(grid=grid, lambda_ac=0, lambda_kl=0)
    )
    assert model.num_calls == calls


def test_ddim_invert_then_sample_round_trip_is_exact_with_an_oracle():
    x0 = torch.randn(2, 4, 8, 8, dtype=torch.float64).float()
    x_T = invert(ConstantEps(), SD, x0, torch.zeros(1, 3, 4), NO_REG)
    x = x_T
    for step in sampling_steps(50, SD):
        x = ddim_step(x, torch.full_like(x, 0.3), SD.alpha_bar(step.t_from), SD.alpha_bar(step.t_to))
    assert not torch.allclose(x_T, x0, atol=0.1)  # the chain really moved
    assert torch.allclose(x, x0, atol=1e-4)


def test_v_prediction_converts_to_the_same_eps():
    x0, eps = torch.randn(1, 4, 8, 8), torch.randn(1, 4, 8, 8)
    ab = SD.alpha_bar(500).float()
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    v = ab.sqrt() * eps - (1 - ab).sqrt() * x0
    assert torch.allclose(to_eps(v, x_t, ab, "v_prediction"), eps, atol=1e-5)
    assert torch.allclose(to_eps(x0, x_t, ab, "sample"), eps, atol=1e-4)
    with pytest.raises(ValueError, match="prediction_type"):
        to_eps(v, x_t, ab, "flow")


def test_roll_offsets_never_zero_and_cover_the_range(monkeypatch):
    drawn: list[tuple[int, int]] = []
    original = regularizers._roll_offset

    def spy(size, min_roll, generator):
        value = original(size, min_roll, generator)
        drawn.append((size, value))
        return value

    monkeypatch.setattr(regularizers, "_roll_offset", spy)
    generator = torch.Generator().manual_seed(0)
    for _ in range(50):
        auto_corr_loss(torch.randn(1, 4, 64, 64), generator)
    sizes = [s for s, _ in drawn]
    assert sizes[:4] == [64, 32, 16, 8]  # the pyramid: 4 levels per channel for a 64×64 latent
    assert len(drawn) == 50 * 4 * 4
    for size, value in drawn:
        assert 1 <= value < size // 2
    assert {v for s, v in drawn if s == 64} >= {1, 31}  # both ends of [1, 32) are reachable


def _auto_corr_loss_reference(eps, generator, min_roll=1, min_size=8):
    """The authors' loop (their src/utils/ddim_inv.py; docs/method.md#noise-regularization), one map and one roll
    at a time."""
    loss = eps.new_zeros(())
    for b in range(eps.shape[0]):
        for c in range(eps.shape[1]):
            noise = eps[b : b + 1, c : c + 1]
            while True:
                h, w = noise.shape[-2:]
                dh = regularizers._roll_offset(h, min_roll, generator)
                dw = dh if h == w else regularizers._roll_offset(w, min_roll, generator)
                loss = loss + (noise * torch.roll(noise, dh, dims=2)).mean() ** 2
                loss = loss + (noise * torch.roll(noise, dw, dims=3)).mean() ** 2
                if min(h, w) <= min_size:
                    break
                noise = torch.nn.functional.avg_pool2d(noise, kernel_size=2)
    return loss


@pytest.mark.parametrize("shape", [(1, 4, 64, 64), (2, 4, 24, 40), (1, 3, 17, 9)])
def test_batched_auto_correlation_equals_the_authors_loop(shape):
    eps = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    ours = auto_corr_loss(eps, torch.Generator().manual_seed(5))
    reference = _auto_corr_loss_reference(eps, torch.Generator().manual_seed(5))
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-9)
    (g_ours,), (g_ref,) = torch.autograd.grad(ours, eps), torch.autograd.grad(reference, eps)
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-4, atol=1e-9)


def test_auto_correlation_loss_is_larger_for_correlated_noise():
    generator = torch.Generator().manual_seed(0)
    white = torch.randn(1, 4, 32, 32, generator=generator)
    smooth = torch.nn.functional.avg_pool2d(torch.randn(1, 4, 36, 36, generator=generator), 5, stride=1) * 5
    assert auto_corr_loss(smooth, torch.Generator().manual_seed(1)) > 20 * auto_corr_loss(
        white, torch.Generator().manual_seed(1)
    )


def test_kl_is_zero_only_for_unit_gaussian_statistics():
    x = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(0))
    x = (x - x.mean()) / x.std()
    assert kl_divergence(x).abs() < 1e-5
    assert kl_divergence(0.5 * x) > 0.1 and kl_divergence(x + 1) > 0.9


def test_regularize_eps_moves_noise_toward_white_gaussian_and_is_seeded():
    generator = torch.Generator().manual_seed(0)
    eps = torch.nn.functional.avg_pool2d(torch.randn(1, 4, 20, 20, generator=generator), 5, stride=1) * 3 + 0.3
    cfg = InversionConfig()
    out_a = regularize_eps(eps, cfg, torch.Generator().manual_seed(7))
    out_b = regularize_eps(eps, cfg, torch.Generator().manual_seed(7))
    out_c = regularize_eps(eps, cfg, torch.Generator().manual_seed(8))
    assert torch.equal(out_a, out_b)
    assert not torch.equal(out_a, out_c)
    assert kl_divergence(out_a) < kl_divergence(eps)
    probe = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert auto_corr_loss(out_a, probe[0]) < auto_corr_loss(eps, probe[1])


def test_regularization_off_returns_eps_unchanged():
    eps = torch.randn(1, 4, 8, 8)
    assert torch.equal(regularize_eps(eps, NO_REG), eps)


@pytest.mark.parametrize("shape", [(1, 4, 64, 64), (2, 4, 24, 40), (1, 3, 17, 9)])
def test_closed_form_gradients_equal_autograd(shape):
    eps = torch.randn(*shape, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    sizes = regularizers._pyramid_sizes(shape[2], shape[3], 8)
    shifts = regularizers._draw_shifts(1, shape[0] * shape[1], sizes, 1, torch.Generator().manual_seed(3))[0]
    loss = auto_corr_loss(eps, torch.Generator().manual_seed(3))  # draws the same offsets
    (expected,) = torch.autograd.grad(loss, eps)
    indices = regularizers._roll_indices(shifts, sizes)
    torch.testing.assert_close(regularizers.auto_corr_grad(eps.detach(), indices), expected, rtol=1e-4, atol=1e-9)
    (expected_kl,) = torch.autograd.grad(kl_divergence(eps * 0.7 + 0.2), eps)
    torch.testing.assert_close(regularizers.kl_grad(eps.detach() * 0.7 + 0.2) * 0.7, expected_kl, rtol=1e-4, atol=1e-8)


def _regularize_with_autograd(eps, cfg, generator):
    """The authors' update loop with autograd on both losses (the previous implementation)."""
    eps = eps.detach().float()
    for _ in range(cfg.num_reg_steps):
        for _ in range(cfg.num_ac_rolls):
            var = eps.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(auto_corr_loss(var, generator, cfg.ac_min_roll, cfg.ac_min_size), var)
            eps = eps - cfg.lambda_ac * grad / cfg.num_ac_rolls
        var = eps.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(kl_divergence(var), var)
        eps = eps - cfg.lambda_kl * grad
    return eps


@pytest.mark.parametrize("shape", [(1, 4, 16, 16), (2, 4, 24, 40)])
def test_regularize_eps_equals_the_autograd_loop(shape):
    eps = (
        torch.nn.functional.avg_pool2d(
            torch.randn(shape[0], shape[1], shape[2] + 4, shape[3] + 4, generator=torch.Generator().manual_seed(0)),
            5,
            stride=1,
        )
        * 3
    )
    cfg = InversionConfig(reg_loss_scale="mean")  # the authors' losses as written
    ours = regularize_eps(eps, cfg, torch.Generator().manual_seed(11))
    reference = _regularize_with_autograd(eps, cfg, torch.Generator().manual_seed(11))
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(ours, eps, atol=1e-3)  # it did move


def test_sd512_loss_scale_keeps_the_authors_steps_per_element():
    """'sd512' is the authors' λ on SD 1.x's 4×64×64 ε and λ·N/16384 on other sizes (a mean's gradient is 1/N)."""

    def run(shape, cfg):
        eps = torch.randn(*shape, generator=torch.Generator().manual_seed(0)) * 1.5 + 0.2
        return regularize_eps(eps, cfg, torch.Generator().manual_seed(5))

    sd = (1, 4, 64, 64)
    assert torch.equal(run(sd, InversionConfig()), run(sd, InversionConfig(reg_loss_scale="mean")))
    small = (1, 4, 16, 16)  # ShapesWorld's latent: 1/16 of the elements
    scaled = run(small, InversionConfig())
    torch.testing.assert_close(
        scaled, run(small, InversionConfig(reg_loss_scale="mean", lambda_ac=20 / 16, lambda_kl=20 / 16))
    )
    assert not torch.allclose(scaled, run(small, InversionConfig(reg_loss_scale="mean")), atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_regularizer_replays_as_a_cuda_graph_with_the_eager_result():
    """On a GPU the descent is captured once and replayed: the same result as the eager kernels, for new inputs too."""
    cfg = InversionConfig()
    for seed in (0, 1):  # the second call replays the graph captured by the first
        eps = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(seed)).cuda()
        graphed = regularize_eps(eps, cfg, torch.Generator().manual_seed(seed))
        sizes = regularizers._pyramid_sizes(64, 64, cfg.ac_min_size)
        shifts = regularizers._draw_shifts(
            cfg.num_reg_steps * cfg.num_ac_rolls, 4, sizes, cfg.ac_min_roll, torch.Generator().manual_seed(seed)
        )
        eager = regularizers._descend(eps, shifts.cuda(), cfg)
        assert torch.allclose(graphed, eager, atol=1e-6) and not torch.allclose(graphed, eps, atol=1e-3)
    assert list(regularizers._graphed_descent(cfg).captured.values()) != [None]  # captured, not the eager fallback
