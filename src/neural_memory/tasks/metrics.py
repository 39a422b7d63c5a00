"""The two numbers the paper reports per sequence: cost in bits and bit errors.

For logits :math:`z_{t,j}` (pre-sigmoid outputs), targets :math:`y_{t,j} \\in \\{0, 1\\}` and the
score mask :math:`m_t`, the cost of one sequence is the binary cross-entropy summed over the
scored bits, in bits (Graves et al., 2014, Section 4: "cost per sequence (bits)"):

.. math::

    \\mathcal{L} = -\\frac{1}{\\ln 2} \\sum_t m_t \\sum_j
        \\big[ y_{t,j} \\ln \\sigma(z_{t,j}) + (1 - y_{t,j}) \\ln (1 - \\sigma(z_{t,j})) \\big]

and the bit errors are :math:`\\sum_t m_t \\sum_j [\\,\\mathbb{1}(\\sigma(z_{t,j}) > 0.5) \\ne
y_{t,j}\\,]`, i.e. the outputs thresholded at 0.5. Both are averaged over the sequences of a
batch. Everything is computed from logits with ``binary_cross_entropy_with_logits``, which is
stable for large ``|z|``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _check(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> None:
    if logits.shape != targets.shape or logits.dim() != 3:
        raise ValueError(
            "logits and targets must both have shape (B, T, O); got "
            f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)}"
        )
    if mask.shape != logits.shape[:2]:
        raise ValueError(
            f"mask must have shape (B, T) = {tuple(logits.shape[:2])}, got {tuple(mask.shape)}"
        )


def sequence_cost_nats(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked binary cross-entropy summed over each sequence, in nats: shape ``(B,)``."""
    _check(logits, targets, mask)
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")  # (B, T, O)
    return (bce.sum(-1) * mask).sum(-1)  # (B,)


def sequence_cost_bits(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked binary cross-entropy summed over each sequence, in bits: shape ``(B,)``."""
    return sequence_cost_nats(logits, targets, mask) / math.log(2.0)


def sequence_bit_errors(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Wrong bits per sequence after thresholding ``sigmoid(logits)`` at 0.5: shape ``(B,)``."""
    _check(logits, targets, mask)
    predicted = (logits > 0).to(targets.dtype)  # sigmoid(z) > 0.5  <=>  z > 0
    wrong = (predicted != targets).to(logits.dtype)  # (B, T, O)
    return (wrong.sum(-1) * mask).sum(-1)  # (B,)


def scored_bits(targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """How many bits of each sequence are scored: shape ``(B,)``."""
    return mask.sum(-1) * targets.shape[-1]


def batch_metrics(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> dict[str, float]:
    """Per-sequence averages over a batch: ``cost_bits``, ``bit_errors``, ``bit_error_rate``."""
    with torch.no_grad():
        cost = sequence_cost_bits(logits, targets, mask)
        errors = sequence_bit_errors(logits, targets, mask)
        bits = scored_bits(targets, mask)
    return {
        "cost_bits": float(cost.mean()),
        "bit_errors": float(errors.mean()),
        "bit_error_rate": float(errors.sum() / bits.sum().clamp_min(1)),
    }
