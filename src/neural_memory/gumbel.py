r"""Gumbel noise, the Gumbel-softmax relaxation and its straight-through (hard) variant.

Symbols (see the book's notation page): ``logits`` are unnormalised log-probabilities
:math:`\log\pi_i` (up to a constant) over :math:`N` categories, :math:`\pi = \mathrm{softmax}(\text{logits})`;
:math:`g_i` is standard Gumbel noise; :math:`\tau > 0` is the temperature.

Equations implemented
---------------------

* **Gumbel noise** (Gumbel 1954; Jang et al. 2017, Sec. 2): for :math:`u \sim \mathcal U(0, 1)`,

  .. math:: g = -\log(-\log u).

  Its density is :math:`p(g) = \exp(-(g + e^{-g}))`.

* **Gumbel-max trick** (Jang et al. 2017, Eq. 1; Maddison et al. 2017):
  :math:`z = \arg\max_i (\text{logits}_i + g_i)` is distributed as :math:`\mathrm{Cat}(\pi)`.

* **Gumbel-softmax / Concrete sample** (Jang et al. 2017, Eq. 2):

  .. math:: y_i = \frac{\exp((\text{logits}_i + g_i)/\tau)}{\sum_j \exp((\text{logits}_j + g_j)/\tau)}.

* **Straight-through Gumbel-softmax** (Jang et al. 2017, Sec. 2.2; Bengio et al. 2013): the
  forward value is the one-hot vector :math:`y_{\mathrm{oh}}` of :math:`\arg\max_i y_i`, the
  backward pass uses the gradient of the soft sample :math:`y`. We compute it as
  ``y_hard + (y_soft - y_soft.detach())``: the bracket is exactly zero forward (``x - x == 0`` in
  floating point), so the forward value is *exactly* one-hot by construction, and its gradient is
  the identity on ``y_soft``. (The article's form ``(y_hard - y_soft).detach() + y_soft`` is also
  exact for ``s`` in [0, 1], since ``(1 - s) + s`` rounds back to 1; ours needs no such argument.)

* **Temperature annealing** (Jang et al. 2017, Sec. 4.1):
  :math:`\tau(t) = \max(\tau_{\min}, \tau_0 e^{-r t})` at training step :math:`t`.

* **Gradient estimators** of :math:`\nabla_\theta\, \mathbb E_{z\sim\mathrm{Cat}(\mathrm{softmax}\,\theta)}[f_z]`
  for a fixed reward vector :math:`f`, used to compare the straight-through estimator with the
  score-function (REINFORCE, Williams 1992) estimator :math:`f_z \nabla_\theta \log \pi_z`.
  The exact value is :math:`\pi_j (f_j - \sum_i \pi_i f_i)`.

Numerical range of the noise: the uniform draw is clamped into ``[tiny, 1 - eps]`` of its dtype
(``torch.finfo``), so :math:`g` is always finite: in float32 :math:`g \in [-4.47, 15.94]`, in
float64 :math:`g \in [-6.56, 36.04]`. The clamp changes the distribution only on events of
probability below ``eps`` (about ``1.2e-7`` in float32).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = [
    "ExponentialDecay",
    "exact_expected_gradient",
    "exponential_decay",
    "gumbel_from_uniform",
    "gumbel_range",
    "gumbel_softmax",
    "gumbel_softmax_from_noise",
    "one_hot_argmax",
    "sample_gumbel",
    "score_function_gradients",
    "straight_through",
    "straight_through_gradients",
    "validate_tau",
]


# --------------------------------------------------------------------------------------------
# Gumbel noise
# --------------------------------------------------------------------------------------------


def gumbel_range(dtype: torch.dtype = torch.float32) -> tuple[float, float]:
    """The smallest and largest value :func:`sample_gumbel` can return in ``dtype``."""
    info = torch.finfo(dtype)
    u = torch.tensor([info.tiny, 1.0 - info.eps], dtype=dtype)
    g = -torch.log(-torch.log(u))
    return float(g[0]), float(g[1])


def gumbel_from_uniform(u: torch.Tensor) -> torch.Tensor:
    """Map uniform draws ``u`` (any shape, floating dtype) to standard Gumbel noise.

    ``u`` is first clamped into ``[tiny, 1 - eps]`` of its dtype, so the result is finite even
    for ``u == 0`` or ``u == 1`` exactly (see :func:`gumbel_range` for the bounds).
    """
    if not torch.is_floating_point(u):
        raise ValueError(f"gumbel_from_uniform expects a floating-point tensor, got dtype {u.dtype}")
    info = torch.finfo(u.dtype)
    u = u.clamp(min=info.tiny, max=1.0 - info.eps)
    return -torch.log(-torch.log(u))


def sample_gumbel(
    shape_or_like: torch.Tensor | Sequence[int] | torch.Size,
    generator: torch.Generator | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Standard Gumbel noise of a given shape, or shaped like a given tensor.

    ``shape_or_like`` is either a shape (``(B, N)``) or a tensor whose shape, dtype and device
    are used (``dtype``/``device`` override them). Values are always finite; see the module
    docstring for their range.
    """
    if isinstance(shape_or_like, torch.Tensor):
        shape = shape_or_like.shape
        dtype = dtype or (
            shape_or_like.dtype if torch.is_floating_point(shape_or_like) else None
        )
        device = device or shape_or_like.device
    else:
        try:
            shape = torch.Size([int(s) for s in shape_or_like])
        except (TypeError, ValueError):
            raise ValueError(
                f"sample_gumbel expects a shape (sequence of ints) or a tensor, got {shape_or_like!r}"
            ) from None
    dtype = dtype or torch.get_default_dtype()
    if not dtype.is_floating_point:
        raise ValueError(f"sample_gumbel needs a floating-point dtype, got {dtype}")
    u = torch.rand(shape, generator=generator, dtype=dtype, device=device)
    return gumbel_from_uniform(u)


