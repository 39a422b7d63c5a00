"""Tests for neural_memory.gumbel: noise, (hard) Gumbel-softmax, schedules, gradient estimators."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from neural_memory.gumbel import (
    ExponentialDecay,
    exact_expected_gradient,
    exponential_decay,
    gumbel_from_uniform,
    gumbel_range,
    gumbel_softmax,
    gumbel_softmax_from_noise,
    one_hot_argmax,
    sample_gumbel,
    score_function_gradients,
    straight_through,
    straight_through_gradients,
    validate_tau,
)

BAD_TAUS = [0.0, -1.0, float("nan"), float("inf"), torch.tensor(0.0), torch.tensor([1.0, -2.0]),
            torch.tensor(float("nan")), "1.0", None, True]


# -- noise -----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_gumbel_from_uniform_is_finite_at_zero_and_one(dtype):
    u = torch.tensor([0.0, 1.0, 0.5, 1e-45, 1.0 - 1e-12], dtype=dtype)
    g = gumbel_from_uniform(u)
    assert torch.isfinite(g).all()
    lo, hi = gumbel_range(dtype)
    assert g.min().item() == pytest.approx(lo) and g.max().item() == pytest.approx(hi)
    assert g[2].item() == pytest.approx(-math.log(-math.log(0.5)), rel=1e-3)


def test_gumbel_range_float32_values():
    lo, hi = gumbel_range(torch.float32)
    assert lo == pytest.approx(-math.log(-math.log(torch.finfo(torch.float32).tiny)), rel=1e-6)
    assert -4.5 < lo < -4.4 and 15.9 < hi < 16.0


def test_sample_gumbel_uses_clamped_uniforms(monkeypatch):
    # Force the uniform draw to be exactly 0 and 1: the noise must still be finite.
    def fake_rand(shape, generator=None, dtype=None, device=None):
        out = torch.zeros(shape, dtype=dtype, device=device)
        out.view(-1)[::2] = 1.0
        return out

    monkeypatch.setattr(torch, "rand", fake_rand)
    g = sample_gumbel((3, 4))
    assert torch.isfinite(g).all()
    assert set(g.unique().tolist()) == set(gumbel_range(torch.float32))


def test_sample_gumbel_shape_dtype_device_and_generator():
    like = torch.zeros(2, 3, dtype=torch.float64)
    g = sample_gumbel(like)
    assert g.shape == (2, 3) and g.dtype == torch.float64
    assert sample_gumbel((5,), dtype=torch.float16).dtype == torch.float16
    assert sample_gumbel(torch.zeros(4, dtype=torch.long)).dtype == torch.get_default_dtype()
    a = sample_gumbel((7,), generator=torch.Generator().manual_seed(3))
    b = sample_gumbel((7,), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    with pytest.raises(ValueError, match="floating-point dtype"):
        sample_gumbel((2,), dtype=torch.long)
    with pytest.raises(ValueError, match="shape"):
        sample_gumbel("abc")


def test_sample_gumbel_matches_the_gumbel_distribution():
    g = sample_gumbel((200_000,), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert g.mean().item() == pytest.approx(0.5772156649, abs=0.01)  # Euler-Mascheroni
    assert g.var().item() == pytest.approx(math.pi**2 / 6, rel=0.02)
    ks = stats.kstest(g[:20_000].numpy(), stats.gumbel_r.cdf)
    assert ks.pvalue > 0.01


# -- temperature ---------------------------------------------------------------------------


@pytest.mark.parametrize("tau", BAD_TAUS, ids=repr)
def test_bad_tau_raises(tau):
    with pytest.raises(ValueError, match="tau"):
        validate_tau(tau)
    with pytest.raises(ValueError, match="tau"):
        gumbel_softmax(torch.zeros(2, 3), tau=tau)


def test_good_tau_passes():
    assert validate_tau(0.5) == 0.5
    assert validate_tau(2) == 2
    assert validate_tau(np.float32(0.25)) == np.float32(0.25)
    with pytest.raises(ValueError, match="tau"):
        validate_tau(np.float64(-1.0))
    t = torch.tensor([0.1, 1.0])
    assert validate_tau(t) is t


def test_exponential_decay_values_and_validation():
    assert exponential_decay(0, tau0=1.0, rate=0.01, tau_min=0.5) == 1.0
    assert exponential_decay(10, tau0=1.0, rate=0.01, tau_min=0.1) == pytest.approx(math.exp(-0.1))
    assert exponential_decay(10_000, tau0=1.0, rate=0.01, tau_min=0.5) == 0.5
    sched = ExponentialDecay(tau0=2.0, rate=0.1, tau_min=0.3)
    values = [sched(t) for t in range(0, 100, 5)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert values[-1] == 0.3
    with pytest.raises(AttributeError):
        sched.tau0 = 1.0  # frozen
    for kwargs in [dict(tau0=0.0), dict(tau_min=-1.0), dict(rate=-0.1), dict(rate=float("nan")),
                   dict(tau0=0.5, tau_min=1.0)]:
        with pytest.raises(ValueError):
            ExponentialDecay(**kwargs)
    for step in [-1, float("nan"), "3"]:
        with pytest.raises(ValueError, match="step"):
            sched(step)


# -- Gumbel-softmax ------------------------------------------------------------------------


def test_one_hot_argmax_and_straight_through_forward_exact():
    y = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]])
    expected = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert torch.equal(one_hot_argmax(y), expected)
    assert torch.equal(straight_through(y), expected)
    assert torch.equal(one_hot_argmax(y.T, dim=0), expected.T)


def test_soft_sample_matches_formula_and_lies_on_simplex():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, generator=gen)
    noise = sample_gumbel(logits, generator=gen)
    y = gumbel_softmax_from_noise(logits, noise, tau=0.7)
    expected = torch.exp((logits + noise) / 0.7)
    torch.testing.assert_close(y, expected / expected.sum(-1, keepdim=True))
    torch.testing.assert_close(y.sum(-1), torch.ones(4))


def test_generator_makes_samples_reproducible():
    logits = torch.randn(3, 5)
    a = gumbel_softmax(logits, generator=torch.Generator().manual_seed(1))
    b = gumbel_softmax(logits, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)


@pytest.mark.parametrize("shape,dim", [((5,), -1), ((4, 5), -1), ((2, 3, 5), -1), ((5, 4), 0),
                                       ((2, 5, 3), 1), ((2, 3, 5), 2), ((2, 5, 3), -2)])
def test_hard_sample_is_exactly_one_hot_for_any_shape_and_dim(shape, dim):
    logits = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    y = gumbel_softmax(logits, tau=0.5, hard=True, dim=dim)
    assert y.shape == logits.shape
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(y.sum(dim), torch.ones_like(y.sum(dim)))


def test_hard_forward_equals_argmax_of_soft_sample_and_gradients_equal_soft():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(8, 5, generator=gen, requires_grad=True)
    noise = sample_gumbel(logits, generator=gen)
    w = torch.randn(8, 5, generator=gen)
    y_soft = gumbel_softmax_from_noise(logits, noise, tau=0.5, hard=False)
    y_hard = gumbel_softmax_from_noise(logits, noise, tau=0.5, hard=True)
    assert torch.equal(y_hard, one_hot_argmax(y_soft.detach()))
    (g_soft,) = torch.autograd.grad((w * y_soft).sum(), logits)
    (g_hard,) = torch.autograd.grad((w * y_hard).sum(), logits)
    torch.testing.assert_close(g_hard, g_soft, rtol=0, atol=0)
    assert g_hard.abs().sum() > 0


def test_hard_samples_follow_softmax_probabilities_chi_square():
    logits = torch.tensor([1.0, 0.0, -1.0, 2.0, 0.5])
    n = 50_000
    y = gumbel_softmax(logits.expand(n, -1), tau=1.0, hard=True,
                       generator=torch.Generator().manual_seed(0))
    counts = y.sum(0)
    expected = F.softmax(logits, -1) * n
    chi2 = stats.chisquare(counts.numpy(), expected.numpy())
    assert chi2.pvalue > 0.001, chi2


@pytest.mark.parametrize("scale", [1e4, -1e4])
@pytest.mark.parametrize("tau", [1e-3, 1.0])
def test_extreme_logits_and_tiny_tau_stay_finite(scale, tau):
    logits = (torch.tensor([[1.0, -1.0, 0.5], [0.0, 0.0, 0.0]]) * scale).requires_grad_(True)
    for hard in (False, True):
        y = gumbel_softmax(logits, tau=tau, hard=hard, generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(y).all()
        (g,) = torch.autograd.grad((y * torch.arange(3.0)).sum(), logits)
        assert torch.isfinite(g).all()


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="scalar"):
        gumbel_softmax(torch.tensor(1.0))
    with pytest.raises(ValueError, match="dim=2"):
        gumbel_softmax(torch.zeros(2, 3), dim=2)
    with pytest.raises(ValueError, match="noise must have the shape"):
        gumbel_softmax_from_noise(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="floating-point"):
        gumbel_softmax(torch.zeros(2, 3, dtype=torch.long))


def test_agrees_with_torch_gumbel_softmax_given_the_same_noise():
    # F.gumbel_softmax draws g = -log(E), E ~ Exp(1), from the global generator; reproduce that noise.
    logits = torch.randn(6, 4, generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    w = torch.arange(24.0).reshape(6, 4)
    for hard in (False, True):
        torch.manual_seed(123)
        y_torch = F.gumbel_softmax(logits, tau=0.3, hard=hard)
        torch.manual_seed(123)
        noise = -torch.empty_like(logits).exponential_().log()
        y_ours = gumbel_softmax_from_noise(logits, noise, tau=0.3, hard=hard)
        torch.testing.assert_close(y_ours, y_torch)
        (g_torch,) = torch.autograd.grad((w * y_torch).sum(), logits)
        (g_ours,) = torch.autograd.grad((w * y_ours).sum(), logits)
        torch.testing.assert_close(g_ours, g_torch)


# -- gradient estimators -------------------------------------------------------------------


def test_exact_expected_gradient_matches_autograd():
    theta = torch.tensor([0.3, -1.0, 2.0, 0.0], requires_grad=True)
    reward = torch.tensor([1.0, 3.0, -2.0, 0.5])
    (g,) = torch.autograd.grad((F.softmax(theta, -1) * reward).sum(), theta)
    torch.testing.assert_close(exact_expected_gradient(theta.detach(), reward), g)


def test_score_function_is_unbiased_and_straight_through_is_finite():
    theta = torch.tensor([0.5, -0.5, 0.0], dtype=torch.float64)
    reward = torch.tensor([1.0, 0.0, 2.0], dtype=torch.float64)
    exact = exact_expected_gradient(theta, reward)
    gen = torch.Generator().manual_seed(0)
    for baseline in (0.0, 1.0):
        est = score_function_gradients(theta, reward, 100_000, baseline=baseline, generator=gen)
        assert est.shape == (100_000, 3)
        torch.testing.assert_close(est.mean(0), exact, atol=0.01, rtol=0)
    st = straight_through_gradients(theta, reward, 1000, tau=0.5, generator=gen)
    assert st.shape == (1000, 3) and torch.isfinite(st).all()
    # each straight-through estimate is a gradient of a softmax: its entries sum to zero
    torch.testing.assert_close(st.sum(1), torch.zeros(1000, dtype=torch.float64))
    with pytest.raises(ValueError, match="same shape"):
        exact_expected_gradient(theta, reward[:2])


# -- plotting helpers (neural_memory.viz.gumbel) ---------------------------------------------


def test_viz_helpers_draw_what_they_are_given():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neural_memory.viz.gumbel import (
        gumbel_max_frequencies,
        plot_estimator_comparison,
        plot_gumbel_density,
        plot_image_reads,
        plot_memory_fit,
        plot_probs_vs_frequencies,
        plot_slot_usage,
        plot_temperature_samples,
    )

    ax = plot_gumbel_density(sample_gumbel((1000,), generator=torch.Generator().manual_seed(0)))
    assert len(ax.lines) == 1 and len(ax.patches) == 80
    freqs = gumbel_max_frequencies(torch.tensor([0.0, 1.0, 2.0]), 5000, seed=0)
    torch.testing.assert_close(freqs.sum(), torch.tensor(1.0, dtype=torch.float64))
    ax = plot_probs_vs_frequencies(torch.softmax(torch.tensor([0.0, 1.0, 2.0]), 0), freqs)
    assert len(ax.patches) == 6
    axes = plot_temperature_samples(torch.tensor([1.0, 0.0, -1.0]), taus=(0.1, 1.0), n_mean=100)
    assert len(axes) == 3 and [len(a.patches) for a in axes] == [3, 3, 3]
    ax = plot_estimator_comparison(["a", "b"], [1.0, 0.5], [0.0, 0.1])
    assert len(ax.patches) == 4
    x = torch.linspace(-1, 1, 11)
    ax = plot_memory_fit(x, x**2, x, x**2, x**2, memory_values=torch.tensor([0.0, 1.0]))
    assert len(ax.lines) == 4  # two memory lines, best fit, fit
    ax = plot_slot_usage(torch.tensor([0, 0, 1, 3]), 4)
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.5, 0.25, 0.0, 0.25])
    axes = plot_image_reads(torch.rand(3, 64), torch.rand(3, 64), ["a"] * 3, ["b"] * 3)
    assert axes.shape == (2, 3)
    plt.close("all")


def test_training_curve_seed_scores_and_read_distances_draw_their_data():
    import matplotlib.pyplot as plt

    from neural_memory.viz.gumbel import plot_read_distances, plot_seed_scores, plot_training_curve

    losses = [1.0 / (i + 1) for i in range(100)]
    ax = plot_training_curve(losses, window=10, floor=0.01)
    every, mean = ax.lines[0].get_ydata(), ax.lines[1].get_ydata()
    assert list(every) == pytest.approx(losses) and len(mean) == 91
    assert mean[0] == pytest.approx(sum(losses[:10]) / 10)
    assert ax.get_yscale() == "log" and len(ax.lines) == 3  # every, mean, floor
    ax = plot_seed_scores({"a": [1.0, 2.0, 3.0], "b": [4.0, 6.0]}, reference=1.0)
    assert [p.get_height() for p in ax.patches] == pytest.approx([2.0, 5.0])  # bars: the means
    dots = [list(c.get_offsets()[:, 1]) for c in ax.collections]
    assert dots == [[1.0, 2.0, 3.0], [4.0, 6.0]]
    distance = torch.tensor([1.0, 2.0, 3.0, 9.0])
    ax = plot_read_distances(distance, torch.tensor([True, True, True, False]), bins=3)
    assert [line.get_xdata()[0] for line in ax.lines] == pytest.approx([2.0, 9.0])  # the means
    plt.close("all")
