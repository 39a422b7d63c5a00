r"""The write and read weightings (Graves et al., 2016, Methods, "Write weighting" and "Read
weighting").

Both mix weightings from the other modules under gates the controller emits:

* content $\mathbf{c}$ -- the NTM's content lookup (Graves et al., 2014, eqs. 5-6), which the
  DNC paper writes $\mathcal{C}(M, \mathbf{k}, \beta)[i] = \exp(\beta\, \mathcal{D}(\mathbf{k},
  M[i, \cdot])) / \sum_j \exp(\beta\, \mathcal{D}(\mathbf{k}, M[j, \cdot]))$ with the cosine
  similarity $\mathcal{D}$; the DNC calls
  :func:`neural_memory.ntm.addressing.content_weights` for it;
* allocation $\mathbf{a}_t$ (:mod:`~neural_memory.dnc.allocation`);
* forward and backward $\mathbf{f}^i_t, \mathbf{b}^i_t$ (:mod:`~neural_memory.dnc.linkage`).

Write weighting, with allocation gate $g^a_t$ (allocate, or write by content) and write gate
$g^w_t$ (write at all, or not), both in $[0, 1]$:

$$\mathbf{w}^w_t = g^w_t \left[ g^a_t\, \mathbf{a}_t + (1 - g^a_t)\, \mathbf{c}^w_t \right].$$

Read weighting of read head $i$, with its *read modes* $\boldsymbol{\pi}^i_t$, a distribution over
three modes in the paper's order (backward, content, forward):

$$\mathbf{w}^{r,i}_t = \pi^i_t[1]\, \mathbf{b}^i_t + \pi^i_t[2]\, \mathbf{c}^{r,i}_t
+ \pi^i_t[3]\, \mathbf{f}^i_t$$

(indices 0, 1, 2 of a ``read_modes`` tensor). Both are weightings when their parts are. Pure
functions; shapes: ``B`` batch, ``N`` rows, ``R`` read heads.
"""

from __future__ import annotations

from torch import Tensor

from neural_memory.dnc._checks import (
    check_distribution,
    check_same_shape,
    check_tensor,
    check_unit_interval,
    check_weighting,
)

__all__ = ["READ_MODES", "read_weights", "write_weights"]

#: The read modes in the order of the last axis of ``read_modes``.
READ_MODES = ("backward", "content", "forward")


def write_weights(
    content: Tensor, allocation: Tensor, allocation_gate: Tensor, write_gate: Tensor
) -> Tensor:
    r"""Write weighting $\mathbf{w}^w_t = g^w [g^a \mathbf{a} + (1 - g^a) \mathbf{c}^w]$.

    Args:
        content: ``(B, N)`` the write head's content weighting $\mathbf{c}^w_t$.
        allocation: ``(B, N)`` the allocation weighting $\mathbf{a}_t$.
        allocation_gate: ``(B, 1)`` $g^a_t \in [0, 1]$.
        write_gate: ``(B, 1)`` $g^w_t \in [0, 1]$.

    Returns:
        ``(B, N)`` write weighting.
    """
    check_tensor(content, "content", "(B, N)")
    check_same_shape(allocation, "allocation", content, "content", "(B, N)")
    batch = content.shape[0]
    for gate, name in ((allocation_gate, "allocation_gate"), (write_gate, "write_gate")):
        check_tensor(gate, name, "(B, 1)")
        if gate.shape[0] != batch:
            raise ValueError(f"{name} must have shape (B, 1) = ({batch}, 1); got {tuple(gate.shape)}")
        check_unit_interval(gate, name)
    check_weighting(content, "content")
    check_weighting(allocation, "allocation")
    return _write_weights(content, allocation, allocation_gate, write_gate)


def _write_weights(
    content: Tensor, allocation: Tensor, allocation_gate: Tensor, write_gate: Tensor
) -> Tensor:
    return write_gate * (allocation_gate * allocation + (1 - allocation_gate) * content)  # (B, N)


def read_weights(content: Tensor, forward: Tensor, backward: Tensor, read_modes: Tensor) -> Tensor:
    r"""Read weightings $\mathbf{w}^{r,i} = \pi^i[1] \mathbf{b}^i + \pi^i[2] \mathbf{c}^{r,i} +
    \pi^i[3] \mathbf{f}^i$ of all read heads.

    Args:
        content: ``(B, R, N)`` the read heads' content weightings $\mathbf{c}^{r,i}_t$.
        forward: ``(B, R, N)`` forward weightings $\mathbf{f}^i_t$.
        backward: ``(B, R, N)`` backward weightings $\mathbf{b}^i_t$.
        read_modes: ``(B, R, 3)`` each head's distribution over (backward, content, forward).

    Returns:
        ``(B, R, N)`` read weightings.
    """
    check_tensor(content, "content", "(B, R, N)")
    check_same_shape(forward, "forward", content, "content", "(B, R, N)")
    check_same_shape(backward, "backward", content, "content", "(B, R, N)")
    check_tensor(read_modes, "read_modes", "(B, R, 3)")
    if read_modes.shape[:2] != content.shape[:2]:
        raise ValueError(
            f"read_modes must have shape (B, R, 3) = {(*content.shape[:2], 3)}, one "
            f"distribution per read head of content; got {tuple(read_modes.shape)}"
        )
    for x, name in ((content, "content"), (forward, "forward"), (backward, "backward")):
        check_weighting(x, name)
    check_distribution(read_modes, "read_modes")
    return _read_weights(content, forward, backward, read_modes)


def _read_weights(content: Tensor, forward: Tensor, backward: Tensor, read_modes: Tensor) -> Tensor:
    pi_b, pi_c, pi_f = read_modes.unsqueeze(-1).unbind(-2)  # (B, R, 1) each
    return pi_b * backward + pi_c * content + pi_f * forward  # (B, R, N)
