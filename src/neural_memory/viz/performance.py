r"""Figures for the "Performance and stability" appendix, drawn from stored benchmark results.

* :func:`throughput_figure` -- training and evaluation sequences per second against the batch
  size, one line per path (median over the repeats, the bar from the lowest to the highest).
* :func:`convergence_figure` -- every seed's running mean of training bit errors against the
  sequences seen, and each seed's sequences to converge against its worst running mean after
  converging.
* :func:`relapse_figure` -- the worst running mean after converging per seed, for two runs of the
  same seeds (with and without the bound on sharpening), and one seed's two learning curves.
* :func:`sharpening_figure` -- the weight a parked head keeps on its row after one step of shift
  and sharpening (eq. 8 and 9 of Graves et al., 2014), against its hold margin, for a few
  exponents $\gamma$.
* :func:`hold_margin_figure` -- quantiles of the read head's hold margin per seed, and how the
  thinnest margins and the answers read out of step changed over a run with and without the
  bound.

The data functions take what :mod:`neural_memory.experiments.performance` loads (plain dicts and
lists); every function returns the :class:`~matplotlib.figure.Figure` it drew.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from neural_memory.ntm.addressing import sharpen, shift
from neural_memory.viz.common import PALETTE, new_axes

Row = Mapping[str, Any]

#: how each throughput mode is labelled and drawn
MODES = {
    "eager": ("plain path", PALETTE[0], "o"),
    "fused": ("fused unroll", PALETTE[1], "s"),
    "compiled": ("compiled step", PALETTE[2], "^"),
}
CONVERGED_BELOW = 0.1  # bit errors per sequence: the benchmark's convergence threshold
RELAPSE_ABOVE = 1.0  # bit errors per sequence: a relapse after converging
FLOOR = 0.01  # running means are drawn on a log axis: values below this are drawn at it


def _draw_modes(ax, rows: Sequence[Row], kind: str, where: str, dashed: bool) -> None:
    for mode in sorted({r["mode"] for r in rows}, key=list(MODES).index):
        label, colour, marker = MODES[mode]
        mine = sorted((r for r in rows if r["mode"] == mode), key=lambda r: r["batch"])
        x = np.array([r["batch"] for r in mine], dtype=float)
        mid = np.array([r[kind]["median"] for r in mine])
        err = np.array([[m - r[kind]["min"] for m, r in zip(mid, mine, strict=True)],
                        [r[kind]["max"] - m for m, r in zip(mid, mine, strict=True)]])
        ax.errorbar(x, mid, yerr=err, color=colour, marker=marker, capsize=3,
                    linestyle="--" if dashed else "-", mfc="white" if dashed else colour,
                    label=f"{where}, {label}")


def throughput_figure(cpu: Sequence[Row], gpu: Sequence[Row] | None = None) -> Figure:
    """Sequences per second against the batch size: training (left) and evaluation (right).

    ``cpu`` and ``gpu`` are rows of
    :func:`~neural_memory.experiments.performance.throughput_rows`; the GPU's lines are dashed.
    Both axes are logarithmic."""
    if not cpu:
        raise ValueError("throughput_figure needs at least one CPU row")
    fig, axes = new_axes(ncols=2, width=4.4, height=3.4, sharey=True)
    for ax, kind, title in zip(axes[0], ("train", "eval"), ("training", "evaluation (no gradient)"),
                               strict=True):
        _draw_modes(ax, cpu, kind, "CPU core", dashed=False)
        if gpu:
            _draw_modes(ax, gpu, kind, "GPU", dashed=True)
        batches = sorted({r["batch"] for r in [*cpu, *(gpu or [])]})
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.minorticks_off()
        ax.set_xlabel("batch size")
        ax.set_title(title)
    axes[0, 0].set_ylabel("sequences per second")
    axes[0, 1].legend(fontsize=8, loc="lower right")
    return fig


def _curve(seed: Row) -> tuple[np.ndarray, np.ndarray]:
    c = np.array(seed["curve"], dtype=float)  # (rows, 3): sequences, seconds, running mean
    return c[:, 0] / 1000, np.maximum(c[:, 2], FLOOR)


def _thresholds(ax, converged: bool = True) -> None:
    lines = [(RELAPSE_ABOVE, PALETTE[3], "--", "relapse")]
    if converged:
        lines.append((CONVERGED_BELOW, "0.4", ":", "converged"))
    for y, colour, style, text in lines:
        ax.axhline(y, color=colour, lw=0.8, ls=style)
        ax.annotate(text, (1.0, y), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                    textcoords="offset points", ha="right", va="bottom", fontsize=7, color=colour)


def convergence_figure(seeds: Sequence[Row],
                       within_targets: Callable[[Row], bool] | None = None) -> Figure:
    """Left: every seed's running mean of training bit errors per sequence (last 500 sequences,
    logged every 1,000) against the sequences seen, with the convergence threshold (0.1, dotted)
    and the relapse threshold (1, dashed). Right: one dot per converged seed, its sequences to
    converge against the worst running mean after converging. With ``within_targets`` (e.g.
    :func:`neural_memory.experiments.performance.within_targets`), filled dots are the final
    models it accepts and open dots the others."""
    done = [s for s in seeds if s["converged"]]
    if not done:
        raise ValueError("convergence_figure needs at least one converged seed")
    fig, axes = new_axes(ncols=2, width=4.4, height=3.4)
    left, right = axes[0]
    for s in seeds:
        x, y = _curve(s)
        left.plot(x, y, color=PALETTE[0], lw=0.6, alpha=0.4)
    _thresholds(left)
    left.set_yscale("log")
    left.set_xlabel("training sequences (thousands)")
    left.set_ylabel("bit errors per sequence (running mean)")
    left.set_title(f"{len(seeds)} seeds, learning curves")

    x = np.array([s["sequences_to_converge"] for s in done]) / 1000
    y = np.array([s["worst_running_mean_after_converging"] for s in done])
    if within_targets is None:
        right.scatter(x, y, color=PALETTE[0], s=22)
    else:
        hit = np.array([bool(within_targets(s)) for s in done])
        right.scatter(x[hit], y[hit], color=PALETTE[0], s=22, label="final model within targets")
        right.scatter(x[~hit], y[~hit], facecolor="white", edgecolor=PALETTE[0], s=22,
                      label="final model misses targets")
        right.legend(fontsize=8, loc="upper right")
    _thresholds(right, converged=False)
    right.set_ylim(0, max(1.4, float(y.max()) * 1.4))  # room for the legend above the line
    right.set_xlabel("sequences to converge (thousands)")
    right.set_ylabel("worst running mean after converging")
    right.set_title("after converging")
    return fig


def relapse_figure(without: Sequence[Row], with_bound: Sequence[Row], seed: int = 0,
                   labels: tuple[str, str] = ("unbounded γ", "γ ≤ 2")) -> Figure:
    """Left: each seed's worst running mean after converging, in two runs (``without`` and
    ``with_bound``, seeds of :func:`~neural_memory.experiments.performance.load_seeds`), over
    the seeds both ran; above the dashed line (1 bit per sequence) the seed relapsed. Right: the
    learning curves of ``seed`` in both runs, with the learning-rate drop marked."""
    a = {s["seed"]: s for s in without}
    b = {s["seed"]: s for s in with_bound}
    common = sorted(set(a) & set(b))
    if not common:
        raise ValueError(f"the two runs share no seed ({sorted(a)} and {sorted(b)})")
    if seed not in common:
        raise ValueError(f"seed {seed} is not in both runs; they share {common}")
    fig, axes = new_axes(ncols=2, width=4.4, height=3.4)
    left, right = axes[0]
    x = np.arange(len(common))
    top = 0.0
    for offset, runs, label, colour, marker in ((-0.15, a, labels[0], PALETTE[3], "o"),
                                                (0.15, b, labels[1], PALETTE[0], "s")):
        worst = np.array([runs[k]["worst_running_mean_after_converging"] for k in common])
        relapsed = sum(bool(runs[k]["relapsed"]) for k in common)
        top = max(top, float(worst.max()))
        left.scatter(x + offset, worst, color=colour, marker=marker, s=20,
                     label=f"{label}: {relapsed} of {len(common)} relapse")
    _thresholds(left, converged=False)
    left.set_yscale("log")
    left.set_ylim(top=max(top, RELAPSE_ABOVE) * 8)  # room for the legend above the dots
    left.set_xticks(x, [str(k) for k in common], fontsize=7)
    left.set_xlabel("seed")
    left.set_ylabel("worst running mean after converging")
    left.set_title("every seed, tenfold drop")
    left.legend(fontsize=8, loc="upper left")

    for runs, label, colour in ((a, labels[0], PALETTE[3]), (b, labels[1], PALETTE[0])):
        s = runs[seed]
        cx, cy = _curve(s)
        right.plot(cx, cy, color=colour, lw=1.2,
                   label=f"{label} (worst after converging "
                         f"{s['worst_running_mean_after_converging']:.2f})")
        if s.get("lr_dropped_at"):
            right.axvline(s["lr_dropped_at"] / 1000, color=colour, lw=0.8, ls=":")
    _thresholds(right)
    right.set_yscale("log")
    right.set_xlabel("training sequences (thousands)")
    right.set_ylabel("bit errors per sequence (running mean)")
    right.set_title(f"seed {seed} (dotted: the step drops)")
    right.legend(fontsize=8, loc="lower left")
    return fig


def hold_weight(margin: torch.Tensor, gamma: float) -> torch.Tensor:
    r"""The weight a head parked on one row keeps there after one step of circular shift and
    sharpening, for a shift weighting that puts $(1 + m)/2$ on "stay" and $(1 - m)/2$ on "move
    by one" (hold margin $m$), with the library's :func:`~neural_memory.ntm.addressing.shift`
    and :func:`~neural_memory.ntm.addressing.sharpen`. ``margin`` has shape ``(B,)``."""
    margin = torch.as_tensor(margin, dtype=torch.float64)
    if margin.dim() != 1 or (margin.abs() > 1).any():
        raise ValueError(f"margin must be a 1-D tensor of values in [-1, 1], got {margin}")
    b, n = margin.shape[0], 8
    w = torch.zeros(b, n, dtype=torch.float64)  # (B, N): parked on row 0
    w[:, 0] = 1.0
    stay = (1 + margin) / 2
    s = torch.stack([torch.zeros_like(stay), stay, 1 - stay], dim=-1)  # (B, K=3): -1, 0, +1
    g = torch.full((b, 1), float(gamma), dtype=torch.float64)  # (B, 1)
    return sharpen(shift(w, s), g)[:, 0]  # (B,)


def sharpening_figure(gammas: Sequence[float] = (1.0, 2.0, 7.0)) -> Figure:
    """The weight kept on the parked row (:func:`hold_weight`) against the hold margin, one line
    per exponent; the dotted line marks a margin of 0."""
    margin = torch.linspace(-1, 1, 401, dtype=torch.float64)
    fig, axes = new_axes(width=4.4, height=3.2)
    ax = axes[0, 0]
    for i, gamma in enumerate(gammas):
        ax.plot(margin.numpy(), hold_weight(margin, gamma).numpy(), color=PALETTE[i % len(PALETTE)],
                lw=1.5, label=f"γ = {gamma:g}")
    ax.axvline(0, color="0.4", lw=0.8, ls=":")
    ax.set_xlabel("hold margin: stay weight − move weight")
    ax.set_ylabel("weight kept on the row")
    ax.set_title("one step of shift and sharpening")
    ax.legend(fontsize=8, loc="upper left")
    return fig


def hold_margin_figure(rows: Sequence[Row], pair_seeds: Sequence[int] = (0, 8),
                       bound: float = 2.5) -> Figure:
    """The read head's hold margins (rows of
    :func:`~neural_memory.experiments.performance.hold_margins`).

    Left: the unbounded models at the learning-rate drop, one column per seed, sorted by the 1%
    quantile, a bar from the 1% to the 50% quantile with the 5% marked; orange for seeds that
    went on to relapse. Middle: the 1% quantile at the drop and at the end of the run, for
    ``pair_seeds`` without and with the bound ``bound``. Right: the same for the answers read
    out of step (of 1,024 at length 20)."""
    free = [r for r in rows if r["gamma_max"] is None and r["moment"] == "drop"]
    if not free:
        raise ValueError("hold_margin_figure needs rows of unbounded models at the drop")
    fig, axes = new_axes(ncols=3, width=3.3, height=3.3)
    left, middle, right = axes[0]
    free.sort(key=lambda r: r["q01"])
    for i, r in enumerate(free):
        colour = PALETTE[3] if r["relapsed"] else PALETTE[0]
        left.vlines(i, r["q01"], r["q50"], color=colour, lw=2)
        left.scatter([i, i, i], [r["q01"], r["q05"], r["q50"]], color=colour, marker="_", s=120)
    left.axhline(0, color="0.4", lw=0.8, ls=":")
    left.set_xticks(range(len(free)), [str(r["seed"]) for r in free])
    left.set_xlabel("seed (orange: relapsed)")
    left.set_ylabel("hold margin: 1%, 5%, 50% quantiles")
    left.set_title("unbounded γ, at the drop")

    for ax, key, title in ((middle, "q01", "thinnest margins (1% quantile)"),
                           (right, "shifted", "answers out of step, of 1,024")):
        for j, seed in enumerate(pair_seeds):
            for gamma_max, colour, style in ((None, PALETTE[3], "--"), (bound, PALETTE[0], "-")):
                mine = {r["moment"]: r for r in rows if r["seed"] == seed and r["gamma_max"] == gamma_max}
                if set(mine) != {"drop", "end"}:
                    raise ValueError(f"no hold margins at the drop and the end for seed {seed} "
                                     f"with gamma_max={gamma_max}")
                label = f"seed {seed}, " + ("unbounded" if gamma_max is None else f"γ ≤ {gamma_max:g}")
                ax.plot([0, 1], [mine["drop"][key], mine["end"][key]], color=colour, ls=style,
                        marker="os"[j % 2], label=label)
        ax.set_xticks([0, 1], ["at the drop", "at the end"])
        ax.set_xlim(-0.3, 1.3)
        ax.set_title(title)
    middle.axhline(0, color="0.4", lw=0.8, ls=":")
    right.set_ylim(bottom=-0.8)
    right.legend(fontsize=7, loc="upper right")
    return fig
