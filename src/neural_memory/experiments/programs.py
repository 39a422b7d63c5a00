r"""What program did a trained NTM learn? One episode's heads, memory and outputs, measured.

Graves et al. (2014) read the learned algorithms off pictures of one episode (Figs. 6, 8, 11,
17): where the write head puts each input, how the read head moves, what is added and read.
This module extracts those quantities from a forward pass; :mod:`neural_memory.viz.programs`
draws them.

* :func:`episode_trace` runs a model once with ``return_trace=True`` and keeps one episode as an
  :class:`EpisodeTrace`: inputs, targets, outputs :math:`\sigma(z_t)`, the weightings
  :math:`w_t(i)`, the add vectors :math:`\mathbf{a}_t`, the read vectors :math:`\mathbf{r}_t`
  and the memory :math:`\mathbf{M}_t`.
* :func:`rows_in_use` finds the memory rows any head touches (so a figure can crop the
  :math:`N = 128` rows to the handful a program uses); :func:`circular_order` lists them the way
  the heads see them, the memory being a circle (row :math:`N-1` is next to row 0).
* :func:`head_locations` turns weightings into one location per head and step: the peak row
  and the weighting's mean row :math:`\bar\imath_t = \sum_i w_t(i)\, i`, taken around the peak
  on the circle so that a weighting straddling rows :math:`N-1` and 0 has a mean near them.
* Priority sort (Section 4.5): :func:`write_locations` (where each input went),
  :func:`priority_fit` (the paper's hypothesis that the write location is a linear function of
  the priority, Fig. 17: least squares, :math:`R^2` and Spearman's rank correlation),
  :func:`read_order` (whether the reads sweep the memory in one direction) and
  :func:`sort_baselines` (what guessing and a per-bit majority vote score).

Locations are "unwrapped": measured on the circle from a starting row ``origin`` (by default the
first row of :func:`circular_order`), so a head stepping from row :math:`N-1` to row 0 moves by
+1 and a location may exceed :math:`N-1`; its memory row is ``location % N``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from neural_memory.tasks.base import Batch
from neural_memory.tasks.metrics import scored_bits, sequence_bit_errors, sequence_cost_bits
from neural_memory.tasks.priority_sort import priority_sort_batch

__all__ = [
    "EpisodeTrace",
    "HeadLocations",
    "PriorityFit",
    "ReadOrder",
    "SortAnalysis",
    "circular_order",
    "episode_trace",
    "head_locations",
    "priority_fit",
    "rank_correlation",
    "read_order",
    "rows_in_use",
    "sort_analysis",
    "sort_baselines",
    "sort_statistics",
    "write_locations",
]


# ---------------------------------------------------------------------------------------------
# One episode
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpisodeTrace:
    """One episode of an NTM: what went in, what came out, and what the heads did.

    Attributes:
        inputs: ``(T, I)``.
        targets: ``(T, O)``.
        mask: ``(T,)``, 1 at the scored (answer) steps.
        outputs: ``(T, O)``, the model's :math:`\\sigma(z_t)`.
        read_weights: ``(T, R, N)``.
        write_weights: ``(T, W, N)``.
        adds: ``(T, W, M)``, each write head's add vector :math:`\\mathbf{a}_t`.
        erases: ``(T, W, M)``, each write head's erase vector :math:`\\mathbf{e}_t`.
        read_vectors: ``(T, R, M)``.
        memory: ``(T + 1, N, M)``, the initial memory first.
    """

    inputs: Tensor
    targets: Tensor
    mask: Tensor
    outputs: Tensor
    read_weights: Tensor
    write_weights: Tensor
    adds: Tensor
    erases: Tensor
    read_vectors: Tensor
    memory: Tensor

    @property
    def steps(self) -> int:
        """``T``."""
        return self.inputs.shape[0]

    @property
    def memory_rows(self) -> int:
        """``N``."""
        return self.memory.shape[1]

    @property
    def final_memory(self) -> Tensor:
        """``M_T``, ``(N, M)``: the memory after the last step."""
        return self.memory[-1]

    def answer_steps(self) -> list[int]:
        """The scored steps (where ``mask`` is 1), in order."""
        return self.mask.nonzero().flatten().tolist()

    def wrong_bits(self) -> Tensor:
        """``(T, O)`` bool: the scored bits the model got wrong (:math:`\\sigma(z) > 1/2`
        against the target, the rule of :func:`~neural_memory.tasks.metrics.sequence_bit_errors`)."""
        return ((self.outputs > 0.5).float() != self.targets) & self.mask.bool()[:, None]

    def bit_errors(self) -> int:
        """How many scored bits of the episode are wrong."""
        return int(self.wrong_bits().sum())


def episode_trace(model: torch.nn.Module, batch: Batch, index: int = 0) -> EpisodeTrace:
    """Run ``model`` (an NTM) on episode ``index`` of ``batch`` and keep everything it did.

    The model runs in evaluation mode without gradients (its mode is restored afterwards).
    ``batch`` is a task's :class:`~neural_memory.tasks.base.Batch` (``inputs (B, T, I)``,
    ``targets (B, T, O)``, ``mask (B, T)``).
    """
    inputs, targets, mask = batch
    if not 0 <= index < inputs.shape[0]:
        raise ValueError(f"index {index} is out of range for a batch of {inputs.shape[0]}")
    x = inputs[index : index + 1]  # (1, T, I)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits, trace = model(x, return_trace=True)
    finally:
        model.train(was_training)
    if trace is None or not hasattr(trace, "write_weights"):
        raise ValueError(
            f"episode_trace needs an NTM (a model with a memory trace); got {type(model).__name__}"
        )
    return EpisodeTrace(
        inputs=x[0].detach().float(),
        targets=targets[index].detach().float(),
        mask=mask[index].detach().float(),
        outputs=torch.sigmoid(logits[0]).float(),  # (T, O)
        read_weights=trace.read_weights[0].float(),  # (T, R, N)
        write_weights=trace.write_weights[0].float(),  # (T, W, N)
        adds=trace.heads.add[0].float(),  # (T, W, M)
        erases=trace.heads.erase[0].float(),  # (T, W, M)
        read_vectors=trace.read_vectors[0].float(),  # (T, R, M)
        memory=trace.memory[0].float(),  # (T + 1, N, M)
    )


def _weights(trace: Any, name: str, index: int) -> Tensor:
    """``trace.<name>`` of one episode, ``(T, H, N)``; a leading batch axis picks ``index``."""
    if not hasattr(trace, name):
        raise ValueError(f"expected a trace with {name}; got {type(trace).__name__}")
    w = torch.as_tensor(getattr(trace, name)).detach().float()
    if w.dim() == 4:
        w = w[index]
    if w.dim() != 3:
        raise ValueError(f"{name} must have shape (T, H, N) or (B, T, H, N), got {tuple(w.shape)}")
    return w


# ---------------------------------------------------------------------------------------------
# Rows in use
# ---------------------------------------------------------------------------------------------


def rows_in_use(trace: Any, threshold: float = 0.05, margin: int = 1, index: int = 0) -> list[int]:
    """The memory rows that any read or write weighting gives more than ``threshold``, sorted.

    Each such row is padded by ``margin`` rows on either side, on the circle (row 0 pads to
    row ``N - 1``). ``trace`` is an :class:`EpisodeTrace` or an ``NTMTrace`` (episode
    ``index`` of its batch). When no weight exceeds ``threshold``, every row is returned.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    read = _weights(trace, "read_weights", index)  # (T, R, N)
    write = _weights(trace, "write_weights", index)  # (T, W, N)
    n = read.shape[-1]
    peak = torch.maximum(read.amax(dim=(0, 1)), write.amax(dim=(0, 1)))  # (N,)
    touched = (peak > threshold).nonzero().flatten()
    if len(touched) == 0:
        return list(range(n))
    offsets = torch.arange(-margin, margin + 1)
    return sorted(set(((touched[:, None] + offsets) % n).flatten().tolist()))


