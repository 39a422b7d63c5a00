"""Figures for the training-tricks ablation (chapter 27), drawn from its stored logs.

* :func:`ablation_curves` -- one small panel per variant: every seed's learning curve (cost per
  sequence, bits, against training sequences seen), over the baseline's seeds in grey.
* :func:`ablation_bars` -- the final cost per variant, one dot per seed and a bar at the median,
  with the fraction of seeds that converged written beside it.

Both take the ``(summary, curves)`` pair of
:func:`neural_memory.experiments.ablation.load_results` (plain dicts and lists, so a reader can
draw other logs of the same schema) and return what they drew on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from neural_memory.viz.common import PALETTE, new_axes

Curves = Mapping[str, Sequence[Mapping[str, float]]]


def _variants(summary: Mapping[str, Any], variants: Sequence[str] | None) -> list[str]:
    known = [v["name"] for v in summary["variants"]]
    present = {r["variant"] for r in summary["runs"].values()}
    names = [v for v in (variants or known) if v in present]
    unknown = sorted(set(variants or []) - present)
    if unknown:
        raise ValueError(f"no stored runs for variant(s) {unknown}; the logs hold {sorted(present)}")
    if not names:
        raise ValueError("the summary holds no runs to draw")
    return names


def _runs_of(summary: Mapping[str, Any], variant: str) -> list[str]:
    return sorted(k for k, r in summary["runs"].items() if r["variant"] == variant)


def ablation_curves(
    summary: Mapping[str, Any],
    curves: Curves,
    variants: Sequence[str] | None = None,
    baseline: str = "baseline",
    ncols: int = 5,
    axes: np.ndarray | None = None,
) -> np.ndarray:
    """Learning curves, one panel per variant, one line per seed (log-scale cost axis)."""
    names = _variants(summary, variants)
    if axes is None:
        nrows = math.ceil(len(names) / ncols)
        _, axes = new_axes(ncols=ncols, nrows=nrows, width=2.6, height=2.1, sharex=True, sharey=True)
    flat = np.asarray(axes).ravel()
    if len(flat) < len(names):
        raise ValueError(f"{len(names)} variants need {len(names)} axes; got {len(flat)}")
    threshold = summary.get("converged_below")
    for ax, name in zip(flat, names, strict=False):
        if name != baseline:
            for key in _runs_of(summary, baseline):
                rows = curves[key]
                ax.plot([r["sequences"] for r in rows], [r["cost_bits"] for r in rows],
                        color="0.75", lw=0.8)
        for i, key in enumerate(_runs_of(summary, name)):
            rows = curves[key]
            ax.plot([r["sequences"] for r in rows], [r["cost_bits"] for r in rows],
                    color=PALETTE[i % len(PALETTE)], lw=1.0)
        ax.set_yscale("log")
        ax.set_title(name.replace("_", " "), fontsize=9)
    for ax in flat[len(names):]:
        ax.set_visible(False)
    for ax in np.asarray(axes)[:, 0]:
        ax.set_ylabel("cost (bits/seq)")
    for ax in np.asarray(axes)[-1, :]:
        ax.set_xlabel("sequences")
    if threshold is not None:
        flat[0].figure.suptitle("training cost per seed (grey: the baseline's seeds)", fontsize=10)
    return axes


def ablation_bars(
    summary: Mapping[str, Any],
    variants: Sequence[str] | None = None,
    metric: str = "eval_cost_bits",
    ax: Axes | None = None,
) -> Axes:
    """Final ``metric`` per variant: a bar at the median over seeds, a dot per seed, and the
    fraction of seeds that converged at the right. Log-scale axis."""
    names = _variants(summary, variants)
    if ax is None:
        _, axes = new_axes(width=6.0, height=0.42 * len(names) + 0.8)
        ax = axes[0, 0]
    ys = np.arange(len(names))[::-1]
    for y, name in zip(ys, names, strict=True):
        runs = [summary["runs"][k] for k in _runs_of(summary, name)]
        values = np.array([r[metric] for r in runs], dtype=float)
        finite = values[np.isfinite(values)]
        if finite.size:
            ax.barh(y, np.median(finite), color=PALETTE[0], alpha=0.35, height=0.6)
            ax.plot(finite, np.full(finite.size, y), "o", color=PALETTE[0], ms=4)
        converged = sum(r["converged"] for r in runs)
        ax.annotate(f"{converged}/{len(runs)} converged", (1.01, y), xycoords=("axes fraction", "data"),
                    va="center", fontsize=8)
    ax.set_yticks(ys, [n.replace("_", " ") for n in names])
    ax.set_xscale("log")
    ax.set_xlabel("final cost (bits per sequence, fresh data)" if metric == "eval_cost_bits"
                  else metric.replace("_", " "))
    ax.grid(axis="y", visible=False)
    return ax
