r"""Figures for Part IV: hard (one-hot) heads inside the NTM, against soft ones.

Hard heads (:mod:`neural_memory.ntm.hard`) replace a head's soft weighting $\mathbf{w}_t$ by a
one-hot sample $\mathbf{w}^{\mathrm{hard}}_t$; the *entropy* of a weighting,
$\mathcal{H}(\mathbf{w}) = -\sum_i w(i) \log_2 w(i)$ bits, measures how sharp it is (0 for one
row, $\log_2 N$ for all rows alike).

* :func:`soft_vs_hard` -- one soft weighting, a stack of its hard samples, and how often each
  row was drawn next to its weight (the Gumbel-max trick).
* :func:`gradient_per_step` -- the size of the gradient reaching each time step's input, one
  line per machine, with the steps where it is not finite marked.
* :func:`curves_by_variant` -- :func:`neural_memory.viz.ablation.ablation_curves` in one row
  (a panel per variant, a line per seed, over the soft seeds in grey).
* :func:`variant_curves` -- learning curves of several variants on one axes: a thin line per
  seed and a thick line at the median over seeds.
* :func:`generalisation_by_variant` -- a score (the bit error rate by default) at each size
  beyond training, a dot per seed and a line through the mean of each variant.
* :func:`entropy_by_variant` -- the entropy of the read and write weightings each variant used,
  and of the soft weighting before it was made one-hot, a dot per seed and a bar at the mean.
* :func:`phase_entropy` -- the mean entropies of a trace in the answer phase only (or outside
  it), in the schema of a run's scores.
* :func:`entropy_over_time` -- the entropy of each variant's read and write weightings at every
  step of one episode.
* :func:`heatmap_grid` -- write and read weightings of one episode, one column per variant, with
  :func:`neural_memory.viz.tasks.head_heatmaps`; :func:`pre_hard_weights` gives the soft
  weightings before hardening in the same form, and :func:`used_rows` the memory rows the
  heads of an episode used (to crop the heat maps).

The summary functions take the ``(summary, curves)`` pair of
:func:`neural_memory.experiments.hard.load_results` (plain dicts and lists: each run has
``variant``, ``seed``, ``beyond`` and ``entropy_bits``; the summary lists ``variants`` and
``beyond``). Every function returns what it drew on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, MaxNLocator

from neural_memory.ntm.hard import entropy_bits, trace_entropy
from neural_memory.viz.ablation import Curves, _runs_of, _variants, ablation_curves
from neural_memory.viz.common import PALETTE, bar_weights, new_axes
from neural_memory.viz.gumbel import plot_probs_vs_frequencies
from neural_memory.viz.tasks import _one_episode, head_heatmaps

__all__ = [
    "ENTROPY_KINDS",
    "curves_by_variant",
    "entropy_by_variant",
    "entropy_over_time",
    "generalisation_by_variant",
    "gradient_per_step",
    "heatmap_grid",
    "phase_entropy",
    "pre_hard_weights",
    "soft_vs_hard",
    "used_rows",
    "variant_colour",
    "variant_curves",
]

#: The entropy scores of a run (keys of ``run["entropy_bits"]``) and how they are labelled.
ENTROPY_KINDS = {
    "read": "read, used",
    "read_soft": "read, soft (before one-hot)",
    "write": "write, used",
    "write_soft": "write, soft (before one-hot)",
}


def _label(name: str) -> str:
    return name.replace("_", " ")


def variant_colour(summary: Mapping[str, Any], variant: str) -> str:
    """The colour of ``variant`` in every Part IV figure: its position in ``summary["variants"]``."""
    names = [v["name"] for v in summary["variants"]]
    if variant not in names:
        raise ValueError(f"unknown variant {variant!r}; the summary lists {names}")
    return PALETTE[names.index(variant) % len(PALETTE)]


def _ax(ax: Axes | None, width: float = 5.0, height: float = 3.2) -> Axes:
    if ax is None:
        _, grid = new_axes(width=width, height=height)
        ax = grid[0, 0]
    return ax


# ---------------------------------------------------------------------------- the operation


def soft_vs_hard(w: torch.Tensor | Sequence[float], samples: torch.Tensor,
                 axes: Sequence[Axes] | None = None, show: int | None = 40) -> Sequence[Axes]:
    """A soft weighting ``w`` ``(N,)``, the first ``show`` of its hard samples ``(S, N)`` (one
    per line of an image; ``None``: all), and the fraction of all ``S`` samples that picked
    each row beside ``w(i)``; three axes."""
    w = torch.as_tensor(w, dtype=torch.float64).detach().cpu()
    s = torch.as_tensor(samples, dtype=torch.float64).detach().cpu()
    if w.dim() != 1:
        raise ValueError(f"soft_vs_hard expects a weighting of shape (N,); got {tuple(w.shape)}")
    if s.dim() != 2 or s.shape[1] != w.shape[0]:
        raise ValueError(f"soft_vs_hard expects samples of shape (S, {w.shape[0]}); got {tuple(s.shape)}")
    if axes is None:
        _, grid = new_axes(3, 1, width=3.3, height=2.8)
        axes = grid[0, :]
    bar_weights(w, ax=axes[0], title="soft weighting $w$")
    shown = s if show is None else s[:show]
    axes[1].imshow(shown.numpy(), aspect="auto", cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes[1].set_title(f"{shown.shape[0]} hard samples " + r"$\mathbf{w}^{\mathrm{hard}}$")
    axes[1].set_xlabel("row")
    axes[1].set_ylabel("sample")
    axes[1].grid(False)
    plot_probs_vs_frequencies(w, s.mean(0), ax=axes[2], title=f"rows drawn in {s.shape[0]:,} samples",
                              labels=("$w(i)$", "fraction of samples"))
    axes[2].set_xlabel("row")
    return axes


def gradient_per_step(series: Mapping[str, Sequence[float]], ax: Axes | None = None,
                      title: str | None = None) -> Axes:
    """One line per machine: the gradient norm at each time step (log scale). Steps where it is
    infinite or NaN are drawn as crosses on the top edge of the axes."""
    ax = _ax(ax, width=6.0, height=3.2)
    if not series:
        raise ValueError("gradient_per_step needs at least one series")
    for i, (label, values) in enumerate(series.items()):
        g = np.asarray(values, dtype=float)
        if g.ndim != 1 or g.size == 0:
            raise ValueError(f"{label!r}: expected a non-empty 1-D sequence of norms; got shape {g.shape}")
        bad = ~np.isfinite(g)
        colour = PALETTE[i % len(PALETTE)]
        ax.plot(np.arange(g.size), np.where(bad, np.nan, g), marker="o", ms=3, color=colour, label=label)
        if bad.any():
            ax.plot(np.flatnonzero(bad), np.ones(int(bad.sum())), "x", color=colour, ms=7,
                    transform=ax.get_xaxis_transform(), clip_on=False,
                    label=f"{label}: not finite")
    ax.set_yscale("log")
    ax.set_xlabel("time step t")
    ax.set_ylabel(r"$\|\partial L / \partial \mathbf{x}_t\|$")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


# ---------------------------------------------------------------------------- the experiment


def variant_curves(
    summary: Mapping[str, Any],
    curves: Curves,
    variants: Sequence[str] | None = None,
    metric: str = "cost_bits",
    ax: Axes | None = None,
    mark_sequences: float | None = None,
    title: str | None = None,
) -> Axes:
    """Learning curves of several variants on one axes (log scale): a thin line per seed and a
    thick line at the median over the seeds (over the log rows all of them reached).
    ``mark_sequences`` draws a dotted vertical line there (e.g. where an anneal ends)."""
    names = _variants(summary, variants)
    ax = _ax(ax, width=6.0, height=3.6)
    for name in names:
        colour = variant_colour(summary, name)
        runs = [curves[k] for k in _runs_of(summary, name)]
        for rows in runs:
            if not rows:
                raise ValueError(f"a run of {name!r} has an empty log")
            if metric not in rows[0]:
                raise ValueError(f"the logs have no column {metric!r}; they have {list(rows[0])}")
            ax.plot([r["sequences"] / 1000 for r in rows], [r[metric] for r in rows],
                    color=colour, lw=0.6, alpha=0.45)
        n = min(len(rows) for rows in runs)
        xs = [runs[0][j]["sequences"] / 1000 for j in range(n)]
        median = np.median(np.array([[rows[j][metric] for j in range(n)] for rows in runs]), axis=0)
        ax.plot(xs, median, color=colour, lw=2.0, label=f"{_label(name)} ({len(runs)} seeds)")
    if mark_sequences is not None:
        ax.axvline(mark_sequences / 1000, color="0.3", ls=":", lw=1.0)
    ax.set_yscale("log")
    ax.set_xlabel("sequences seen (thousands)")
    ax.set_ylabel({"cost_bits": "cost per sequence (bits)",
                   "bit_errors": "bit errors per sequence"}.get(metric, metric))
    ax.set_title(title or "thin: each seed; thick: median over seeds")
    ax.legend(fontsize=8)
    return ax


def curves_by_variant(summary: Mapping[str, Any], curves: Curves, baseline: str = "soft",
                      variants: Sequence[str] | None = None) -> np.ndarray:
    """One panel per variant, a line per seed, over the ``baseline`` variant's seeds in grey:
    :func:`neural_memory.viz.ablation.ablation_curves` in one row, sequences in thousands."""
    names = _variants(summary, variants)
    axes = ablation_curves(summary, curves, variants=names, baseline=baseline, ncols=len(names))
    for ax in np.asarray(axes).ravel():
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}"))
    for ax in np.asarray(axes)[-1, :]:
        ax.set_xlabel("sequences (thousands)")
    axes[0, 0].figure.suptitle(f"training cost per seed (grey: the {_label(baseline)} seeds)", fontsize=10)
    return axes


def _beyond_sizes(summary: Mapping[str, Any]) -> tuple[str, list[int]]:
    beyond = summary.get("beyond") or {}
    if len(beyond) != 1:
        raise ValueError(f"expected one size parameter in summary['beyond']; got {dict(beyond)}")
    (parameter, values), = beyond.items()
    return parameter, list(values)


def generalisation_by_variant(
    summary: Mapping[str, Any],
    variants: Sequence[str] | None = None,
    metric: str = "bit_error_rate",
    ax: Axes | None = None,
    xlabel: str | None = None,
) -> Axes:
    """``metric`` (``bit_error_rate`` or ``bit_errors``) at each size of ``summary["beyond"]``:
    a dot per seed (spread a little sideways per variant) and a line through the mean."""
    names = _variants(summary, variants)
    parameter, sizes = _beyond_sizes(summary)
    ax = _ax(ax, width=6.0, height=3.4)
    step = min(np.diff(sizes)) if len(sizes) > 1 else 1.0
    for i, name in enumerate(names):
        colour = variant_colour(summary, name)
        runs = [summary["runs"][k] for k in _runs_of(summary, name)]
        offset = (i - (len(names) - 1) / 2) * 0.06 * step
        means = []
        for size in sizes:
            key = f"{parameter}={size}"
            missing = [r["seed"] for r in runs if key not in r["beyond"]]
            if missing:
                raise ValueError(f"runs of {name!r} (seeds {missing}) have no score at {key}")
            values = [r["beyond"][key][metric] for r in runs]
            ax.plot([size + offset] * len(values), values, "o", color=colour, ms=4, alpha=0.8)
            means.append(float(np.mean(values)))
        ax.plot([s + offset for s in sizes], means, "-", color=colour, lw=1.5, label=_label(name))
    ax.set_xticks(sizes)
    ax.set_xlabel(xlabel or parameter)
    ax.set_ylabel(metric.replace("_", " ") + (" (fraction of bits)" if metric == "bit_error_rate" else ""))
    ax.set_title("a dot per seed, a line through the mean")
    ax.legend(fontsize=8)
    return ax


def entropy_by_variant(
    summary: Mapping[str, Any],
    variants: Sequence[str] | None = None,
    ax: Axes | None = None,
    max_bits: float | None = None,
    title: str | None = None,
) -> Axes:
    """Mean entropy per step (bits) of the weightings each variant used and of the soft ones
    before hardening (:data:`ENTROPY_KINDS`): a bar at the mean over seeds, a dot per seed.
    ``max_bits`` (e.g. ``log2 N``) draws the entropy of the uniform weighting."""
    names = _variants(summary, variants)
    ax = _ax(ax, width=1.6 * len(names) + 2.0, height=3.4)
    kinds = list(ENTROPY_KINDS)
    width = 0.8 / len(kinds)
    for k, kind in enumerate(kinds):
        colour = PALETTE[[0, 5, 3, 1][k]]
        for i, name in enumerate(names):
            runs = [summary["runs"][key] for key in _runs_of(summary, name)]
            values = [r["entropy_bits"][kind] for r in runs]
            x = i + (k - (len(kinds) - 1) / 2) * width
            ax.bar(x, float(np.mean(values)), width=width * 0.9, color=colour, alpha=0.45,
                   label=ENTROPY_KINDS[kind] if i == 0 else None)
            ax.plot([x] * len(values), values, "o", color=colour, ms=3)
    if max_bits is not None:
        ax.axhline(max_bits, color="0.3", ls=":", lw=1.0)
        ax.annotate(f"uniform: {max_bits:.0f} bits", (0.0, max_bits), xycoords=("axes fraction", "data"),
                    xytext=(2, 2), textcoords="offset points", fontsize=8)
    ax.set_xticks(range(len(names)), [_label(n) for n in names])
    ax.set_ylabel("entropy per step (bits)")
    if title:
        ax.set_title(title)
    ax.grid(axis="x", visible=False)
    ax.legend(fontsize=7, loc="upper right")
    return ax


# ---------------------------------------------------------------------------- one episode


def pre_hard_weights(trace: Any) -> SimpleNamespace:
    """The soft weightings of a trace *before* hard heads made them one-hot, as an object with
    ``read_weights (B, T, R, N)`` and ``write_weights (B, T, W, N)`` (what
    :func:`~neural_memory.viz.tasks.head_heatmaps` draws); for soft heads they are the used ones."""
    for name in ("read_weights", "write_weights", "stages"):
        if not hasattr(trace, name):
            raise ValueError(f"pre_hard_weights needs an NTMTrace with {name}; got {type(trace).__name__}")
    soft = trace.stages.sharpened  # (B, T, H, N)
    r = trace.read_weights.shape[2]
    if soft.shape[2] != r + trace.write_weights.shape[2]:
        raise ValueError(f"the trace has {soft.shape[2]} heads in its stages but "
                         f"{r} + {trace.write_weights.shape[2]} read + write weightings")
    return SimpleNamespace(read_weights=soft[:, :, :r], write_weights=soft[:, :, r:])


def phase_entropy(trace: Any, mask: torch.Tensor, answer: bool = True) -> dict[str, float]:
    """Mean entropy (bits) per head and step of a trace's weightings over the steps of the
    answer phase (``mask`` ``(B, T)`` is 1; ``answer=False``: the other steps), for the keys of
    :data:`ENTROPY_KINDS`: ``read``/``write`` the weightings used, ``*_soft`` those before
    hardening. The same schema as a run's ``entropy_bits``, so the result can stand in for it
    in :func:`entropy_by_variant`."""
    pre_hard_weights(trace)  # a clear error for anything but an NTM trace
    m = torch.as_tensor(mask).bool()
    if m.shape != trace.read_weights.shape[:2]:
        raise ValueError(f"mask must have shape (B, T) = {tuple(trace.read_weights.shape[:2])}; "
                         f"got {tuple(m.shape)}")
    steps = m if answer else ~m  # (B, T)
    if not steps.any():
        raise ValueError(f"the mask selects no {'answer' if answer else 'input'} steps")
    return trace_entropy(trace, steps)


def entropy_over_time(
    traces: Mapping[str, Any],
    index: int = 0,
    head: int = 0,
    mask: torch.Tensor | None = None,
    axes: Sequence[Axes] | None = None,
    colours: Mapping[str, str] | None = None,
    what: str = "weighting",
) -> Sequence[Axes]:
    """The entropy (bits) of the write and of the read weighting at every step of one episode,
    one line per trace (labelled by its key); two axes. ``mask`` shades the scored steps;
    ``what`` names the weightings in the titles (e.g. for :func:`pre_hard_weights`)."""
    if not traces:
        raise ValueError("entropy_over_time needs at least one trace")
    if axes is None:
        _, grid = new_axes(2, 1, width=4.5, height=3.0, sharey=True)
        axes = grid[0, :]
    for i, (label, trace) in enumerate(traces.items()):
        colour = (colours or {}).get(label, PALETTE[i % len(PALETTE)])
        for ax, name in zip(axes, ("write_weights", "read_weights"), strict=False):
            w = _one_episode(getattr(trace, name), name, index, 3)  # (T, heads, N)
            if not 0 <= head < w.shape[1]:
                raise ValueError(f"head {head} is out of range: {name} has {w.shape[1]} heads")
            ax.plot(entropy_bits(w[:, head].double()).numpy(), color=colour, lw=1.3, label=_label(label))
    for ax, kind in zip(axes, ("write", "read"), strict=False):
        if mask is not None:
            steps = _one_episode(mask, "mask", index, 1).nonzero().flatten().tolist()
            if steps:
                ax.axvspan(steps[0] - 0.5, steps[-1] + 0.5, color=PALETTE[1], alpha=0.12, lw=0)
        ax.set_title(f"{kind} {what}: entropy per step", fontsize=10)
        ax.set_xlabel("time step t")
    axes[0].set_ylabel("entropy (bits)")
    axes[0].legend(fontsize=8)
    return axes


def used_rows(traces: Mapping[str, Any], index: int = 0, threshold: float = 0.01) -> tuple[int, int]:
    """The shortest run of memory rows, going round the memory (row ``N - 1`` is next to row 0,
    as for the NTM's shifts), that holds every row some read or write weighting of episode
    ``index`` gives at least ``threshold`` weight to, in any of ``traces``; returned as
    ``(first row, number of rows)``. ``(0, N)`` when nothing reaches the threshold."""
    if not traces:
        raise ValueError("used_rows needs at least one trace")
    hit = None
    for trace in traces.values():
        for name in ("write_weights", "read_weights"):
            w = _one_episode(getattr(trace, name), name, index, 3)  # (T, heads, N)
            rows = (w >= threshold).flatten(0, 1).any(dim=0)  # (N,)
            hit = rows if hit is None else hit | rows
    n = hit.numel()
    idx = hit.nonzero().flatten().tolist()
    if not idx:
        return 0, n
    if len(idx) == 1:
        return idx[0], 1
    gaps = [((idx[(i + 1) % len(idx)] - idx[i]) % n, i) for i in range(len(idx))]  # to the next used row
    gap, i = max(gaps)
    return idx[(i + 1) % len(idx)], n - gap + 1


def heatmap_grid(
    traces: Mapping[str, Any],
    index: int = 0,
    head: int = 0,
    mask: torch.Tensor | None = None,
    axes: np.ndarray | None = None,
    rows: tuple[int, int] | None = None,
) -> np.ndarray:
    """Write (top row) and read (bottom row) weightings of one episode, one column per trace
    (labelled by its key), each drawn by :func:`~neural_memory.viz.tasks.head_heatmaps`.
    ``mask`` marks the answer phase with dashed lines. ``rows = (first, count)`` (e.g. from
    :func:`used_rows`) draws only ``count`` memory rows from ``first`` on, going round the
    memory, with the true row numbers on the axis. Returns the ``(2, len(traces))`` axes."""
    if not traces:
        raise ValueError("heatmap_grid needs at least one trace")
    n = next(iter(traces.values())).write_weights.shape[-1]
    if rows is not None:
        first, count = rows
        if not (0 <= first < n and 1 <= count <= n):
            raise ValueError(f"rows must be (first, count) with 0 <= first < {n} and 1 <= count <= {n}; "
                             f"got {rows!r}")
        traces = {k: SimpleNamespace(write_weights=torch.roll(t.write_weights, -first, dims=-1),
                                     read_weights=torch.roll(t.read_weights, -first, dims=-1))
                  for k, t in traces.items()}  # row `first` drawn at the top
    cols = len(traces)
    if axes is None:
        _, axes = new_axes(cols, 2, width=2.7, height=2.3, sharex=True, sharey=True)
    axes = np.asarray(axes)
    if axes.shape != (2, cols):
        raise ValueError(f"heatmap_grid needs axes of shape (2, {cols}); got {axes.shape}")
    for j, (label, trace) in enumerate(traces.items()):
        head_heatmaps(trace, index=index, head=head, axes=axes[:, j], mask=mask)
        axes[0, j].set_title(f"{_label(label)}\nwrite", fontsize=9)
        axes[1, j].set_title("read", fontsize=9)
        if j:
            for ax in axes[:, j]:
                ax.set_ylabel("")
        axes[0, j].set_xlabel("")
        if rows is not None:
            for ax in axes[:, j]:
                ax.set_ylim(count - 0.5, -0.5)  # row `first` on top, going down
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _, f=first: f"{(round(y) + f) % n}"))
    return axes