def circular_order(rows: Sequence[int], memory_rows: int) -> list[int]:
    """``rows`` in the order a head moving +1 per step meets them, starting after the widest gap.

    The memory is a circle, so rows ``[0, 1, 2, 126, 127]`` of ``N = 128`` are one block and come
    out as ``[126, 127, 0, 1, 2]``.
    """
    ordered = sorted({int(r) % memory_rows for r in rows})
    if len(ordered) < 2:
        return ordered
    following = ordered[1:] + ordered[:1]
    gaps = [(b - a) % memory_rows for a, b in zip(ordered, following, strict=True)]
    start = (max(range(len(gaps)), key=lambda k: gaps[k]) + 1) % len(ordered)
    return ordered[start:] + ordered[:start]


# ---------------------------------------------------------------------------------------------
# Where the heads are
# ---------------------------------------------------------------------------------------------


class HeadLocations(NamedTuple):
    """One location per step and head: ``mean`` (float) and ``peak`` (int), both ``(S, H)``,
    unwrapped from ``origin`` (see the module docstring)."""

    mean: Tensor
    peak: Tensor


def _wrap(offset: Tensor, n: int) -> Tensor:
    """Offsets on a circle of ``n`` rows, mapped into ``[-n/2, n/2)``."""
    return (offset + n // 2) % n - n // 2


def head_locations(weights: Tensor, origin: int = 0) -> HeadLocations:
    """The peak row and the mean row of each weighting in ``weights (S, H, N)``.

    The mean is :math:`p + \\sum_i w(i)\\,\\mathrm{wrap}(i - p)` around the peak row ``p``, with
    offsets wrapped into ``[-N/2, N/2)``; both locations are then unwrapped from ``origin``, i.e.
    mapped into ``[origin, origin + N)``.
    """
    w = torch.as_tensor(weights).detach().float()
    if w.dim() != 3:
        raise ValueError(f"weights must have shape (S, H, N), got {tuple(w.shape)}")
    n = w.shape[-1]
    rows = torch.arange(n)
    peak = w.argmax(dim=-1)  # (S, H)
    offsets = _wrap(rows - peak[..., None], n).float()  # (S, H, N)
    mean = peak + (w * offsets).sum(-1) / w.sum(-1).clamp_min(1e-12)  # (S, H)
    return HeadLocations(
        mean=(mean - origin) % n + origin,
        peak=(peak - origin) % n + origin,
    )


def _origin(trace: Any, origin: int | None, index: int = 0, threshold: float = 0.05) -> int:
    """``origin``, or by default the first of the rows in use (no margin) in circular order."""
    if origin is not None:
        return int(origin)
    n = _weights(trace, "write_weights", index).shape[-1]
    return circular_order(rows_in_use(trace, threshold=threshold, margin=0, index=index), n)[0]


def _steps(steps: Sequence[int] | slice | range, total: int) -> list[int]:
    picked = list(range(total))[steps] if isinstance(steps, slice) else [int(s) for s in steps]
    if not picked or min(picked) < 0 or max(picked) >= total:
        raise ValueError(f"steps must be non-empty and within 0..{total - 1}, got {picked}")
    return picked


def write_locations(
    trace: Any, steps: Sequence[int] | slice | range, origin: int | None = None, index: int = 0
) -> HeadLocations:
    """Where each write head writes at the given ``steps``: ``mean`` and ``peak``, ``(S, W)``.

    For priority sort the steps are the input steps ``0 .. n-1``: the write at step ``t`` is
    where the controller, seeing input ``t``, puts it. ``origin`` defaults to the first row of
    the rows in use in circular order.
    """
    w = _weights(trace, "write_weights", index)  # (T, W, N)
    picked = _steps(steps, w.shape[0])
    return head_locations(w[picked], _origin(trace, origin, index))


# ---------------------------------------------------------------------------------------------
# Priority sort: a linear fit, rank correlation, read order, baselines
# ---------------------------------------------------------------------------------------------


def _pearson(x: Tensor, y: Tensor) -> float:
    dx, dy = x - x.mean(), y - y.mean()
    denominator = float((dx.square().sum() * dy.square().sum()).sqrt())
    return float((dx * dy).sum()) / denominator if denominator > 0 else 0.0


def rank_correlation(x: Tensor, y: Tensor) -> float:
    """Spearman's rank correlation: the Pearson correlation of the ranks (ties ranked by order)."""
    x, y = torch.as_tensor(x).flatten().double(), torch.as_tensor(y).flatten().double()
    if x.shape != y.shape or len(x) < 2:
        raise ValueError(f"need two sequences of the same length >= 2, got {len(x)} and {len(y)}")
    return _pearson(x.argsort().argsort().double(), y.argsort().argsort().double())


class PriorityFit(NamedTuple):
    """``location ~ slope * priority + intercept`` by least squares, its coefficient of
    determination ``r2`` and Spearman's rank correlation ``spearman``."""

    slope: float
    intercept: float
    r2: float
    spearman: float


def priority_fit(priorities: Tensor, locations: Tensor) -> PriorityFit:
    """Fit the write location as a linear function of the priority (paper Fig. 17).

    ``priorities`` and ``locations`` are 1-D of the same length ``n`` (one write head).
    ``r2 = 1 - SS_res / SS_tot`` (1 for points on a line, 0 when the priority explains nothing).
    """
    p = torch.as_tensor(priorities).detach().flatten().double()  # (n,)
    loc = torch.as_tensor(locations).detach().flatten().double()  # (n,)
    if p.shape != loc.shape or len(p) < 2:
        raise ValueError(
            f"priorities and locations must be 1-D of one length >= 2, got {len(p)} and {len(loc)}"
        )
    design = torch.stack([p, torch.ones_like(p)], dim=1)  # (n, 2)
    coef = torch.linalg.lstsq(design, loc[:, None]).solution[:, 0]  # (2,)
    residual = loc - design @ coef
    total = (loc - loc.mean()).square().sum()
    r2 = 1.0 - float(residual.square().sum() / total) if total > 0 else 0.0
    return PriorityFit(float(coef[0]), float(coef[1]), r2, rank_correlation(p, loc))


class ReadOrder(NamedTuple):
    """Read-head movement over some steps: ``locations (S, R)`` (mean rows, unwrapped),
    ``direction (R,)`` (+1 or -1, the way the head mostly moves), ``monotone (R,)``, the
    fraction of counted moves between consecutive steps that go that way by more than the
    tolerance, and ``speed (R,)``, its mean counted movement per step in that direction (rows;
    1 for a head that reads one row per step)."""

    locations: Tensor
    direction: Tensor
    monotone: Tensor
    speed: Tensor


def read_order(
    trace: Any,
    steps: Sequence[int] | slice | range | None = None,
    tolerance: float = 0.1,
    min_weight: float = 0.05,
    origin: int | None = None,
    index: int = 0,
) -> ReadOrder:
    """How monotonically each read head moves over ``steps`` (default: the answer steps).

    A move from one step to the next counts when the head's largest weight is at least
    ``min_weight`` at both (the mean row of a weighting spread over all rows says nothing); it
    is monotone when the mean read location moves by more than ``tolerance`` rows in the head's
    dominant direction (the sign of its total counted movement). A head reading the sorted
    items one after another scores 1; a head that stays put scores 0, as does a head with no
    counted move.
    """
    r = _weights(trace, "read_weights", index)  # (T, R, N)
    if steps is None:
        if not hasattr(trace, "answer_steps"):
            raise ValueError("read_order needs steps for a trace without a mask")
        steps = trace.answer_steps()
    picked = _steps(steps, r.shape[0])
    locations = head_locations(r[picked], _origin(trace, origin, index)).mean  # (S, R)
    focused = r[picked].amax(-1) >= min_weight  # (S, R)
    counted = (focused[1:] & focused[:-1]).float()  # (S - 1, R)
    moves = _wrap(locations.diff(dim=0), r.shape[-1]) * counted  # (S - 1, R)
    direction = torch.where(moves.sum(0) >= 0, 1, -1)  # (R,)
    along = moves * direction  # (S - 1, R), movement in the dominant direction
    total = counted.sum(0).clamp_min(1)  # (R,)
    monotone = ((along > tolerance).float() * counted).sum(0) / total
    return ReadOrder(locations, direction, monotone, along.sum(0) / total)


@dataclass(frozen=True)
class SortAnalysis:
    """One priority-sort episode analysed: the ``priorities (n,)``, the write ``locations``
    at the input steps (``(n, W)`` each), one :class:`PriorityFit` per write head (of the mean
    locations), the :class:`ReadOrder` over the answer steps, and the ``origin`` row the
    locations are unwrapped from."""

    priorities: Tensor
    locations: HeadLocations
    fits: tuple[PriorityFit, ...]
    reads: ReadOrder
    origin: int


def sort_analysis(trace: EpisodeTrace, priorities: Tensor, threshold: float = 0.05) -> SortAnalysis:
    """Write locations against priorities, and the read order, for one priority-sort episode.

    ``priorities`` is the episode's ``(n,)`` (the second value of
    :func:`~neural_memory.tasks.priority_sort.priority_sort_batch`, one row); the input steps
    are ``0 .. n-1``.
    """
    p = torch.as_tensor(priorities).detach().float().flatten()  # (n,)
    origin = _origin(trace, None, threshold=threshold)
    locations = write_locations(trace, range(len(p)), origin=origin)
    fits = tuple(priority_fit(p, locations.mean[:, h]) for h in range(locations.mean.shape[1]))
    return SortAnalysis(p, locations, fits, read_order(trace, origin=origin), origin)


class SortStatistics(NamedTuple):
    """Priority sort over many episodes: one :class:`PriorityFit` per write head of the row it
    writes each input to (its peak row) against the input's priority, all episodes pooled;
    ``best`` the write head whose rank correlation is largest in size; and for each read head
    the mean over episodes of :func:`read_order`'s ``monotone`` and ``speed`` over the answer
    steps, ``(R,)`` each."""

    fits: tuple[PriorityFit, ...]
    best: int
    read_monotone: Tensor
    read_speed: Tensor


@torch.no_grad()
def sort_statistics(model: torch.nn.Module, episodes: int = 200, seed: int = 0,
                    length: int = 20, outputs: int = 16) -> SortStatistics:
    """Where an NTM writes the inputs of ``episodes`` fresh priority-sort episodes, against
    their priorities (the paper's Fig. 17 test, pooled), and how its read heads move while it
    answers."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    generator = torch.Generator().manual_seed(seed)
    batch, priority = priority_sort_batch(episodes, length, outputs, generator)
    was_training = model.training
    model.eval()
    try:
        _, trace = model(batch.inputs, return_trace=True)
    finally:
        model.train(was_training)
    rows = trace.write_weights[:, :length].argmax(-1).double()  # (B, n, W)
    p = priority.double().flatten()  # (B * n,)
    fits = tuple(priority_fit(p, rows[..., h].flatten()) for h in range(rows.shape[-1]))
    best = max(range(len(fits)), key=lambda h: abs(fits[h].spearman))
    answer = range(length + 1, length + 1 + outputs)
    orders = [read_order(trace, steps=answer, index=b) for b in range(episodes)]
    return SortStatistics(fits, best, torch.stack([o.monotone for o in orders]).mean(0),
                          torch.stack([o.speed for o in orders]).mean(0))


def sort_baselines(
    n_episodes: int = 1000, seed: int = 0, length: int = 20, outputs: int = 16
) -> dict[str, float]:
    """Bit errors of two answers that need no memory of order, on fresh priority-sort episodes.

    * ``guess``: every output logit 0 (:math:`\\sigma = 0.5`), thresholded to all zeros, so
      each target 1 is an error: about half the target bits. Its cost is 1 bit per bit.
    * ``majority``: for each bit position, the majority bit of the ``outputs`` highest-priority
      inputs (the right set, in no order), the same vector at every answer step (a tie predicts
      0). With 16 outputs its expected error rate is
      :math:`E[\\min(K, 16 - K)] / 16 \\approx 0.40` for :math:`K \\sim \\mathrm{Bin}(16, 1/2)`.

    Returns ``{name}_bit_errors`` (per sequence) and ``{name}_bit_error_rate`` for both, plus
    ``guess_cost_bits`` and ``scored_bits`` (per sequence).
    """
    if n_episodes < 1:
        raise ValueError(f"n_episodes must be >= 1, got {n_episodes}")
    generator = torch.Generator().manual_seed(seed)
    (inputs, targets, mask), priority = priority_sort_batch(n_episodes, length, outputs, generator)
    width = targets.shape[-1]
    bits = scored_bits(targets, mask).sum()
    zero = torch.zeros_like(targets)  # logit 0 everywhere
    top = priority.argsort(dim=1, descending=True)[:, :outputs]  # (B, m)
    chosen = inputs[torch.arange(n_episodes)[:, None], top, :width]  # (B, m, 8)
    majority = chosen.sum(1) > outputs / 2  # (B, 8)
    vote = torch.where(majority, 1.0, -1.0)[:, None, :].expand_as(targets)  # (B, T, 8)
    result = {"scored_bits": float(bits / n_episodes),
              "guess_cost_bits": float(sequence_cost_bits(zero, targets, mask).mean())}
    for name, logits in (("guess", zero), ("majority", vote)):
        errors = sequence_bit_errors(logits, targets, mask)  # (B,)
        result[f"{name}_bit_errors"] = float(errors.mean())
        result[f"{name}_bit_error_rate"] = float(errors.sum() / bits)
    return result
