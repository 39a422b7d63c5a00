"""The Neural Turing Machine written the straightforward way, for the tests to compare against.

Every function loops over batch elements, heads and memory rows in Python and follows the
paper's equations (Graves et al., 2014, eqs. 2-9) literally. Slow on purpose: it is the
independent formulation the vectorised library must agree with.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def read(memory: Tensor, w: Tensor) -> Tensor:
    """Eq. (2) for (B, N, M) memory and (B, N) weights, one batch element and row at a time."""
    batch, n, m = memory.shape
    out = []
    for b in range(batch):
        r = torch.zeros(m, dtype=memory.dtype)
        for i in range(n):
            r = r + w[b, i] * memory[b, i]
        out.append(r)
    return torch.stack(out)


def write(memory: Tensor, w: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Eqs. (3)-(4) for one head, row by row."""
    batch, n, _ = memory.shape
    out = []
    for b in range(batch):
        rows = []
        for i in range(n):
            erased = memory[b, i] * (1 - w[b, i] * erase[b])
            rows.append(erased + w[b, i] * add[b])
        out.append(torch.stack(rows))
    return torch.stack(out)


def write_heads(memory: Tensor, w: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Several heads (B, H, ...): every head's erase first, then every head's add."""
    heads = w.shape[1]
    out = memory
    for h in range(heads):  # erase phase
        out = write(out, w[:, h], erase[:, h], torch.zeros_like(add[:, h]))
    for h in range(heads):  # add phase
        out = write(out, w[:, h], torch.zeros_like(erase[:, h]), add[:, h])
    return out


def cosine_similarity(memory: Tensor, key: Tensor, eps: float = 1e-8) -> Tensor:
    batch, n, m = memory.shape
    out = torch.zeros(batch, n, dtype=memory.dtype)
    for b in range(batch):
        for i in range(n):
            dot = sum(key[b, j] * memory[b, i, j] for j in range(m))
            nu = torch.sqrt(sum(key[b, j] ** 2 for j in range(m)))
            nv = torch.sqrt(sum(memory[b, i, j] ** 2 for j in range(m)))
            out[b, i] = dot / (nu * nv + eps)
    return out


def content_weights(memory: Tensor, key: Tensor, beta: Tensor) -> Tensor:
    """Eqs. (5)-(6): exp(beta K) / sum_j exp(beta K)."""
    sim = cosine_similarity(memory, key)
    batch, n = sim.shape
    out = torch.zeros_like(sim)
    for b in range(batch):
        e = [torch.exp(beta[b, 0] * sim[b, i]) for i in range(n)]
        total = sum(e)
        for i in range(n):
            out[b, i] = e[i] / total
    return out


def interpolate(w_content: Tensor, w_prev: Tensor, g: Tensor) -> Tensor:
    """Eq. (7)."""
    out = torch.zeros_like(w_content)
    for b in range(w_content.shape[0]):
        for i in range(w_content.shape[1]):
            out[b, i] = g[b, 0] * w_content[b, i] + (1 - g[b, 0]) * w_prev[b, i]
    return out


def shift(w: Tensor, s: Tensor) -> Tensor:
    """Eq. (8): w~(i) = sum_j w(j) s(i - j), with s indexed by shift -(K-1)/2 ... +(K-1)/2."""
    batch, n = w.shape
    k = s.shape[1]
    half = (k - 1) // 2
    out = torch.zeros_like(w)
    for b in range(batch):
        for i in range(n):
            total = torch.zeros((), dtype=w.dtype)
            for j in range(n):
                d = (i - j) % n  # the shift that carries row j to row i
                offset = d if d <= n // 2 else d - n  # as a signed shift
                if -half <= offset <= half:
                    total = total + w[b, j] * s[b, offset + half]
            out[b, i] = total
    return out


def sharpen(w: Tensor, gamma: Tensor) -> Tensor:
    """Eq. (9) literally: w^gamma / sum w^gamma."""
    out = torch.zeros_like(w)
    for b in range(w.shape[0]):
        powered = [w[b, i] ** gamma[b, 0] for i in range(w.shape[1])]
        total = sum(powered)
        for i in range(w.shape[1]):
            out[b, i] = powered[i] / total
    return out


def address(memory, w_prev, key, beta, g, s, gamma) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    w_c = content_weights(memory, key, beta)
    w_g = interpolate(w_c, w_prev, g)
    w_s = shift(w_g, s)
    return w_c, w_g, w_s, sharpen(w_s, gamma)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))
