r"""Hard (one-hot) reads from a fixed memory, trained with the straight-through Gumbel-softmax.

A memory :math:`\mathbf M` holds :math:`N` rows, each a scalar (shape ``(N,)``) or a vector of
width :math:`M` (shape ``(N, M)``). A network emits ``logits`` of shape ``(B, N)``, one score per row.
The read is

.. math:: \mathbf r = \mathbf w^\top \mathbf M, \qquad
          \mathbf w = \begin{cases}
            \text{straight-through Gumbel-softmax}(\text{logits}, \tau) & \text{training (hard)} \\
            \text{one-hot}(\arg\max_i \text{logits}_i) & \text{evaluation (argmax)} \\
            \mathrm{softmax}(\text{logits}) & \text{soft mode (attention-like)}
          \end{cases}

(Jang et al. 2017, Sec. 2.2 for the straight-through sample). In the hard modes :math:`\mathbf w` is
exactly one-hot, so the read is exactly one row of the memory: in evaluation it is taken by
*indexing* (``memory[i]``), never by a matrix product, so every output is bit-for-bit a stored
value. In training the forward value of the one-hot product is also exactly a row
(``1 * m_i + 0 * m_j``), and the gradient reaches the logits through the soft sample.

Output shape: ``(B,)`` for a memory of shape ``(N,)`` and ``(B, M)`` for ``(N, M)`` -- the batch
axis replaces the row axis. (The source article returns ``(B, 1)`` for a 1-D memory; ``(B,)``
matches targets of shape ``(B,)`` without broadcasting surprises.)

:func:`best_piecewise_constant_fit` gives the best any hard reader can do on a regression target.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from neural_memory.gumbel import gumbel_softmax, sample_gumbel, validate_tau

__all__ = ["BestFit", "HardMemory", "best_piecewise_constant_fit"]

_MODES = ("hard", "soft")
_EVAL_MODES = ("argmax", "sample")


def _check_memory(memory: torch.Tensor) -> None:
    if not isinstance(memory, torch.Tensor):
        raise ValueError(f"memory must be a tensor of shape (N,) or (N, M), got {type(memory).__name__}")
    if memory.dim() not in (1, 2) or memory.shape[0] == 0:
        raise ValueError(f"memory must have shape (N,) or (N, M) with N >= 1, got {tuple(memory.shape)}")
    if not torch.is_floating_point(memory):
        raise ValueError(f"memory must be floating point, got dtype {memory.dtype}")


class HardMemory(nn.Module):
    """A fixed memory read one row at a time, with a trainable (straight-through) address.

    Args:
        memory: values of shape ``(N,)`` or ``(N, M)``; cloned into a buffer (the caller's tensor
            is never modified, and the copy follows ``.to(device/dtype)``).
        tau: Gumbel-softmax temperature used in training (settable; must be finite and > 0).
        mode: ``"hard"`` (one-hot reads) or ``"soft"`` (softmax-weighted average of rows, as in
            attention; same in training and evaluation, no noise).
        eval_mode: in evaluation with ``mode="hard"``: ``"argmax"`` (deterministic) or
            ``"sample"`` (a Gumbel-max sample, i.e. a row drawn from ``softmax(logits)``).

    Call it as ``mem(logits)`` or ``mem[logits]`` with logits of shape ``(B, N)``.
    """

    memory: torch.Tensor

    def __init__(
        self,
        memory: torch.Tensor,
        tau: float = 1.0,
        mode: str = "hard",
        eval_mode: str = "argmax",
    ) -> None:
        super().__init__()
        _check_memory(memory)
        self.register_buffer("memory", memory.detach().clone())
        self.tau = tau
        self.mode = mode
        self.eval_mode = eval_mode

    # -- settable attributes, validated ---------------------------------------------------------

    @property
    def tau(self) -> float:
        return self._tau

    @tau.setter
    def tau(self, value: float) -> None:
        self._tau = validate_tau(value)

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {value!r}")
        self._mode = value

    @property
    def eval_mode(self) -> str:
        return self._eval_mode

    @eval_mode.setter
    def eval_mode(self, value: str) -> None:
        if value not in _EVAL_MODES:
            raise ValueError(f"eval_mode must be one of {_EVAL_MODES}, got {value!r}")
        self._eval_mode = value

    @property
    def n_rows(self) -> int:
        return self.memory.shape[0]

    def extra_repr(self) -> str:
        return (
            f"memory_shape={tuple(self.memory.shape)}, tau={self.tau}, mode={self.mode!r}, "
            f"eval_mode={self.eval_mode!r}"
        )

    # -- memory swap ----------------------------------------------------------------------------

    def set_memory(self, new_memory: torch.Tensor) -> None:
        """Replace the stored values by ``new_memory`` of the same shape (cloned, moved to this device/dtype)."""
        _check_memory(new_memory)
        if new_memory.shape != self.memory.shape:
            raise ValueError(
                f"set_memory needs the current shape {tuple(self.memory.shape)} (the logits width is "
                f"fixed by the network), got {tuple(new_memory.shape)}"
            )
        self.memory = new_memory.detach().to(self.memory).clone()

    # -- reading --------------------------------------------------------------------------------

    def _check_logits(self, logits: torch.Tensor) -> None:
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise ValueError(f"logits must have shape (B, N) = (B, {self.n_rows}), got {shape}")
        if logits.shape[1] != self.n_rows:
            raise ValueError(
                f"logits must have one score per memory row: shape (B, {self.n_rows}), "
                f"got {tuple(logits.shape)}"
            )

    def read_index(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The row each example reads in evaluation, shape ``(B,)`` (argmax, or a Gumbel-max sample)."""
        self._check_logits(logits)
        if self.eval_mode == "sample":
            logits = logits + sample_gumbel(logits, generator=generator)  # (B, N)
        return logits.argmax(dim=1)  # (B,)

    def weights(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The weighting over rows used by the read, shape ``(B, N)``."""
        self._check_logits(logits)
        if self.mode == "soft":
            return F.softmax(logits, dim=1)  # (B, N)
        if self.training:
            return gumbel_softmax(logits, tau=self.tau, hard=True, dim=1, generator=generator)  # (B, N)
        index = self.read_index(logits, generator=generator)  # (B,)
        return F.one_hot(index, self.n_rows).to(logits.dtype)  # (B, N)

    def forward(self, logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Read: ``(B,)`` for a memory ``(N,)``, ``(B, M)`` for a memory ``(N, M)``."""
        self._check_logits(logits)
        if self.mode == "hard" and not self.training:
            return self.memory[self.read_index(logits, generator=generator)]  # (B,) or (B, M)
        w = self.weights(logits, generator=generator).to(self.memory.dtype)  # (B, N)
        return w @ self.memory  # (B,) or (B, M)

    def __getitem__(self, logits: torch.Tensor) -> torch.Tensor:
        return self(logits)


class BestFit(NamedTuple):
    """Result of :func:`best_piecewise_constant_fit`."""

    predictions: torch.Tensor  # targets' shape (scalar memory) or (..., M)
    indices: torch.Tensor  # (...,) long: the memory row chosen for each target


def best_piecewise_constant_fit(targets: torch.Tensor, memory_values: torch.Tensor) -> BestFit:
    r"""The best prediction that reads exactly one memory row per input, computed exactly.

    For each target :math:`t` it returns the nearest memory row,
    :math:`\hat y = m_{i^*}`, :math:`i^* = \arg\min_i \lVert t - m_i \rVert^2` (ties: lowest index),
    which minimises the squared error of each point separately, hence also the total.

    With a scalar memory of shape ``(N,)``, ``targets`` may have any shape; with ``(N, M)``,
    ``targets`` has shape ``(..., M)`` and the distance is the squared Euclidean one.

    Why the *true function* is the right target for noisy data: if :math:`y = f(x) + \varepsilon`
    with :math:`\mathbb E\varepsilon = 0` and variance :math:`\sigma^2`, then
    :math:`\mathbb E(y - m)^2 = \sigma^2 + (f(x) - m)^2`, minimised by the memory value nearest to
    :math:`f(x)`. So pass ``targets = f(x)``: the result is the best fit in expected MSE (the
    "Best Fit" of the article). Passing the noisy ``y`` instead gives the best fit *to those
    samples*, which no function of ``x`` alone can achieve in general.
    """
    _check_memory(memory_values)
    if not torch.isfinite(memory_values).all():
        raise ValueError("memory_values must be finite")
    mem = memory_values.to(targets.dtype) if torch.is_floating_point(targets) else memory_values
    if mem.dim() == 1:
        dist = (targets.unsqueeze(-1) - mem) ** 2  # (..., N)
    else:
        if targets.dim() == 0 or targets.shape[-1] != mem.shape[1]:
            raise ValueError(
                f"with a memory of shape (N, M) = {tuple(mem.shape)}, targets must have shape "
                f"(..., {mem.shape[1]}), got {tuple(targets.shape)}"
            )
        dist = ((targets.unsqueeze(-2) - mem) ** 2).sum(-1)  # (..., N)
    indices = dist.argmin(dim=-1)  # (...,)
    return BestFit(predictions=mem[indices], indices=indices)
