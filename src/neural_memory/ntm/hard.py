r"""Hard addressing: a head that reads or writes exactly one memory row (Part IV).

After the four addressing stages a head has a soft weighting $\mathbf{w}_t$ over the $N$ rows.
A *hard* head replaces it with a one-hot vector drawn with the straight-through Gumbel-softmax
of Part I (Jang et al., 2017; Bengio et al., 2013), using $\log \mathbf{w}_t$ as the logits:

$$\mathbf{w}^{\mathrm{gs}}_t = \mathrm{softmax}\!\left(\frac{\log \mathbf{w}_t + \boldsymbol{\xi}_t}{\tau}\right),
\qquad \xi_t(i) \sim \mathrm{Gumbel}(0, 1),
\qquad \mathbf{w}^{\mathrm{hard}}_t = \mathrm{onehot}\big(\arg\max_i w^{\mathrm{gs}}_t(i)\big).$$

The forward pass uses $\mathbf{w}^{\mathrm{hard}}_t$ (exactly one row; by the Gumbel-max trick
that row is drawn with probability $w_t(i)$), the backward pass the gradient of the soft sample
$\mathbf{w}^{\mathrm{gs}}_t$ (straight-through). In evaluation there is no noise:
$\mathbf{w}^{\mathrm{hard}}_t$ is the one-hot of $\arg\max_i w_t(i)$, so a trained machine is
deterministic. (The symbols are the book's notation page's.)

To start soft and anneal to hard, a mixing weight $\lambda \in [0, 1]$ blends the two:

$$\mathbf{w}'_t = \lambda\, \mathbf{w}^{\mathrm{hard}}_t + (1 - \lambda)\, \mathbf{w}_t ,$$

with $\lambda = 1$ (the default) the pure hard head. The weighting $\mathbf{w}'_t$ is what the
head reads or writes with, and what the next step's interpolation (eq. 7) takes as
$\mathbf{w}_{t-1}$.

:func:`harden` is the operation; :func:`entropy_bits` measures how sharp a weighting is
(0 bits for one row, $\log_2 N$ for uniform), and :func:`trace_entropy` does so for every head
of a forward pass; :data:`HARD_ADDRESSING` names which heads are
hard in :class:`~neural_memory.ntm.model.NTMConfig`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from neural_memory.gumbel import one_hot_argmax, sample_gumbel, straight_through, validate_tau

__all__ = ["HARD_ADDRESSING", "check_mix", "entropy_bits", "harden", "trace_entropy"]

#: Which heads are hard: none (the NTM of Graves et al.), read heads, write heads, or both.
HARD_ADDRESSING = ("none", "read", "write", "both")


def check_mix(mix: float) -> float:
    """Return ``mix`` if it is a number in [0, 1]; raise ``ValueError`` otherwise."""
    if isinstance(mix, bool) or not isinstance(mix, (int, float)) or not 0.0 <= mix <= 1.0:
        raise ValueError(f"the hard/soft mixing weight must be a number in [0, 1]; got {mix!r}")
    return float(mix)


def harden(
    w: Tensor,
    tau: float = 1.0,
    mix: float = 1.0,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Replace weightings ``w`` (``(..., N)``, rows summing to 1) by one-hot ones.

    Args:
        w: soft weightings over the last dimension.
        tau: Gumbel-softmax temperature (> 0); shapes the backward pass only.
        mix: ``lambda`` in ``lambda * hard + (1 - lambda) * w``; 1 is fully hard.
        training: sample with Gumbel noise and pass straight-through gradients; else argmax
            (no noise, no randomness).
        generator: for the Gumbel noise (default: torch's global generator).

    Returns:
        a tensor of ``w``'s shape; with ``mix=1`` every row is exactly one-hot.
    """
    validate_tau(tau)
    mix = check_mix(mix)
    if not torch.is_floating_point(w) or w.dim() < 1:
        raise ValueError(f"harden expects a floating-point weighting (..., N); got {w.dtype}, "
                         f"shape {tuple(w.shape)}")
    if mix == 0.0:
        return w
    if training:
        # log 0 = -inf would give 0 * inf = NaN in the backward pass: clamp first (the clamped
        # entries get no gradient, and are never sampled in practice).
        logits = torch.log(w.clamp_min(torch.finfo(w.dtype).tiny))  # (..., N)
        noise = sample_gumbel(logits, generator=generator)
        hard = straight_through(torch.softmax((logits + noise) / tau, dim=-1))
    else:
        hard = one_hot_argmax(w)
    return hard if mix == 1.0 else mix * hard + (1.0 - mix) * w


def entropy_bits(w: Tensor) -> Tensor:
    r"""The entropy $-\sum_i w(i) \log_2 w(i)$ of weightings ``w`` over the last dimension.

    0 for a one-hot weighting, $\log_2 N$ for the uniform one; terms with $w(i) = 0$ count 0.
    """
    if not torch.is_floating_point(w) or w.dim() < 1:
        raise ValueError(f"entropy_bits expects a floating-point weighting (..., N); got {w.dtype}")
    logs = torch.log(w.clamp_min(torch.finfo(w.dtype).tiny))
    return -(w * logs).sum(dim=-1) / math.log(2.0)


def trace_entropy(trace, steps: Tensor | None = None) -> dict[str, float]:
    """Mean entropy (bits per head and step, in float64) of the weightings in an
    :class:`~neural_memory.ntm.model.NTMTrace`: ``read``/``write`` for the weightings the heads
    used (one-hot for hard heads), ``read_soft``/``write_soft`` for the soft weightings before
    hardening (``trace.stages.sharpened``; the same for soft heads). ``steps`` (a ``(B, T)``
    boolean mask) restricts the mean to those steps; None: every step."""
    r, w = trace.read_weights.shape[2], trace.write_weights.shape[2]
    soft = trace.stages.sharpened  # (B, T, H, N)
    if soft.shape[2] != r + w:
        raise ValueError(f"the trace has {soft.shape[2]} heads in its stages but {r} + {w} read + "
                         f"write weightings")
    out = {}
    for kind, weights in (("read", trace.read_weights), ("write", trace.write_weights),
                          ("read_soft", soft[:, :, :r]), ("write_soft", soft[:, :, r:])):
        h = entropy_bits(weights.double())  # (B, T, heads)
        out[kind] = float((h if steps is None else h[steps]).mean())
    return out
