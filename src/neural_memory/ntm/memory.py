r"""Reading from and writing to the memory matrix (Graves et al., 2014, section 3.1-3.2).

The memory $\mathbf{M}_t$ is an $N \times M$ matrix: $N$ rows (locations), each a vector of
width $M$. A head touches it through a weighting $\mathbf{w}_t$ over the rows, with
$w_t(i) \ge 0$ and $\sum_i w_t(i) = 1$.

Read, eq. (2): the read vector is the weighted sum of the rows,

$$\mathbf{r}_t = \sum_i w_t(i)\,\mathbf{M}_t(i).$$

Write = erase, eq. (3), then add, eq. (4). With erase vector $\mathbf{e}_t \in (0,1)^M$ and add
vector $\mathbf{a}_t \in \mathbb{R}^M$,

$$\tilde{\mathbf{M}}_t(i) = \mathbf{M}_{t-1}(i)\,[\mathbf{1} - w_t(i)\,\mathbf{e}_t], \qquad
\mathbf{M}_t(i) = \tilde{\mathbf{M}}_t(i) + w_t(i)\,\mathbf{a}_t .$$

Several write heads (eqs. 3-4 with a product and a sum over heads $h$): the paper applies all
erases, then all adds. Erases multiply and adds sum, so within each phase the order of the heads
does not matter:

$$\mathbf{M}_t(i) = \mathbf{M}_{t-1}(i) \prod_h [\mathbf{1} - w^h_t(i)\,\mathbf{e}^h_t]
+ \sum_h w^h_t(i)\,\mathbf{a}^h_t .$$

(This is not the same as running the heads one after another, erase-add-erase-add: there a later
head's erase would also scale an earlier head's add.)

All functions are pure: they return new tensors and never modify their inputs. Leading batch
dimensions broadcast, e.g. a memory ``(B, 1, N, M)`` with weightings ``(B, H, N)`` reads ``H``
heads at once.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

__all__ = ["read", "write", "write_heads"]


def _check_memory(memory: Tensor) -> None:
    if memory.dim() < 2:
        raise ValueError(
            f"memory must have at least 2 dimensions (..., N, M); got shape {tuple(memory.shape)}"
        )


def _check_weights(memory: Tensor, w: Tensor, name: str = "w") -> None:
    if w.dim() < 1 or w.shape[-1] != memory.shape[-2]:
        raise ValueError(
            f"{name} must have shape (..., N) with N = {memory.shape[-2]} memory rows; "
            f"got shape {tuple(w.shape)}"
        )


def _check_row_vector(memory: Tensor, v: Tensor, name: str) -> None:
    if v.dim() < 1 or v.shape[-1] != memory.shape[-1]:
        raise ValueError(
            f"{name} must have shape (..., M) with M = {memory.shape[-1]} (the memory width); "
            f"got shape {tuple(v.shape)}"
        )


def read(memory: Tensor, w: Tensor) -> Tensor:
    """Read vector, eq. (2): ``r = sum_i w(i) M(i)``.

    Args:
        memory: ``(B, N, M)`` (any leading dimensions that broadcast with ``w``'s).
        w: ``(B, N)`` read weighting.

    Returns:
        ``(B, M)`` read vector.
    """
    _check_memory(memory)
    _check_weights(memory, w)
    return _read(memory, w)


def _read(memory: Tensor, w: Tensor) -> Tensor:
    return torch.matmul(w.unsqueeze(-2), memory).squeeze(-2)  # (B, M)


def write(memory: Tensor, w: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """One head's write: erase, eq. (3), then add, eq. (4). Pure (returns a new memory).

    Args:
        memory: ``(B, N, M)`` memory before the write.
        w: ``(B, N)`` write weighting.
        erase: ``(B, M)`` erase vector, entries in ``[0, 1]``.
        add: ``(B, M)`` add vector.

    Returns:
        ``(B, N, M)`` memory after the write.
    """
    _check_memory(memory)
    _check_weights(memory, w)
    _check_row_vector(memory, erase, "erase")
    _check_row_vector(memory, add, "add")
    w_col = w.unsqueeze(-1)  # (B, N, 1)
    erased = memory * (1 - w_col * erase.unsqueeze(-2))  # (B, N, M)
    return erased + w_col * add.unsqueeze(-2)  # (B, N, M)


def write_heads(memory: Tensor, w: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """``H`` write heads at once: all erases (a product over heads), then all adds (a sum).

    Args:
        memory: ``(B, N, M)`` memory before the write.
        w: ``(B, H, N)`` write weightings, one per head.
        erase: ``(B, H, M)`` erase vectors.
        add: ``(B, H, M)`` add vectors.

    Returns:
        ``(B, N, M)`` memory after the write. With ``H = 1`` this equals :func:`write`.
    """
    _check_memory(memory)
    if w.dim() != memory.dim():
        raise ValueError(
            f"w must have shape (B, H, N), one more axis than memory's batch axes; "
            f"got w {tuple(w.shape)} for memory {tuple(memory.shape)}"
        )
    _check_weights(memory, w)
    _check_row_vector(memory, erase, "erase")
    _check_row_vector(memory, add, "add")
    if erase.shape[:-1] != w.shape[:-1] or add.shape[:-1] != w.shape[:-1]:
        raise ValueError(
            f"erase and add must have the same heads as w: w {tuple(w.shape)}, "
            f"erase {tuple(erase.shape)}, add {tuple(add.shape)}"
        )
    return _write_heads(memory, w, erase, add)


@functools.lru_cache(maxsize=16)
def _one(dtype: torch.dtype, device: torch.device) -> Tensor:
    """A cached ``(1, 1, 1)`` tensor of ones (never modified), the ``1`` in ``1 - w e^T``."""
    return torch.ones(1, 1, 1, dtype=dtype, device=device)


def _write_heads(
    memory: Tensor, w: Tensor, erase: Tensor, add: Tensor, one: Tensor | None = None
) -> Tensor:
    w_t = w.transpose(-1, -2)  # (B, N, H)
    if memory.dim() == 3 and w.shape[-2] == 1:  # one write head: two fused outer products
        one = _one(memory.dtype, memory.device) if one is None else one  # (1, 1, 1)
        keep = torch.baddbmm(one, w_t, erase, alpha=-1)  # (B, N, M): 1 - w e^T
        return torch.baddbmm(memory * keep, w_t, add)  # (B, N, M)
    keep = torch.prod(1 - w_t.unsqueeze(-1) * erase.unsqueeze(-3), dim=-2)  # (B, N, M)
    return torch.addcmul(torch.matmul(w_t, add), memory, keep)  # (B, N, M)
