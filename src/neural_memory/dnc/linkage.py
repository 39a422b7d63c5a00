r"""Temporal memory linkage (Graves et al., 2016, Methods, "Temporal memory linkage").

Allocation writes wherever memory is free, so the order of the rows says nothing about the
order of the writes. The DNC records that order in an $N \times N$ *link matrix*:
$L_t[i, j] \approx 1$ when row $i$ was written right after row $j$. A read head can then step
forwards or backwards through a sequence it wrote, whatever rows it landed in.

1. Precedence: where the latest write went, kept until a new write replaces it
   ($\mathbf{p}_0 = \mathbf{0}$),

   $$\mathbf{p}_t = \Bigl(1 - \sum_i w^w_t[i]\Bigr) \mathbf{p}_{t-1} + \mathbf{w}^w_t .$$

2. Link matrix ($L_0 = 0$): a write to row $i$ erases the links into and out of $i$ and links
   $i$ to the rows of the previous write,

   $$L_t[i, j] = \bigl(1 - w^w_t[i] - w^w_t[j]\bigr) L_{t-1}[i, j] + w^w_t[i]\, p_{t-1}[j],
   \qquad L_t[i, i] = 0 .$$

   (The update uses $\mathbf{p}_{t-1}$: compute the link before the precedence.)

3. Directional weightings of read head $i$, from its previous read weighting: forward
   $\mathbf{f}^i_t = L_t \mathbf{w}^{r,i}_{t-1}$ (the rows written after the ones it read),
   backward $\mathbf{b}^i_t = L_t^\top \mathbf{w}^{r,i}_{t-1}$ (the rows written before).

With weightings (entries $\ge 0$, summing to at most 1), $\mathbf{p}_t$ is a weighting and every
row and column of $L_t$ sums to at most 1, so $\mathbf{f}^i_t$ and $\mathbf{b}^i_t$ are weightings
too (the tests check these invariants over random rollouts). Pure functions; shapes: ``B``
batch, ``N`` rows, ``R`` read heads.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neural_memory.dnc._checks import (
    check_same_shape,
    check_tensor,
    check_unit_interval,
    check_weighting,
)

__all__ = ["directional_weights", "link_matrix", "precedence"]


def precedence(precedence_prev: Tensor, write_weights: Tensor) -> Tensor:
    r"""Precedence $\mathbf{p}_t = (1 - \sum_i w^w_t[i])\, \mathbf{p}_{t-1} + \mathbf{w}^w_t$.

    Args:
        precedence_prev: ``(B, N)`` $\mathbf{p}_{t-1}$.
        write_weights: ``(B, N)`` this step's write weighting $\mathbf{w}^w_t$.

    Returns:
        ``(B, N)`` $\mathbf{p}_t$, a weighting.
    """
    check_tensor(precedence_prev, "precedence_prev", "(B, N)")
    check_same_shape(write_weights, "write_weights", precedence_prev, "precedence_prev", "(B, N)")
    check_weighting(precedence_prev, "precedence_prev")
    check_weighting(write_weights, "write_weights")
    return _precedence(precedence_prev, write_weights)


def _precedence(precedence_prev: Tensor, write_weights: Tensor) -> Tensor:
    kept = 1 - write_weights.sum(-1, keepdim=True)  # (B, 1)
    return torch.addcmul(write_weights, kept, precedence_prev)  # (B, N)


def link_matrix(link_prev: Tensor, write_weights: Tensor, precedence_prev: Tensor) -> Tensor:
    r"""Link matrix $L_t[i, j] = (1 - w^w_t[i] - w^w_t[j]) L_{t-1}[i, j] + w^w_t[i] p_{t-1}[j]$,
    with a zero diagonal.

    Args:
        link_prev: ``(B, N, N)`` $L_{t-1}$.
        write_weights: ``(B, N)`` this step's write weighting $\mathbf{w}^w_t$.
        precedence_prev: ``(B, N)`` the previous precedence $\mathbf{p}_{t-1}$.

    Returns:
        ``(B, N, N)`` $L_t$.
    """
    check_tensor(write_weights, "write_weights", "(B, N)")
    check_same_shape(precedence_prev, "precedence_prev", write_weights, "write_weights", "(B, N)")
    b, n = write_weights.shape
    if not isinstance(link_prev, Tensor) or tuple(link_prev.shape) != (b, n, n):
        check_tensor(link_prev, "link_prev", "(B, N, N)")
        raise ValueError(
            f"link_prev must have shape (B, N, N) = {(b, n, n)} for write weights over N = {n} "
            f"rows; got {tuple(link_prev.shape)}"
        )
    check_weighting(write_weights, "write_weights")
    check_weighting(precedence_prev, "precedence_prev")
    check_unit_interval(link_prev, "link_prev")
    return _link_matrix(link_prev, write_weights, precedence_prev)


def _link_matrix(
    link_prev: Tensor, write_weights: Tensor, precedence_prev: Tensor,
    off_diagonal: Tensor | None = None,
) -> Tensor:
    """:func:`link_matrix` without checks; ``off_diagonal`` is the ``(N, N)`` mask of
    :func:`_off_diagonal`, passed in by a caller that reuses it every step."""
    if off_diagonal is None:
        off_diagonal = _off_diagonal(write_weights.shape[-1], write_weights)
    w_i = write_weights.unsqueeze(-1)  # (B, N, 1): w[i], constant along a row
    w_j = write_weights.unsqueeze(-2)  # (B, 1, N): w[j], constant along a column
    link = (1 - w_i - w_j) * link_prev + w_i * precedence_prev.unsqueeze(-2)  # (B, N, N)
    return link * off_diagonal  # (B, N, N)


def _off_diagonal(n: int, like: Tensor) -> Tensor:
    """``(N, N)``: 1 off the diagonal, 0 on it (like ``like``'s dtype and device)."""
    return 1 - torch.eye(n, dtype=like.dtype, device=like.device)


def directional_weights(link: Tensor, read_weights_prev: Tensor) -> tuple[Tensor, Tensor]:
    r"""Forward and backward weightings $\mathbf{f}^i_t = L_t \mathbf{w}^{r,i}_{t-1}$,
    $\mathbf{b}^i_t = L_t^\top \mathbf{w}^{r,i}_{t-1}$ for every read head $i$.

    Args:
        link: ``(B, N, N)`` this step's link matrix $L_t$.
        read_weights_prev: ``(B, R, N)`` the read heads' weightings at the previous step.

    Returns:
        ``(forward, backward)``, each ``(B, R, N)``.
    """
    check_tensor(read_weights_prev, "read_weights_prev", "(B, R, N)")
    b, _, n = read_weights_prev.shape
    if not isinstance(link, Tensor) or tuple(link.shape) != (b, n, n):
        check_tensor(link, "link", "(B, N, N)")
        raise ValueError(
            f"link must have shape (B, N, N) = {(b, n, n)} for read weights over N = {n} rows; "
            f"got {tuple(link.shape)}"
        )
    check_weighting(read_weights_prev, "read_weights_prev")
    check_unit_interval(link, "link")
    return _directional_weights(link, read_weights_prev)


def _directional_weights(link: Tensor, read_weights_prev: Tensor) -> tuple[Tensor, Tensor]:
    # Row by row, f[i] = sum_j L[i, j] w[j] and b[i] = sum_j L[j, i] w[j]; for all heads at once
    # (weightings as rows): f = w L^T and b = w L.
    forward = torch.bmm(read_weights_prev, link.transpose(1, 2))  # (B, R, N)
    backward = torch.bmm(read_weights_prev, link)  # (B, R, N)
    return forward, backward
