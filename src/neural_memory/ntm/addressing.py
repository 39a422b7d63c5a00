r"""How a head finds where to read or write (Graves et al., 2014, section 3.3).

A head turns its parameters into a weighting $\mathbf{w}_t$ over the $N$ memory rows in four
stages. Symbols: memory $\mathbf{M}_t$ ($N \times M$), key $\mathbf{k}_t \in \mathbb{R}^M$, key
strength $\beta_t \ge 0$, gate $g_t \in (0, 1)$, shift weighting $\mathbf{s}_t$ over the $K$
allowed shifts $-(K-1)/2, \dots, +(K-1)/2$ (in that order), sharpening exponent
$\gamma_t \ge 1$, previous weighting $\mathbf{w}_{t-1}$.

1. Content, eqs. (5)-(6): a softmax over the cosine similarity of the key with every row,

   $$\mathcal{K}[\mathbf{u}, \mathbf{v}] = \frac{\mathbf{u} \cdot \mathbf{v}}{\lVert\mathbf{u}\rVert
   \lVert\mathbf{v}\rVert}, \qquad w^c_t(i) = \frac{\exp(\beta_t \mathcal{K}[\mathbf{k}_t,
   \mathbf{M}_t(i)])}{\sum_j \exp(\beta_t \mathcal{K}[\mathbf{k}_t, \mathbf{M}_t(j)])}.$$

   We add a small $\varepsilon$ to the norm product, so a zero row or a zero key has similarity
   0 (and the weights stay finite) instead of 0/0.

2. Interpolation, eq. (7): $\mathbf{w}^g_t = g_t\,\mathbf{w}^c_t + (1 - g_t)\,\mathbf{w}_{t-1}$.

3. Convolutional shift, eq. (8), indices modulo $N$:
   $\tilde{w}_t(i) = \sum_{j=0}^{N-1} w^g_t(j)\, s_t(i - j)$. All of $\mathbf{s}_t$'s mass on
   shift $+1$ moves the weight of row $i$ to row $i + 1$.

4. Sharpening, eq. (9): $w_t(i) = \tilde{w}_t(i)^{\gamma_t} / \sum_j \tilde{w}_t(j)^{\gamma_t}$.
   We compute it as $\mathrm{softmax}_i(\gamma_t \log(\tilde{w}_t(i) + \delta))$ with $\delta$
   the smallest normal number of the dtype: the same value, but safe (finite values and
   gradients) when entries are 0 or when every $\tilde{w}_t(i)^{\gamma_t}$ would underflow.

Every stage keeps a weighting non-negative and summing to 1. Shapes are written for one head;
any leading dimensions broadcast (a memory ``(B, 1, N, M)`` with keys ``(B, H, M)`` addresses
``H`` heads at once).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "AddressingStages",
    "address",
    "address_stages",
    "content_weights",
    "cosine_similarity",
    "interpolate",
    "sharpen",
    "shift",
    "shift_index",
]


class AddressingStages(NamedTuple):
    """The weighting after each stage, each ``(B, N)``."""

    content: Tensor  # w^c, eq. (6)
    gated: Tensor  # w^g, eq. (7)
    shifted: Tensor  # w~, eq. (8)
    sharpened: Tensor  # w, eq. (9)


# ----------------------------------------------------------------------------- checks


def _shape(x: Tensor) -> tuple[int, ...]:
    return tuple(x.shape)


def _check_memory_key(memory: Tensor, key: Tensor) -> None:
    if memory.dim() < 2:
        raise ValueError(f"memory must have shape (..., N, M); got {_shape(memory)}")
    if key.dim() < 1 or key.shape[-1] != memory.shape[-1]:
        raise ValueError(
            f"key must have shape (..., M) with M = {memory.shape[-1]} (the memory width); "
            f"got {_shape(key)}"
        )


def _check_scalar(x: Tensor, name: str) -> None:
    if x.dim() < 1 or x.shape[-1] != 1:
        raise ValueError(f"{name} must have shape (..., 1); got {_shape(x)}")


def _check_weighting(w: Tensor, name: str, n: int | None = None) -> None:
    if w.dim() < 1:
        raise ValueError(f"{name} must have shape (..., N); got a scalar")
    if n is not None and w.shape[-1] != n:
        raise ValueError(f"{name} must have shape (..., N) with N = {n}; got {_shape(w)}")


def _check_shift(n: int, k: int) -> None:
    if k % 2 == 0:
        raise ValueError(
            f"the number of shifts K must be odd (shifts -(K-1)/2 ... +(K-1)/2); got K = {k}"
        )
    if n < k:
        raise ValueError(f"the shift needs at least K = {k} memory rows; got N = {n}")


# ----------------------------------------------------------------------------- stages


def cosine_similarity(memory: Tensor, key: Tensor, eps: float = 1e-8) -> Tensor:
    """Cosine similarity of ``key`` with every memory row, eq. (6)'s $\\mathcal{K}[\\cdot,\\cdot]$.

    Args:
        memory: ``(B, N, M)``.
        key: ``(B, M)``.
        eps: added to the norm product; a zero row or zero key gives similarity 0.

    Returns:
        ``(B, N)`` similarities in ``[-1, 1]``.
    """
    _check_memory_key(memory, key)
    return _cosine_similarity(memory, key, eps)


def _cosine_similarity(memory: Tensor, key: Tensor, eps: float = 1e-8) -> Tensor:
    dot = torch.matmul(memory, key.unsqueeze(-1)).squeeze(-1)  # (B, N)
    row_norm = torch.linalg.vector_norm(memory, dim=-1)  # (B, N)
    key_norm = torch.linalg.vector_norm(key, dim=-1, keepdim=True)  # (B, 1)
    return dot / (row_norm * key_norm + eps)  # (B, N)


def content_weights(memory: Tensor, key: Tensor, beta: Tensor) -> Tensor:
    """Content weighting, eqs. (5)-(6): ``softmax(beta * cos(key, M(i)))`` over the rows.

    Args:
        memory: ``(B, N, M)``.
        key: ``(B, M)``.
        beta: ``(B, 1)`` key strength, ``>= 0``.

    Returns:
        ``(B, N)`` weighting.
    """
    _check_memory_key(memory, key)
    _check_scalar(beta, "beta")
    return torch.softmax(beta * _cosine_similarity(memory, key), dim=-1)  # (B, N)


def interpolate(w_content: Tensor, w_prev: Tensor, g: Tensor) -> Tensor:
    """Interpolation gate, eq. (7): ``g * w_content + (1 - g) * w_prev``.

    Args:
        w_content: ``(B, N)`` content weighting.
        w_prev: ``(B, N)`` the head's weighting at the previous step.
        g: ``(B, 1)`` gate in ``[0, 1]``.

    Returns:
        ``(B, N)`` gated weighting.
    """
    _check_weighting(w_content, "w_content")
    _check_weighting(w_prev, "w_prev", w_content.shape[-1])
    _check_scalar(g, "g")
    return torch.lerp(w_prev, w_content, g)  # (B, N)


def shift(w: Tensor, s: Tensor) -> Tensor:
    """Circular convolution with the shift weighting, eq. (8).

    ``s[..., j]`` is the weight of shift ``j - (K-1)/2``; all mass on shift ``+1`` moves the
    weight of row ``i`` to row ``i + 1`` (row ``N-1`` wraps to row 0).

    Computed in one batched operation over all rows (and heads): stack the ``K`` circularly
    rolled copies of ``w`` (a circular pad and ``K`` windows) and contract them with ``s``.

    Args:
        w: ``(B, N)`` weighting.
        s: ``(B, K)`` shift weighting, ``K`` odd, ``K <= N``.

    Returns:
        ``(B, N)`` shifted weighting.

    Raises:
        ValueError: ``K`` is even or ``N < K``.
    """
    _check_weighting(w, "w")
    _check_weighting(s, "s")
    _check_shift(w.shape[-1], s.shape[-1])
    return _shift(w, s)


def shift_index(n: int, k: int, device: torch.device | str | None = None) -> Tensor:
    """The ``(N, K)`` index of the shift: ``index[i, j] = (i - (j - (K-1)/2)) mod N``.

    Row ``i`` of ``w[..., index]`` lists the weights that shifts ``-(K-1)/2 .. +(K-1)/2`` carry
    into row ``i``, in the order of ``s``; eq. (8) is then a dot product of that row with ``s``.
    (A reference for readers and tests; :func:`shift` computes the same without a gather.)
    """
    _check_shift(n, k)
    rows = torch.arange(n, device=device).unsqueeze(1)  # (N, 1)
    offsets = torch.arange(k, device=device) - (k - 1) // 2  # (K,)
    return (rows - offsets) % n  # (N, K)


def _rolled(w: Tensor, k: int) -> Tensor:
    """``(..., K, N)``: slice ``j`` is ``w`` rolled by shift ``j - (K-1)/2`` (row ``i`` -> ``i + o``).

    Pads ``w`` circularly by ``(K-1)/2`` on each side (one ``cat``) and stacks ``K`` windows of
    the padded vector (one ``stack``; the windows themselves are views, not copies).
    """
    n, p = w.shape[-1], (k - 1) // 2
    if p == 0:
        return w.unsqueeze(-2)  # (..., 1, N)
    padded = torch.cat([w[..., n - p :], w, w[..., :p]], dim=-1)  # (..., N + K - 1)
    # padded[i + p - o] = w[i - o]: the window starting at p - o is w rolled by o.
    starts = [p - (j - p) for j in range(k)]
    return torch.stack([padded[..., a : a + n] for a in starts], dim=-2)  # (..., K, N)


def _shift(w: Tensor, s: Tensor) -> Tensor:
    rolled = _rolled(w, s.shape[-1])  # (B, K, N)
    return (rolled * s.unsqueeze(-1)).sum(-2)  # (B, N)


def sharpen(w: Tensor, gamma: Tensor) -> Tensor:
    """Sharpening, eq. (9): ``w^gamma / sum(w^gamma)``, safe when entries are 0.

    Args:
        w: ``(B, N)`` non-negative weighting.
        gamma: ``(B, 1)`` exponent, ``>= 1``.

    Returns:
        ``(B, N)`` sharpened weighting.
    """
    _check_weighting(w, "w")
    _check_scalar(gamma, "gamma")
    return _sharpen(w, gamma)


def _sharpen(w: Tensor, gamma: Tensor) -> Tensor:
    tiny = torch.finfo(w.dtype).tiny
    return torch.softmax(gamma * torch.log(w + tiny), dim=-1)  # (B, N)


def address_stages(
    memory: Tensor,
    w_prev: Tensor,
    key: Tensor,
    beta: Tensor,
    g: Tensor,
    s: Tensor,
    gamma: Tensor,
) -> AddressingStages:
    """All four addressing stages, eqs. (5)-(9), returning every intermediate weighting.

    Args:
        memory: ``(B, N, M)``.
        w_prev: ``(B, N)`` previous weighting of this head.
        key: ``(B, M)``; beta: ``(B, 1)``; g: ``(B, 1)``; s: ``(B, K)``; gamma: ``(B, 1)``.

    Returns:
        :class:`AddressingStages` ``(content, gated, shifted, sharpened)``, each ``(B, N)``.
    """
    _check_memory_key(memory, key)
    n = memory.shape[-2]
    _check_weighting(w_prev, "w_prev", n)
    _check_scalar(beta, "beta")
    _check_scalar(g, "g")
    _check_scalar(gamma, "gamma")
    _check_weighting(s, "s")
    _check_shift(n, s.shape[-1])
    return _address_stages(memory, w_prev, key, beta, g, s, gamma)


def _address_stages(
    memory: Tensor,
    w_prev: Tensor,
    key: Tensor,
    beta: Tensor,
    g: Tensor,
    s: Tensor,
    gamma: Tensor,
) -> AddressingStages:
    w_c = torch.softmax(beta * _cosine_similarity(memory, key), dim=-1)  # (B, N)
    w_g = torch.lerp(w_prev, w_c, g)  # (B, N)
    w_s = _shift(w_g, s)  # (B, N)
    w = _sharpen(w_s, gamma)  # (B, N)
    return AddressingStages(w_c, w_g, w_s, w)


def address(
    memory: Tensor,
    w_prev: Tensor,
    key: Tensor,
    beta: Tensor,
    g: Tensor,
    s: Tensor,
    gamma: Tensor,
) -> Tensor:
    """The head's new weighting: content, gate, shift, sharpen (eqs. 5-9). ``(B, N)``.

    Same arguments as :func:`address_stages`; returns only the final (sharpened) weighting.
    """
    return address_stages(memory, w_prev, key, beta, g, s, gamma).sharpened


def _address_stages_heads(
    memory: Tensor,
    w_prev: Tensor,
    key: Tensor,
    beta: Tensor,
    g: Tensor,
    s: Tensor,
    gamma: Tensor,
    eps: float = 1e-8,
) -> AddressingStages:
    """:func:`address_stages` for ``H`` heads sharing one memory, without input checks.

    Shapes: memory ``(B, N, M)``; w_prev ``(B, H, N)``; key ``(B, H, M)``; beta, g, gamma
    ``(B, H, 1)``; s ``(B, H, K)``. Returns ``(B, H, N)`` stages. Same values as
    :func:`address_stages` on a ``(B, 1, N, M)`` memory, but the key-row products are one
    ``bmm`` instead of a broadcast copy of the memory per head.
    """
    dot = torch.bmm(key, memory.transpose(1, 2))  # (B, H, N)
    row_norm = torch.linalg.vector_norm(memory, dim=-1).unsqueeze(1)  # (B, 1, N)
    key_norm = torch.linalg.vector_norm(key, dim=-1, keepdim=True)  # (B, H, 1)
    cos = dot / (key_norm * row_norm).add_(eps)  # (B, H, N)
    w_c = torch.softmax(beta * cos, dim=-1)  # (B, H, N)
    w_g = torch.lerp(w_prev, w_c, g)  # (B, H, N)
    w_s = _shift(w_g, s)  # (B, H, N)
    w = _sharpen(w_s, gamma)  # (B, H, N)
    return AddressingStages(w_c, w_g, w_s, w)
