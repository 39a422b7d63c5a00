r"""Pictures of the program a trained NTM runs, in the style of Graves et al. (2014), Figs. 6-17.

* :func:`program_figure` draws one episode (an
  :class:`~neural_memory.experiments.programs.EpisodeTrace`) as the paper's Figs. 6 and 8 do:
  the inputs, targets and outputs on top; below them the add vectors :math:`\mathbf{a}_t`
  (write side) and read vectors :math:`\mathbf{r}_t` (read side), vector component against time;
  then the write and read weightings :math:`w_t(i)`, memory row against time, cropped to the
  rows in use; and the memory at the end, :math:`\mathbf{M}_T`, on the same rows.
* :func:`sort_program_figure` draws the priority-sort analysis
  (:class:`~neural_memory.experiments.programs.SortAnalysis`) as Fig. 17 does: each input's
  write location against its priority with the least-squares line and the rank correlation,
  and the read weightings over the answer steps.

Several heads of one kind are stacked in one panel, one block per head, each labelled. Rows
are drawn in the order a head moving +1 meets them (row :math:`N-1` before row 0 where a
program wraps around); a dotted line marks a jump between rows that are not neighbours. Every
heat map has a colour bar; a dashed orange line marks the first answer step.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import MaxNLocator

from neural_memory.experiments.programs import (
    EpisodeTrace,
    SortAnalysis,
    circular_order,
    rows_in_use,
)
from neural_memory.viz.common import PALETTE, style

ANSWER_COLOR = PALETTE[1]
WRONG_COLOR = PALETTE[3]


def _rows(
    trace: EpisodeTrace, rows: Sequence[int] | None, threshold: float, margin: int
) -> list[int]:
    n = trace.memory_rows
    if rows is None:
        return circular_order(rows_in_use(trace, threshold=threshold, margin=margin), n)
    picked = [int(r) for r in rows]
    if not picked or min(picked) < 0 or max(picked) >= n:
        raise ValueError(f"rows must be non-empty and within 0..{n - 1}, got {picked}")
    return picked


def _heads(heads: Sequence[int] | None, count: int, kind: str) -> list[int]:
    picked = list(range(count)) if heads is None else [int(h) for h in heads]
    if not picked or min(picked) < 0 or max(picked) >= count:
        raise ValueError(f"{kind} heads must be non-empty and within 0..{count - 1}, got {picked}")
    return picked


def _image(
    ax: Axes, data: torch.Tensor, cmap: str, vmin: float, vmax: float, label: str
) -> AxesImage:
    """``data (rows, columns)`` as an image, rows down, with a labelled colour bar."""
    image = ax.imshow(data.numpy(), aspect="auto", origin="upper", cmap=cmap, vmin=vmin, vmax=vmax,
                      interpolation="nearest")
    ax.grid(False)
    bar = ax.figure.colorbar(image, ax=ax, fraction=0.04, pad=0.01)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)
    return image


def _symmetric(*tensors: torch.Tensor) -> float:
    return max(max(float(t.abs().max()) for t in tensors), 1e-6)


def _mark_answer(ax: Axes, trace: EpisodeTrace) -> None:
    steps = trace.answer_steps()
    if steps:
        ax.axvline(steps[0] - 0.5, color=ANSWER_COLOR, ls="--", lw=1.2)


def _time_axis(ax: Axes, steps: int, label: bool) -> None:
    ax.set_xlim(-0.5, steps - 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if label:
        ax.set_xlabel("time step t")
    else:
        ax.tick_params(labelbottom=False)


def _stack(
    ax: Axes,
    blocks: Sequence[torch.Tensor],
    names: Sequence[str],
    labels: Sequence[str],
    cmap: str,
    vmin: float,
    vmax: float,
    bar_label: str,
    gaps: Sequence[int] = (),
    dark: bool = True,
    max_ticks: int = 24,
) -> AxesImage:
    """Blocks of equal height (one per head), stacked top to bottom, each named in its corner.

    ``labels`` name the rows of one block (ticks are thinned to about ``max_ticks`` in all);
    ``gaps`` are positions inside a block before which a dotted line is drawn.
    """
    height = blocks[0].shape[0]
    image = _image(ax, torch.cat(list(blocks), dim=0), cmap, vmin, vmax, bar_label)
    every = max(1, int(np.ceil(height * len(blocks) / max_ticks)))
    last = height - every // 2  # no tick right above the next block's first
    ticks = [b * height + k for b in range(len(blocks)) for k in range(0, max(last, 1), every)]
    ax.set_yticks(ticks, [labels[t % height] for t in ticks], fontsize=7 if len(ticks) > 12 else 8)
    line = "white" if dark else "0.4"
    for b in range(len(blocks)):
        if b > 0:
            ax.axhline(b * height - 0.5, color=line, lw=2.0)
        for g in gaps:
            ax.axhline(b * height + g - 0.5, color=line, lw=0.8, ls=":")
        if len(blocks) > 1:
            ax.text(0.005, b * height - 0.4, names[b], transform=ax.get_yaxis_transform(), va="top",
                    ha="left", fontsize=7, bbox={"boxstyle": "round,pad=0.15", "fc": "white",
                                                 "ec": "none", "alpha": 0.8})
    return image


def _gaps(rows: Sequence[int], n: int) -> list[int]:
    """Positions ``k`` where ``rows[k]`` does not follow ``rows[k - 1]`` on the circle."""
    return [k for k in range(1, len(rows)) if (rows[k] - rows[k - 1]) % n != 1]


def program_figure(
    trace: EpisodeTrace,
    rows: Sequence[int] | None = None,
    threshold: float = 0.05,
    margin: int = 1,
    write_heads: Sequence[int] | None = None,
    read_heads: Sequence[int] | None = None,
    memory: bool = True,
    weight_vmax: float | None = None,
    title: str | None = None,
) -> Figure:
    """Draw one episode of an NTM as the paper's Figs. 6 and 8: what it saw, did and stored.

    Left column (write side): inputs, add vectors, write weightings. Right column (read side):
    targets and outputs (wrong bits marked with a dot), read vectors, read weightings. With
    ``memory``, the final memory's rows in use stand at the right of the weightings.

    ``rows`` are the memory rows to draw, in order (default: :func:`rows_in_use` with
    ``threshold`` and ``margin``, in circular order). ``write_heads`` and ``read_heads`` pick the
    heads (default all). Weightings share one colour scale from 0 to ``weight_vmax`` (default:
    the largest weight drawn).
    """
    if not isinstance(trace, EpisodeTrace):
        raise ValueError("program_figure expects an EpisodeTrace (see episode_trace); "
                         f"got {type(trace).__name__}")
    n, steps, width = trace.memory_rows, trace.steps, trace.adds.shape[-1]
    shown = _rows(trace, rows, threshold, margin)
    writers = _heads(write_heads, trace.write_weights.shape[1], "write")
    readers = _heads(read_heads, trace.read_weights.shape[1], "read")
    stack = max(len(writers), len(readers))

    row_labels = [str(r) for r in shown]
    vector_labels = [str(j) for j in range(width)]
    gaps = _gaps(shown, n)
    write_blocks = [trace.write_weights[:, h, shown].T for h in writers]  # each (rows, T)
    read_blocks = [trace.read_weights[:, h, shown].T for h in readers]  # each (rows, T)
    top = weight_vmax or max(float(torch.cat(write_blocks + read_blocks).max()), 1e-6)

    io = max(trace.inputs.shape[1], trace.targets.shape[1])
    heights = [io, io, 0.5 * min(stack * width, 50), min(max(stack * len(shown), 14), 80)]
    layout = [["inputs", "targets"], ["inputs", "outputs"], ["adds", "reads"], ["write", "read"]]
    widths = [1.0, 1.0]
    if memory:
        layout = [row + [name] for row, name in zip(layout, [".", ".", ".", "memory"], strict=True)]
        widths.append(0.45)
    style()
    column = min(7.0, 2.2 + 0.16 * steps)
    fig = plt.figure(figsize=(column * sum(widths), min(12.0, 2.4 + 0.07 * sum(heights))),
                     layout="constrained")
    axes = fig.subplot_mosaic(layout, height_ratios=heights, width_ratios=widths,
                              empty_sentinel=".")

    vmax_in = max(1.0, float(trace.inputs.abs().max()))
    _image(axes["inputs"], trace.inputs.T, "RdGy", -vmax_in, vmax_in, "input value")
    axes["inputs"].set_title("inputs")
    axes["inputs"].set_ylabel("input channel")
    _image(axes["targets"], trace.targets.T, "Greys", 0.0, 1.0, "target bit")
    axes["targets"].set_title("targets")
    _image(axes["outputs"], trace.outputs.T, "Greys", 0.0, 1.0, "$\\sigma(z_t)$")
    axes["outputs"].set_title("outputs $\\sigma(z_t)$ (wrong bits marked)")
    wrong = trace.wrong_bits().nonzero()
    if len(wrong):
        axes["outputs"].scatter(wrong[:, 0], wrong[:, 1], s=10, color=WRONG_COLOR, zorder=3)
    for name in ("targets", "outputs"):
        axes[name].set_ylabel("output bit")

    adds = [trace.adds[:, h].T for h in writers]  # each (M, T)
    reads = [trace.read_vectors[:, h].T for h in readers]  # each (M, T)
    _stack(axes["adds"], adds, [f"write head {h}" for h in writers], vector_labels, "RdBu_r",
           -_symmetric(*adds), _symmetric(*adds), "add $a_t(j)$", dark=False,
           max_ticks=4 * len(adds))
    axes["adds"].set_title("adds $\\mathbf{a}_t$")
    axes["adds"].set_ylabel("component $j$")
    _stack(axes["reads"], reads, [f"read head {h}" for h in readers], vector_labels, "RdBu_r",
           -_symmetric(*reads), _symmetric(*reads), "read $r_t(j)$", dark=False,
           max_ticks=4 * len(reads))
    axes["reads"].set_title("reads $\\mathbf{r}_t$")
    axes["reads"].set_ylabel("component $j$")

    _stack(axes["write"], write_blocks, [f"write head {h}" for h in writers], row_labels,
           "viridis", 0.0, top, "weight $w_t(i)$", gaps)
    axes["write"].set_title(f"write weightings ({len(shown)} of {n} rows)")
    axes["write"].set_ylabel("memory row $i$")
    _stack(axes["read"], read_blocks, [f"read head {h}" for h in readers], row_labels,
           "viridis", 0.0, top, "weight $w_t(i)$", gaps)
    axes["read"].set_title(f"read weightings ({len(shown)} of {n} rows)")
    axes["read"].set_ylabel("memory row $i$")

    for name in ("inputs", "targets", "outputs", "adds", "reads", "write", "read"):
        _mark_answer(axes[name], trace)
        _time_axis(axes[name], steps, label=name in ("write", "read"))

    if memory:
        final = trace.final_memory[shown]  # (rows, M)
        _stack(axes["memory"], [final], ["memory"], row_labels, "RdBu_r", -_symmetric(final),
               _symmetric(final), "$M_T(i, j)$", gaps, dark=False)
        axes["memory"].set_title("memory at the end")
        axes["memory"].set_xlabel("column $j$")
    if title:
        fig.suptitle(title)
    return fig


def _row_position(locations: np.ndarray, rows: Sequence[int], origin: int, n: int) -> np.ndarray:
    """Unwrapped locations (measured from ``origin``) as positions in a block of ``rows``."""
    unwrapped = np.array([(r - origin) % n + origin for r in rows], dtype=float)
    order = np.argsort(unwrapped, kind="stable")
    return np.interp(locations, unwrapped[order], order.astype(float))


def sort_program_figure(
    trace: EpisodeTrace,
    analysis: SortAnalysis,
    write_heads: Sequence[int] | None = None,
    read_heads: Sequence[int] | None = None,
    rows: Sequence[int] | None = None,
    threshold: float = 0.05,
    margin: int = 1,
    title: str | None = None,
) -> Figure:
    """Draw a priority-sort episode as the paper's Fig. 17: where inputs were written, how the
    answer was read.

    Left: each input's mean write location against its priority, one colour per write head,
    with the least-squares line; the title gives Spearman's rank correlation (and :math:`R^2`
    for one head). A program that sorts by writing to a location set by the priority puts the
    points on a line. Right: the read weightings over the answer steps, cropped to the rows in
    use, with each read head's mean location as dots (where its largest weight exceeds
    ``threshold``); a head reading the sorted inputs one
    after another draws a staircase.
    """
    if not isinstance(trace, EpisodeTrace) or not isinstance(analysis, SortAnalysis):
        raise ValueError(
            "sort_program_figure expects an EpisodeTrace and its SortAnalysis (see sort_analysis)"
        )
    n = trace.memory_rows
    writers = _heads(write_heads, len(analysis.fits), "write")
    readers = _heads(read_heads, trace.read_weights.shape[1], "read")
    shown = _rows(trace, rows, threshold, margin)
    answer = trace.answer_steps()
    if len(answer) != analysis.reads.locations.shape[0]:
        raise ValueError(f"the analysis has {analysis.reads.locations.shape[0]} answer steps, "
                         f"the trace {len(answer)}")

    style()
    fig, grid = plt.subplots(1, 2, figsize=(11.0, 4.2), layout="constrained",
                             gridspec_kw={"width_ratios": [1.0, 1.1]})
    ax, image_ax = grid
    p = analysis.priorities.numpy()
    line = np.linspace(-1.0, 1.0, 2)
    for i, h in enumerate(writers):
        fit = analysis.fits[h]
        color = PALETTE[i % len(PALETTE)]
        ax.scatter(p, analysis.locations.mean[:, h].numpy(), s=16, color=color,
                   label=f"head {h}: $\\rho$ = {fit.spearman:.2f}, $R^2$ = {fit.r2:.2f}")
        ax.plot(line, fit.slope * line + fit.intercept, color=color, lw=1.0)
    ax.set_xlabel("priority")
    ax.set_ylabel("write location (row)")
    ax.yaxis.set_major_formatter(lambda y, _: f"{round(y) % n}")
    if len(writers) == 1:
        fit = analysis.fits[writers[0]]
        ax.set_title(f"write location vs priority\nSpearman $\\rho$ = {fit.spearman:.2f}, "
                     f"$R^2$ = {fit.r2:.2f}")
    else:
        rhos = ", ".join(f"{analysis.fits[h].spearman:.2f}" for h in writers)
        ax.set_title(f"write location vs priority\nSpearman $\\rho$ by head: {rhos}")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncol=min(3, len(writers)), frameon=False)

    blocks = [trace.read_weights[answer][:, h, shown].T for h in readers]  # each (rows, S)
    _stack(image_ax, blocks, [f"read head {h}" for h in readers], [str(r) for r in shown],
           "viridis", 0.0, max(float(torch.cat(blocks).max()), 1e-6), "weight $w_t(i)$",
           _gaps(shown, n))
    for b, h in enumerate(readers):
        where = _row_position(analysis.reads.locations[:, h].numpy(), shown, analysis.origin, n)
        sharp = (trace.read_weights[answer][:, h].amax(-1) > threshold).numpy()  # (S,)
        steps = np.arange(len(answer))
        image_ax.plot(steps[sharp], where[sharp] + b * len(shown), "o", ms=2.5, color=ANSWER_COLOR)
    image_ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    monotone = ", ".join(f"{float(analysis.reads.monotone[h]):.2f}" for h in readers)
    speed = ", ".join(f"{float(analysis.reads.speed[h]):.2f}" for h in readers)
    image_ax.set_title(f"read weightings over the answer ({len(shown)} of {n} rows)\n"
                       f"by head: monotone steps {monotone}\nrows moved per step {speed}",
                       fontsize=9)
    image_ax.set_xlabel("answer step (rank of the priority)")
    image_ax.set_ylabel("memory row $i$")
    if title:
        fig.suptitle(title)
    return fig
