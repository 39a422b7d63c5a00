r"""The interface vector: how the controller drives the memory (Graves et al., 2016, Methods,
"Interface parameters").

At each step the controller emits one vector $\boldsymbol{\xi}_t$ of
$MR + 3M + 5R + 3$ numbers ($M$ the row width, $R$ read heads, one write head), laid out as

$$\boldsymbol{\xi}_t = \bigl[\mathbf{k}^{r,1}_t; \dots; \mathbf{k}^{r,R}_t;\;
\hat\beta^{r,1}_t; \dots; \hat\beta^{r,R}_t;\; \mathbf{k}^w_t;\; \hat\beta^w_t;\;
\hat{\mathbf{e}}_t;\; \mathbf{v}_t;\; \hat f^1_t; \dots; \hat f^R_t;\; \hat g^a_t;\; \hat g^w_t;\;
\hat{\boldsymbol{\pi}}^1_t; \dots; \hat{\boldsymbol{\pi}}^R_t\bigr],$$

and each part is squashed into the range the equations need:

| parameter | per | size | activation | range |
|---|---|---|---|---|
| read key $\mathbf{k}^{r,i}$ | read head | $M$ | none | $\mathbb{R}^M$ |
| read strength $\beta^{r,i}$ | read head | 1 | oneplus | $[1, \infty)$ |
| write key $\mathbf{k}^w$ | | $M$ | none | $\mathbb{R}^M$ |
| write strength $\beta^w$ | | 1 | oneplus | $[1, \infty)$ |
| erase vector $\mathbf{e}$ | | $M$ | $\sigma$ | $[0, 1]^M$ |
| write vector $\mathbf{v}$ | | $M$ | none | $\mathbb{R}^M$ |
| free gate $f^i$ | read head | 1 | $\sigma$ | $[0, 1]$ |
| allocation gate $g^a$ | | 1 | $\sigma$ | $[0, 1]$ |
| write gate $g^w$ | | 1 | $\sigma$ | $[0, 1]$ |
| read modes $\boldsymbol{\pi}^i$ | read head | 3 | softmax | a distribution |

with $\mathrm{oneplus}(x) = 1 + \log(1 + e^x)$ and $\sigma$ the logistic sigmoid. The read modes
are in the order (backward, content, forward), as in the paper.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from neural_memory.dnc._checks import (
    TOLERANCE,
    check_distribution,
    check_tensor,
    check_unit_interval,
)

__all__ = ["DNCInterface", "check_interface", "interface_size", "oneplus", "parse_interface"]


class DNCInterface(NamedTuple):
    """The interface parameters after their activations (see the module docstring)."""

    read_keys: Tensor  # (B, R, M)
    read_strengths: Tensor  # (B, R, 1)
    write_key: Tensor  # (B, M)
    write_strength: Tensor  # (B, 1)
    erase: Tensor  # (B, M)
    write_vector: Tensor  # (B, M)
    free_gates: Tensor  # (B, R)
    allocation_gate: Tensor  # (B, 1)
    write_gate: Tensor  # (B, 1)
    read_modes: Tensor  # (B, R, 3): backward, content, forward


def oneplus(x: Tensor) -> Tensor:
    r"""$\mathrm{oneplus}(x) = 1 + \log(1 + e^x)$, in $[1, \infty)$ (the strengths' activation)."""
    return 1 + F.softplus(x)


def interface_size(memory_width: int, read_heads: int) -> int:
    """The length of the interface vector: ``M R + 3 M + 5 R + 3``."""
    return sum(_sizes(memory_width, read_heads))


def _sizes(m: int, r: int) -> list[int]:
    """Widths of the interface's parts, in the order of the layout above."""
    return [r * m, r, m, 1, m, m, r, 1, 1, 3 * r]


def parse_interface(raw: Tensor, memory_width: int, read_heads: int) -> DNCInterface:
    r"""Split the raw interface vector $\boldsymbol{\xi}_t$ and apply each part's activation.

    Args:
        raw: ``(B, MR + 3M + 5R + 3)`` the controller's interface output.
        memory_width: ``M``.
        read_heads: ``R``.

    Returns:
        :class:`DNCInterface`.
    """
    for value, name in ((memory_width, "memory_width"), (read_heads, "read_heads")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}")
    size = interface_size(memory_width, read_heads)
    check_tensor(raw, "raw", f"(B, {size})")
    return _parse_interface(raw, memory_width, read_heads)


def _parse_interface(raw: Tensor, m: int, r: int) -> DNCInterface:
    b = raw.shape[0]
    k_r, beta_r, k_w, beta_w, e, v, f, g_a, g_w, pi = raw.split(_sizes(m, r), dim=-1)
    return DNCInterface(
        read_keys=k_r.view(b, r, m),  # (B, R, M)
        read_strengths=oneplus(beta_r).unsqueeze(-1),  # (B, R, 1)
        write_key=k_w,  # (B, M)
        write_strength=oneplus(beta_w),  # (B, 1)
        erase=torch.sigmoid(e),  # (B, M)
        write_vector=v,  # (B, M)
        free_gates=torch.sigmoid(f),  # (B, R)
        allocation_gate=torch.sigmoid(g_a),  # (B, 1)
        write_gate=torch.sigmoid(g_w),  # (B, 1)
        read_modes=torch.softmax(pi.view(b, r, 3), dim=-1),  # (B, R, 3)
    )


def check_interface(interface: DNCInterface) -> None:
    """Raise ValueError unless every parameter has its shape and range (the table above):
    strengths ``>= 1``; gates and erase in ``[0, 1]``; read modes distributions over 3.

    :func:`parse_interface` guarantees all of this by construction; the check is for
    interfaces built by hand (in a notebook or a test).
    """
    if not isinstance(interface, DNCInterface):
        raise ValueError(f"expected a DNCInterface; got {type(interface).__name__}")
    check_tensor(interface.read_keys, "read_keys", "(B, R, M)")
    b, r, m = interface.read_keys.shape
    expected = {
        "read_strengths": (b, r, 1), "write_key": (b, m), "write_strength": (b, 1),
        "erase": (b, m), "write_vector": (b, m), "free_gates": (b, r),
        "allocation_gate": (b, 1), "write_gate": (b, 1), "read_modes": (b, r, 3),
    }  # fmt: skip
    for name, want in expected.items():
        got = tuple(getattr(interface, name).shape)
        if got != want:
            raise ValueError(f"{name} must have shape {want} (B, R, M = {b}, {r}, {m}); got {got}")
    for name in ("read_strengths", "write_strength"):
        x = getattr(interface, name)
        if not bool((x >= 1 - TOLERANCE).all()):
            raise ValueError(f"{name} must be >= 1 (oneplus); got a minimum of {x.min().item():.6g}")
    for name in ("erase", "free_gates", "allocation_gate", "write_gate"):
        check_unit_interval(getattr(interface, name), name)
    check_distribution(interface.read_modes, "read_modes")