# --------------------------------------------------------------------------------------------
# Temperature
# --------------------------------------------------------------------------------------------


def validate_tau(tau: float | torch.Tensor) -> float | torch.Tensor:
    """Return ``tau`` unchanged if it is a finite positive number (or tensor of them).

    Raises ``ValueError`` otherwise (zero, negative, NaN, infinite, non-numeric).
    """
    if isinstance(tau, torch.Tensor):
        if not torch.is_floating_point(tau) and tau.dtype not in (torch.int32, torch.int64):
            raise ValueError(f"tau must be a finite positive number, got a tensor of dtype {tau.dtype}")
        bad = ~torch.isfinite(tau) | (tau <= 0)
        if bool(bad.any()):
            raise ValueError(f"tau must be finite and > 0, got the tensor {tau.detach().cpu().tolist()}")
        return tau
    if isinstance(tau, bool) or not isinstance(tau, numbers.Real):
        raise ValueError(f"tau must be a finite positive number, got {tau!r}")
    if not math.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be finite and > 0, got {tau!r}")
    return tau


def exponential_decay(step: int, tau0: float = 1.0, rate: float = 1e-4, tau_min: float = 0.5) -> float:
    r"""The annealed temperature :math:`\max(\tau_{\min}, \tau_0 e^{-r t})` at step ``t``.

    Jang et al. (2017, Sec. 4.1) anneal :math:`\tau` this way (with :math:`\tau_0 = 1`,
    :math:`\tau_{\min} = 0.5`). Requires ``step >= 0``, ``0 < tau_min <= tau0`` and ``rate >= 0``,
    all finite.
    """
    return ExponentialDecay(tau0=tau0, rate=rate, tau_min=tau_min)(step)


@dataclass(frozen=True)
class ExponentialDecay:
    r"""Temperature schedule :math:`\tau(t) = \max(\tau_{\min}, \tau_0 e^{-r t})`; call it with a step."""

    tau0: float = 1.0
    rate: float = 1e-4
    tau_min: float = 0.5

    def __post_init__(self) -> None:
        validate_tau(self.tau0)
        validate_tau(self.tau_min)
        if self.tau_min > self.tau0:
            raise ValueError(f"need tau_min <= tau0, got tau_min={self.tau_min} > tau0={self.tau0}")
        if isinstance(self.rate, bool) or not isinstance(self.rate, numbers.Real) or not (
            math.isfinite(self.rate) and self.rate >= 0
        ):
            raise ValueError(f"rate must be a finite number >= 0, got {self.rate!r}")

    def __call__(self, step: int) -> float:
        if isinstance(step, bool) or not isinstance(step, numbers.Real) or not (
            math.isfinite(step) and step >= 0
        ):
            raise ValueError(f"step must be a finite number >= 0, got {step!r}")
        return max(self.tau_min, self.tau0 * math.exp(-self.rate * step))


# --------------------------------------------------------------------------------------------
# Gumbel-softmax
# --------------------------------------------------------------------------------------------


