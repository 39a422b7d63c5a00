r"""Dynamic memory allocation (Graves et al., 2016, Methods, "Dynamic memory allocation").

The DNC keeps a *usage* $u_t[i] \in [0, 1]$ for each of the $N$ memory rows: writing to a row
raises it, and a read head may *free* the rows it read. The write head can then ask for the
least used rows, whatever their contents, through the *allocation weighting* $\mathbf{a}_t$.
Symbols: $R$ read heads with free gates $f^i_t \in [0, 1]$ and previous read weightings
$\mathbf{w}^{r,i}_{t-1}$; the previous write weighting $\mathbf{w}^w_{t-1}$.

1. Retention: how much of each row survives the free gates,

   $$\boldsymbol{\psi}_t = \prod_{i=1}^{R} \left(\mathbf{1} - f^i_t\, \mathbf{w}^{r,i}_{t-1}\right).$$

2. Usage: last step's write raises usage towards 1, then retention lowers it,

   $$\mathbf{u}_t = \left(\mathbf{u}_{t-1} + \mathbf{w}^w_{t-1}
   - \mathbf{u}_{t-1} \circ \mathbf{w}^w_{t-1}\right) \circ \boldsymbol{\psi}_t .$$

3. Allocation: sort the rows by ascending usage into the *free list* $\phi_t$ ($\phi_t[1]$ is
   the least used row); the $j$-th row of the list gets what is left unused of it, times how
   used every row before it is:

   $$a_t[\phi_t[j]] = \left(1 - u_t[\phi_t[j]]\right) \prod_{i=1}^{j-1} u_t[\phi_t[i]] .$$

   If the least used row is completely free it takes all the weight; if every row is fully
   used there is no weight to give: $\sum_j a_t[j] = 1 - \prod_j u_t[j] \le 1$. As in the paper,
   the sort is a choice of order and carries no gradient; the gradient flows through the usage
   values that the formula multiplies.

All three functions are pure (new tensors, inputs never modified). Shapes: ``B`` batch, ``N``
rows, ``R`` read heads.
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

__all__ = ["allocation_weights", "retention", "usage"]


def retention(free_gates: Tensor, read_weights_prev: Tensor) -> Tensor:
    r"""Retention $\boldsymbol{\psi}_t = \prod_i (\mathbf{1} - f^i_t \mathbf{w}^{r,i}_{t-1})$.

    Args:
        free_gates: ``(B, R)`` free gates $f^i_t \in [0, 1]$, one per read head.
        read_weights_prev: ``(B, R, N)`` the read heads' weightings at the previous step.

    Returns:
        ``(B, N)`` retention, entries in ``[0, 1]``.
    """
    check_tensor(read_weights_prev, "read_weights_prev", "(B, R, N)")
    check_tensor(free_gates, "free_gates", "(B, R)")
    if free_gates.shape != read_weights_prev.shape[:2]:
        raise ValueError(
            f"free_gates must have shape (B, R) = {tuple(read_weights_prev.shape[:2])}, one gate "
            f"per read head of read_weights_prev; got {tuple(free_gates.shape)}"
        )
    check_unit_interval(free_gates, "free_gates")
    check_weighting(read_weights_prev, "read_weights_prev")
    return _retention(free_gates, read_weights_prev)


def _retention(free_gates: Tensor, read_weights_prev: Tensor) -> Tensor:
    freed = free_gates.unsqueeze(-1) * read_weights_prev  # (B, R, N): f^i w^{r,i}
    return torch.prod(1 - freed, dim=1)  # (B, N)


def usage(usage_prev: Tensor, write_weights_prev: Tensor, retention: Tensor) -> Tensor:
    r"""Usage $\mathbf{u}_t = (\mathbf{u}_{t-1} + \mathbf{w}^w_{t-1} - \mathbf{u}_{t-1} \circ
    \mathbf{w}^w_{t-1}) \circ \boldsymbol{\psi}_t$.

    Args:
        usage_prev: ``(B, N)`` usage at the previous step, entries in ``[0, 1]``.
        write_weights_prev: ``(B, N)`` the write weighting of the previous step.
        retention: ``(B, N)`` this step's retention (:func:`retention`).

    Returns:
        ``(B, N)`` usage, entries in ``[0, 1]``.
    """
    check_tensor(usage_prev, "usage_prev", "(B, N)")
    check_same_shape(write_weights_prev, "write_weights_prev", usage_prev, "usage_prev", "(B, N)")
    check_same_shape(retention, "retention", usage_prev, "usage_prev", "(B, N)")
    check_unit_interval(usage_prev, "usage_prev")
    check_weighting(write_weights_prev, "write_weights_prev")
    check_unit_interval(retention, "retention")
    return _usage(usage_prev, write_weights_prev, retention)


def _usage(usage_prev: Tensor, write_weights_prev: Tensor, retention: Tensor) -> Tensor:
    written = usage_prev + write_weights_prev - usage_prev * write_weights_prev  # (B, N)
    return written * retention  # (B, N)


def allocation_weights(usage: Tensor) -> Tensor:
    r"""Allocation $a_t[\phi_t[j]] = (1 - u_t[\phi_t[j]]) \prod_{i<j} u_t[\phi_t[i]]$, with
    $\phi_t$ the rows in ascending order of usage (the free list).

    Ties (rows of equal usage, such as the rows of an empty memory) are broken by row index:
    the sort is stable, so an empty memory written with its allocation weighting at each step
    fills rows 0, 1, 2, ... in order.

    The formula is used as it stands. DeepMind's reference implementation first maps the usage
    into $[\varepsilon, 1]$ ($u \mapsto \varepsilon + (1 - \varepsilon) u$, $\varepsilon =
    10^{-6}$) "to avoid numerical instability": TensorFlow's gradient of a running product
    divides the product by each factor, which is 0/0 when a usage is exactly 0 (as in an empty
    memory). PyTorch's gradient of ``cumprod`` is exact with zero factors (the tests check it
    with ``gradcheck``), so the map would buy nothing here, and it has a cost: an empty memory
    written with the weighting $(1 - \varepsilon, \varepsilon, \varepsilon^2, \dots)$ it
    gives leaves the later rows with usages $\varepsilon^j$, and the next allocation goes to the
    first row whose leak rounds away rather than to row 1.

    Args:
        usage: ``(B, N)`` usage $\mathbf{u}_t$, entries in ``[0, 1]``.

    Returns:
        ``(B, N)`` allocation weighting: entries ``>= 0`` summing to at most 1.
    """
    check_tensor(usage, "usage", "(B, N)")
    check_unit_interval(usage, "usage")
    return _allocation_weights(usage)


def _allocation_weights(usage: Tensor) -> Tensor:
    # The free list phi: rows by ascending usage, ties by row index. The values come out of the
    # sort with their gradient (a gather); the order itself has none.
    sorted_usage, free_list = torch.sort(usage, dim=-1, stable=True)  # (B, N) each
    # prod_{i<j} u[phi[i]]: an exclusive cumulative product (1 for the first row of the list).
    before = torch.cumprod(
        torch.cat([torch.ones_like(sorted_usage[:, :1]), sorted_usage[:, :-1]], dim=-1), dim=-1
    )  # (B, N)
    sorted_allocation = (1 - sorted_usage) * before  # (B, N): a[phi[j]]
    # Back from free-list order to row order: row phi[j] gets entry j.
    return torch.zeros_like(sorted_allocation).scatter(-1, free_list, sorted_allocation)
