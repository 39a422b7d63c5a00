r"""Figures for Part III: the tasks, learning curves, generalisation, and what the heads did.

* :func:`task_layout` draws one episode of a task: its input channels and its target channels
  over time, with the scored steps (the mask) shaded -- the picture each task module's docstring
  draws in ASCII.
* :func:`prediction_panel` puts a model's outputs :math:`\sigma(z_t)` under the targets, with the
  wrong bits marked.
* :func:`learning_curves` draws cost per sequence (bits) against sequences seen, one line per
  run, from training logs (the CSV files of ``python -m neural_memory.train``).
* :func:`generalisation_plot` draws a metric against the problem size (e.g. bit errors per
  sequence against copy length), one line per model, with the training range shaded.
* :func:`head_heatmaps` draws an NTM's read and write weightings over time, :math:`w_t(i)` as a
  (row, time) image, from an ``NTMTrace``.

Every function takes an optional ``ax``/``axes`` and returns what it drew on.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from matplotlib.axes import Axes

from neural_memory.viz.common import PALETTE, new_axes

Rows = Sequence[Mapping[str, Any]]


def _one_episode(x: torch.Tensor, name: str, index: int, dims: int) -> torch.Tensor:
    t = torch.as_tensor(x).detach().cpu().float()
    if t.dim() == dims + 1:
        if not 0 <= index < t.shape[0]:
            raise ValueError(f"index {index} is out of range for a batch of {t.shape[0]}")
        t = t[index]
    if t.dim() != dims:
        raise ValueError(
            f"{name} must have {dims} dims (or {dims + 1} with a batch axis), got shape {tuple(t.shape)}"
        )
    return t


def _shade_mask(ax: Axes, mask: torch.Tensor) -> None:
    """Shade the scored steps of a (T,) mask on an image whose x axis is time."""
    steps = mask.nonzero().flatten().tolist()
    if steps:
        ax.axvspan(steps[0] - 0.5, steps[-1] + 0.5, color=PALETTE[1], alpha=0.15, lw=0)


def _mark_mask(ax: Axes, mask: torch.Tensor) -> None:
    """Dashed lines where the scored steps of a (T,) mask begin and end (leaves colours alone)."""
    steps = mask.nonzero().flatten().tolist()
    if steps:
        for x in (steps[0] - 0.5, steps[-1] + 0.5):
            ax.axvline(x, color="white", ls="--", lw=1.0)


def _image(ax: Axes, data: torch.Tensor, title: str, ylabel: str, cmap: str = "Greys", vmin=0.0, vmax=1.0):
    im = ax.imshow(data.numpy(), aspect="auto", origin="upper", cmap=cmap, vmin=vmin, vmax=vmax,
                   interpolation="nearest")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(False)
    return im


def task_layout(
    inputs: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    index: int = 0,
    axes: Sequence[Axes] | None = None,
    title: str | None = None,
    input_labels: Sequence[str] | None = None,
) -> Sequence[Axes]:
    """Inputs ``(I, T)`` above targets ``(O, T)`` of one episode; scored steps shaded.

    Takes a batch ``(B, T, I)``, ``(B, T, O)``, ``(B, T)`` (episode ``index``) or one episode.
    Channels are rows, time runs left to right; values are drawn on a grey scale clipped to
    [-1, 1] for inputs (priorities and the normalised repeat count can be negative or > 1).
    """
    x = _one_episode(inputs, "inputs", index, 2)  # (T, I)
    y = _one_episode(targets, "targets", index, 2)  # (T, O)
    m = _one_episode(mask, "mask", index, 1)  # (T,)
    if not x.shape[0] == y.shape[0] == m.shape[0]:
        raise ValueError(f"inputs, targets and mask disagree on T: {x.shape[0]}, {y.shape[0]}, {m.shape[0]}")
    if axes is None:
        width = min(12.0, 3.0 + 0.15 * x.shape[0])
        _, grid = new_axes(1, 2, width=width, height=1.6, sharex=True)
        axes = grid[:, 0]
    _image(axes[0], x.T, title or "inputs", "input channel", cmap="RdGy_r", vmin=-1.0, vmax=1.0)
    _image(axes[1], y.T, "targets (scored steps shaded)", "output channel")
    for ax in axes[:2]:
        _shade_mask(ax, m)
    if input_labels is not None:
        axes[0].set_yticks(range(len(input_labels)), input_labels)
    axes[1].set_xlabel("time step t")
    return axes


def prediction_panel(
    targets: torch.Tensor,
    logits: torch.Tensor,
    mask: torch.Tensor,
    index: int = 0,
    axes: Sequence[Axes] | None = None,
    title: str | None = None,
) -> Sequence[Axes]:
    """Targets and the model's outputs ``sigmoid(logits)`` over the scored steps; wrong bits
    (output thresholded at 0.5 differs from the target) are marked with a red dot."""
    y = _one_episode(targets, "targets", index, 2)  # (T, O)
    z = _one_episode(logits, "logits", index, 2)  # (T, O)
    m = _one_episode(mask, "mask", index, 1).bool()  # (T,)
    if y.shape != z.shape:
        raise ValueError(f"targets {tuple(y.shape)} and logits {tuple(z.shape)} differ in shape")
    y, p = y[m], torch.sigmoid(z[m])  # (S, O) scored steps only
    if axes is None:
        _, grid = new_axes(1, 2, width=min(12.0, 3.0 + 0.2 * y.shape[0]), height=1.6, sharex=True)
        axes = grid[:, 0]
    _image(axes[0], y.T, title or "targets", "bit")
    _image(axes[1], p.T, "outputs $\\sigma(z_t)$", "bit")
    wrong = ((p > 0.5).float() != y).nonzero()
    if len(wrong):
        axes[1].scatter(wrong[:, 0], wrong[:, 1], s=12, color=PALETTE[3], marker="o")
    axes[1].set_xlabel("scored step")
    return axes


def read_log(path: str | Path) -> list[dict[str, float]]:
    """A training log (CSV: sequences, cost_bits, bit_errors, wall_seconds) as rows of floats."""
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def learning_curves(
    runs: Mapping[str, Rows | str | Path],
    metric: str = "cost_bits",
    ax: Axes | None = None,
    title: str | None = None,
    log_y: bool = False,
) -> Axes:
    """One line per run: ``metric`` per sequence against sequences seen (in thousands).

    ``runs`` maps a label to the rows of a training log or to the path of its CSV file.
    """
    if ax is None:
        _, grid = new_axes(width=5.0, height=3.2)
        ax = grid[0, 0]
    for i, (label, rows) in enumerate(runs.items()):
        rows = read_log(rows) if isinstance(rows, str | Path) else rows
        if not rows:
            raise ValueError(f"the log of run {label!r} has no rows")
        if metric not in rows[0]:
            raise ValueError(f"the log of run {label!r} has no column {metric!r}; it has {list(rows[0])}")
        xs = [float(r["sequences"]) / 1000 for r in rows]
        ax.plot(xs, [float(r[metric]) for r in rows], label=label, color=PALETTE[i % len(PALETTE)])
    ax.set_xlabel("sequences seen (thousands)")
    ax.set_ylabel({"cost_bits": "cost per sequence (bits)", "bit_errors": "bit errors per sequence"}.get(metric, metric))
    if log_y:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def generalisation_plot(
    results: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    xlabel: str = "sequence length",
    ylabel: str = "bit errors per sequence",
    training_range: tuple[float, float] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Axes:
    """One line per model: a metric against the problem size, on an axis from zero; the training
    range shaded."""
    if ax is None:
        _, grid = new_axes(width=5.0, height=3.2)
        ax = grid[0, 0]
    for i, (label, (xs, ys)) in enumerate(results.items()):
        if len(xs) != len(ys):
            raise ValueError(f"{label!r}: {len(xs)} sizes but {len(ys)} values")
        ax.plot(list(xs), list(ys), marker="o", ms=3, label=label, color=PALETTE[i % len(PALETTE)])
    if training_range is not None:
        ax.axvspan(*training_range, color=PALETTE[2], alpha=0.12, lw=0, label="training range")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)  # error counts and rates: an axis from zero does not exaggerate gaps
    if title:
        ax.set_title(title)
    ax.legend()
    return ax


def sweep_plot(
    sweep: Mapping[str, Sequence[Mapping[str, float]]],
    parameter: str,
    metric: str = "bit_errors",
    **kwargs: Any,
) -> Axes:
    """:func:`generalisation_plot` of a size sweep (``{label: rows}``, each row a size's metrics
    as ``neural_memory.experiments.comparison.generalisation`` returns them): ``metric``
    against ``parameter``."""
    results = {label: ([r[parameter] for r in rows], [r[metric] for r in rows])
               for label, rows in sweep.items()}
    if metric == "bit_error_rate":
        kwargs.setdefault("ylabel", "bit error rate")
    return generalisation_plot(results, **kwargs)


def head_heatmaps(
    trace: Any,
    index: int = 0,
    head: int = 0,
    axes: Sequence[Axes] | None = None,
    mask: torch.Tensor | None = None,
) -> Sequence[Axes]:
    """Write and read weightings of one head pair over time, each an (N, T) image.

    With ``mask``, dashed lines mark where the answer phase begins and ends.
    ``trace`` is an ``NTMTrace`` (``write_weights (B, T, W, N)``, ``read_weights (B, T, R, N)``);
    ``head`` picks the write and read head. Memory rows run down, time runs right; a sharp
    diagonal line is a head moving one row per step.
    """
    for name in ("write_weights", "read_weights"):
        if not hasattr(trace, name):
            raise ValueError(f"head_heatmaps needs an NTMTrace with {name}; got {type(trace).__name__}")
    w = _one_episode(trace.write_weights, "write_weights", index, 3)  # (T, W, N)
    r = _one_episode(trace.read_weights, "read_weights", index, 3)  # (T, R, N)
    if not (0 <= head < w.shape[1] and head < r.shape[1]):
        raise ValueError(f"head {head} is out of range: {w.shape[1]} write and {r.shape[1]} read heads")
    if axes is None:
        _, grid = new_axes(2, 1, width=4.0, height=3.2, sharey=True)
        axes = grid[0, :]
    for ax, data, label in ((axes[0], w[:, head], "write"), (axes[1], r[:, head], "read")):
        _image(ax, data.T, f"{label} weighting $w_t$ (head {head})", "memory row", cmap="viridis",
               vmin=0.0, vmax=float(max(data.max(), 1e-6)))
        if mask is not None:
            _mark_mask(ax, _one_episode(mask, "mask", index, 1))
        ax.set_xlabel("time step t")
    return axes