def one_hot_argmax(y: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """The one-hot vector (same shape and dtype as ``y``) of the argmax of ``y`` along ``dim``.

    Ties go to the first maximal index, as ``torch.argmax`` does.
    """
    index = y.argmax(dim=dim, keepdim=True)
    return torch.zeros_like(y).scatter_(dim, index, 1.0)


def straight_through(y_soft: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Straight-through one-hot: forward = exact one-hot of the argmax, backward = identity on ``y_soft``.

    Computed as ``y_hard + (y_soft - y_soft.detach())``, whose forward value equals ``y_hard``
    bit for bit.
    """
    y_hard = one_hot_argmax(y_soft.detach(), dim=dim)
    return y_hard + (y_soft - y_soft.detach())


def _check_dim(x: torch.Tensor, dim: int, name: str) -> None:
    if x.dim() == 0:
        raise ValueError(f"{name} must have at least one dimension (the categories), got a scalar")
    if not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim={dim} is out of range for {name} of shape {tuple(x.shape)}")


def gumbel_softmax_from_noise(
    logits: torch.Tensor,
    noise: torch.Tensor,
    tau: float | torch.Tensor = 1.0,
    hard: bool = False,
    dim: int = -1,
) -> torch.Tensor:
    """The Gumbel-softmax sample for given Gumbel ``noise`` (same shape as ``logits``).

    ``softmax((logits + noise) / tau, dim)``; with ``hard=True`` the straight-through one-hot.
    Separating the noise lets a caller reuse it (e.g. to compare with another implementation).
    """
    validate_tau(tau)
    _check_dim(logits, dim, "logits")
    if noise.shape != logits.shape:
        raise ValueError(
            f"noise must have the shape of logits {tuple(logits.shape)}, got {tuple(noise.shape)}"
        )
    y_soft = F.softmax((logits + noise) / tau, dim=dim)
    return straight_through(y_soft, dim=dim) if hard else y_soft


def gumbel_softmax(
    logits: torch.Tensor,
    tau: float | torch.Tensor = 1.0,
    hard: bool = False,
    dim: int = -1,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A Gumbel-softmax sample over categories along ``dim`` (any leading/trailing shape).

    ``hard=False``: the relaxed sample on the simplex (Jang et al. 2017, Eq. 2).
    ``hard=True``: exactly one-hot forward (the Gumbel-max sample, distributed as
    ``Cat(softmax(logits))``), soft gradient backward (straight-through).
    """
    validate_tau(tau)
    if not torch.is_floating_point(logits):
        raise ValueError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    _check_dim(logits, dim, "logits")
    noise = sample_gumbel(logits, generator=generator)
    return gumbel_softmax_from_noise(logits, noise, tau=tau, hard=hard, dim=dim)


# --------------------------------------------------------------------------------------------
# Gradient estimators for d/dθ E_{z ~ Cat(softmax θ)}[f_z]
# --------------------------------------------------------------------------------------------


def _check_theta_reward(theta: torch.Tensor, reward: torch.Tensor) -> None:
    if theta.dim() != 1 or reward.shape != theta.shape:
        raise ValueError(
            "expected theta and reward of the same shape (N,), got "
            f"{tuple(theta.shape)} and {tuple(reward.shape)}"
        )


def exact_expected_gradient(theta: torch.Tensor, reward: torch.Tensor) -> torch.Tensor:
    r"""Exact :math:`\nabla_\theta \sum_i \pi_i f_i = \pi \odot (f - \pi^\top f)`; shape (N,)."""
    _check_theta_reward(theta, reward)
    probs = F.softmax(theta, dim=-1)  # (N,)
    return probs * (reward - (probs * reward).sum())


def score_function_gradients(
    theta: torch.Tensor,
    reward: torch.Tensor,
    n_samples: int,
    baseline: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``n_samples`` independent REINFORCE estimates :math:`(f_z - b)\nabla_\theta\log\pi_z`; shape (S, N).

    Unbiased for any constant baseline ``b``.
    """
    _check_theta_reward(theta, reward)
    probs = F.softmax(theta.detach(), dim=-1)  # (N,)
    z = torch.multinomial(probs, n_samples, replacement=True, generator=generator)  # (S,)
    one_hot = F.one_hot(z, theta.numel()).to(probs.dtype)  # (S, N)
    return (reward[z] - baseline)[:, None] * (one_hot - probs)  # (S, N)


def straight_through_gradients(
    theta: torch.Tensor,
    reward: torch.Tensor,
    n_samples: int,
    tau: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    r"""``n_samples`` independent straight-through Gumbel-softmax estimates of the gradient; (S, N).

    Each is :math:`\nabla_\theta\, f^\top y_{\mathrm{st}}` with :math:`y_{\mathrm{st}}` a hard sample;
    this equals :math:`\nabla_\theta f^\top y_{\mathrm{soft}}`, which is biased for finite ``tau``.
    """
    _check_theta_reward(theta, reward)
    logits = theta.detach().expand(n_samples, -1).clone().requires_grad_(True)  # (S, N)
    y = gumbel_softmax(logits, tau=tau, hard=True, generator=generator)  # (S, N)
    (y @ reward).sum().backward()  # rows are independent: row s of the grad is sample s's estimate
    return logits.grad  # (S, N)
