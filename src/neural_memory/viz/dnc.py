r"""Figures and widgets for Part V, the Differentiable Neural Computer (Graves et al., 2016).

Every picture of Part V is one call into this module:

* :func:`step_heatmaps` draws several quantities over time, each ``(T, N)`` (usage
  $\mathbf{u}_t$, allocation $\mathbf{a}_t$, write and read weightings), as heat maps with rows
  down and time to the right, on one colour scale.
* :func:`draw_allocation` draws one allocation update (Methods, "Dynamic memory allocation"):
  the previous usage $\mathbf{u}_{t-1}$, the retention $\boldsymbol{\psi}_t$ that the free gates
  leave, the new usage $\mathbf{u}_t$ and the allocation weighting $\mathbf{a}_t$, with the free
  list $\phi_t$ in the title; :func:`allocation_explorer` puts sliders on the usage and the free
  gates.
* :func:`link_heatmap` draws a link matrix $L$ (Methods, "Temporal memory linkage"), and
  :func:`draw_links` the links that one-hot writes in a given order leave, with a read head
  walking forwards through them; :func:`link_explorer` chooses the order and how many of its
  writes have happened.
* :func:`dnc_diagram` draws one time step of the assembled machine as a block diagram,
  :func:`draw_step` the weightings of one step of a :class:`~neural_memory.dnc.DNCTrace`, and
  :func:`trace_figure` a whole trace: usage, allocation, write and read weightings over time and
  the final link matrix.

Every number drawn comes from the library's functions (:mod:`neural_memory.dnc`). Inputs are a
single example (a leading batch axis of size 1 is dropped); anything else raises ``ValueError``.
Each widget's ``.result`` is the figure at its opening values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from neural_memory.viz.common import PALETTE, bar_weights, new_axes
from neural_memory.viz.diagram import (
    _CONTROLLER,
    _IO,
    _MEMORY,
    _arrow,
    _box,
    _canvas,
    _head,
    _memory_rows,
    _route,
)
from neural_memory.viz.ntm import _matrix, _vector, weights_over_time

__all__ = [
    "READ_STAGES",
    "WRITE_STAGES",
    "allocation_explorer",
    "dnc_diagram",
    "draw_allocation",
    "draw_links",
    "draw_step",
    "link_explorer",
    "link_heatmap",
    "step_heatmaps",
    "trace_figure",
]


# ---------------------------------------------------------------------------------------------
# Quantities over time
# ---------------------------------------------------------------------------------------------


def step_heatmaps(
    panels: Mapping[str, torch.Tensor],
    step_labels: Sequence[str] | None = None,
    title: str | None = None,
    vmax: float = 1.0,
    width: float = 3.0,
    height: float = 2.8,
) -> tuple[Figure, list[Axes]]:
    """Draw several ``(T, N)`` quantities side by side as heat maps: rows down, time right.

    All panels share one grey scale from 0 (white) to ``vmax`` (black), shown by one colour
    bar. ``step_labels`` (one per step) replace the numbers under the time axis of every
    panel. Returns the figure and its axes, left to right.
    """
    if not panels:
        raise ValueError("step_heatmaps needs at least one (T, N) panel, got none")
    data = {name: _matrix(x, name, "(T, N)") for name, x in panels.items()}  # each (T, N)
    shapes = {tuple(x.shape) for x in data.values()}
    if len(shapes) != 1:
        raise ValueError(f"all panels must have the same shape (T, N), got {sorted(shapes)}")
    steps = next(iter(shapes))[0]
    if step_labels is not None and len(step_labels) != steps:
        raise ValueError(f"step_labels must have one label per step ({steps}), got {len(step_labels)}")
    fig, grid = new_axes(ncols=len(data), width=width, height=height, sharey=True)
    axes = list(grid[0])
    for ax, (name, x) in zip(axes, data.items(), strict=True):
        weights_over_time(x, ax=ax, title=name, vmax=vmax)
        if step_labels is not None:
            ax.set_xticks(range(steps), step_labels, rotation=60, ha="right", fontsize=8)
            ax.set_xlabel("")
    for ax in axes[1:]:
        ax.set_ylabel("")
    fig.colorbar(axes[-1].images[0], ax=axes, label="value", shrink=0.9)
    if title:
        fig.suptitle(title)
    return fig, axes


# ---------------------------------------------------------------------------------------------
# Allocation
# ---------------------------------------------------------------------------------------------


def _heads(read_weights_prev: torch.Tensor | Sequence, n: int) -> torch.Tensor:
    """Previous read weightings as ``(R, N)`` (one row per read head)."""
    w = torch.as_tensor(read_weights_prev, dtype=torch.float64).detach().cpu()
    if w.dim() == 1:
        w = w.unsqueeze(0)
    if w.dim() != 2 or w.shape[1] != n:
        raise ValueError(
            f"read_weights_prev must have shape (R, N) with N = {n} rows, got shape {tuple(w.shape)}"
        )
    return w


def _allocation_update(
    usage_prev: torch.Tensor, read_weights_prev: torch.Tensor, free_gates: torch.Tensor,
    write_prev: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Retention, usage and allocation from the library, for one example (no batch axis)."""
    from neural_memory.dnc import allocation_weights, retention, usage

    psi = retention(free_gates[None], read_weights_prev[None])  # (1, N)
    u = usage(usage_prev[None], write_prev[None], psi)  # (1, N)
    return {"retention": psi[0], "usage": u[0], "allocation": allocation_weights(u)[0]}


def draw_allocation(
    usage_prev: torch.Tensor | Sequence[float],
    read_weights_prev: torch.Tensor | Sequence,
    free_gates: torch.Tensor | Sequence[float],
    write_prev: torch.Tensor | Sequence[float] | None = None,
) -> Figure:
    r"""One allocation update as four bar charts: $\mathbf{u}_{t-1}$, the retention
    $\boldsymbol{\psi}_t$, the usage $\mathbf{u}_t$ and the allocation weighting $\mathbf{a}_t$.

    ``usage_prev`` is ``(N,)``, ``read_weights_prev`` ``(R, N)`` (the rows each read head read
    at the previous step), ``free_gates`` ``(R,)``; ``write_prev`` ``(N,)`` is the previous
    write weighting (zeros if omitted). The title gives the free list $\phi_t$ (rows by
    ascending usage) and the total allocated weight, $1 - \prod_i u_t[i]$.
    """
    u_prev = _vector(usage_prev, "usage_prev")  # (N,)
    n = len(u_prev)
    reads = _heads(read_weights_prev, n)  # (R, N)
    gates = torch.as_tensor(free_gates, dtype=torch.float64).detach().cpu().reshape(-1)  # (R,)
    if len(gates) != reads.shape[0]:
        raise ValueError(
            f"free_gates must have one gate per read head ({reads.shape[0]}), got {len(gates)}"
        )
    write = torch.zeros(n, dtype=torch.float64) if write_prev is None else _vector(write_prev, "write_prev")
    if len(write) != n:
        raise ValueError(f"write_prev must have one entry per memory row ({n}), got {len(write)}")
    new = _allocation_update(u_prev, reads, gates, write)
    free_list = torch.sort(new["usage"], stable=True).indices.tolist()
    fig, grid = new_axes(ncols=4, width=2.6, height=2.4, sharey=True)
    axes = list(grid[0])
    bar_weights(u_prev, ax=axes[0], title="usage before $u_{t-1}$", color=PALETTE[0])
    bar_weights(new["retention"], ax=axes[1], title="retention $\\psi_t$", color=PALETTE[5])
    bar_weights(new["usage"], ax=axes[2], title="usage $u_t$", color=PALETTE[0])
    bar_weights(new["allocation"], ax=axes[3], title="allocation $a_t$", color=PALETTE[2])
    places = {row: rank for rank, row in enumerate(free_list, start=1)}
    axes[3].set_xticks(range(n), [f"{row}\n#{places[row]}" for row in range(n)])
    axes[3].set_xlabel("row, #place in $\\phi_t$")
    axes[0].set_ylabel("value")
    gates_text = ", ".join(f"{g:.2f}" for g in gates.tolist())
    fig.suptitle(
        f"free gates ({gates_text}); free list $\\phi_t$ = ({', '.join(map(str, free_list))}); "
        f"allocated in all: {float(new['allocation'].sum()):.3f}",
        fontsize=10,
    )
    return fig


def allocation_explorer(
    usage_prev: torch.Tensor | Sequence[float],
    read_weights_prev: torch.Tensor | Sequence,
    free_gates: torch.Tensor | Sequence[float],
    write_prev: torch.Tensor | Sequence[float] | None = None,
):
    """Widget: one slider per row's previous usage and per read head's free gate, redrawing
    :func:`draw_allocation` (the read weightings and the previous write stay fixed)."""
    from ipywidgets import FloatSlider, interactive

    u_prev = _vector(usage_prev, "usage_prev")
    reads = _heads(read_weights_prev, len(u_prev))
    gates = torch.as_tensor(free_gates, dtype=torch.float64).reshape(-1)
    if len(gates) != reads.shape[0]:
        raise ValueError(
            f"free_gates must have one gate per read head ({reads.shape[0]}), got {len(gates)}"
        )

    def slider(value: float, label: str) -> FloatSlider:
        return FloatSlider(value=round(float(value), 2), min=0.0, max=1.0, step=0.05,
                           description=label)

    controls = {f"u{i}": slider(v, f"u[{i}]") for i, v in enumerate(u_prev.tolist())}
    controls.update({f"f{h}": slider(g, f"f^{h + 1}") for h, g in enumerate(gates.tolist())})

    def update(**values: float) -> Figure:
        u = [values[f"u{i}"] for i in range(len(u_prev))]
        f = [values[f"f{h}"] for h in range(len(gates))]
        return draw_allocation(u, reads, f, write_prev)

    return interactive(update, **controls)


# ---------------------------------------------------------------------------------------------
# Temporal links
# ---------------------------------------------------------------------------------------------


def link_heatmap(
    link: torch.Tensor,
    ax: Axes | None = None,
    title: str | None = None,
    vmax: float | None = 1.0,
    annotate: bool | None = None,
    colorbar: bool = True,
) -> Axes:
    """Draw a link matrix ``(N, N)``: entry ``[i, j]`` (row ``i`` down, column ``j`` across)
    is how much row ``i`` was written right after row ``j``.

    White is 0, black ``vmax`` (``None``: the largest entry). ``annotate`` writes each nonzero
    entry's value on it (default: when ``N <= 10``).
    """
    L = _matrix(link, "link", "(N, N)")  # (N, N)
    if L.shape[0] != L.shape[1]:
        raise ValueError(f"link must be square (N, N), got shape {tuple(L.shape)}")
    n = L.shape[0]
    if ax is None:
        _, axes = new_axes(width=3.4, height=3.0)
        ax = axes[0, 0]
    top = float(L.max().clamp_min(1e-12)) if vmax is None else float(vmax)
    image = ax.imshow(L.numpy(), cmap="Greys", vmin=0.0, vmax=top, aspect="equal")
    ax.grid(False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("row $j$ (written before)")
    ax.set_ylabel("row $i$ (written after)")
    if annotate if annotate is not None else n <= 10:
        for i, j in (L > 0.005).nonzero().tolist():
            value = float(L[i, j])
            ax.text(j, i, f"{value:.2g}", ha="center", va="center", fontsize=7,
                    color="white" if value > 0.5 * top else "black")
    if colorbar:
        ax.figure.colorbar(image, ax=ax, label="link")
    if title:
        ax.set_title(title)
    return ax


def _check_order(order: Sequence[int], n: int) -> list[int]:
    rows = [int(r) for r in order]
    if not rows:
        raise ValueError("order must name at least one row, got none")
    bad = [r for r in rows if not 0 <= r < n]
    if bad:
        raise ValueError(f"order names rows outside 0..{n - 1}: {bad}")
    return rows


def _links_for_order(rows: Sequence[int], n: int) -> dict[str, torch.Tensor]:
    """One-hot writes to ``rows`` in turn through the library's linkage functions, then a read
    head that starts on the first row written and follows the forward weighting."""
    from neural_memory.dnc import directional_weights, link_matrix, precedence

    eye = torch.eye(n, dtype=torch.float64)
    link = torch.zeros(1, n, n, dtype=torch.float64)
    prec = torch.zeros(1, n, dtype=torch.float64)
    for row in rows:
        link = link_matrix(link, eye[row : row + 1], prec)  # (1, N, N), before the precedence
        prec = precedence(prec, eye[row : row + 1])  # (1, N)
    read = eye[rows[0]].reshape(1, 1, n)  # (1, R=1, N)
    walk = [read[0, 0]]
    for _ in range(len(rows) - 1):
        read, _ = directional_weights(link, read)  # the forward weighting
        walk.append(read[0, 0])
    return {"writes": eye[list(rows)], "link": link[0], "precedence": prec[0],
            "walk": torch.stack(walk)}  # fmt: skip


def draw_links(order: Sequence[int], n: int, writes: int | None = None) -> Figure:
    """One-hot writes to the rows in ``order`` (the first ``writes`` of them, default all),
    through the library's :func:`~neural_memory.dnc.link_matrix` and
    :func:`~neural_memory.dnc.precedence`; then a read head that starts on the first row
    written and takes the forward weighting $\\mathbf{f} = L \\mathbf{w}$ at every step.

    Three panels: the writes over time, the link matrix after them, the forward walk.
    """
    rows = _check_order(order, n)
    count = len(rows) if writes is None else int(writes)
    if not 1 <= count <= len(rows):
        raise ValueError(f"writes must be between 1 and {len(rows)}, got {writes!r}")
    done = rows[:count]
    result = _links_for_order(done, n)
    fig, grid = new_axes(ncols=3, width=3.3, height=3.0)
    axes = list(grid[0])
    weights_over_time(result["writes"], ax=axes[0], title="writes $w^w_t$ (one-hot)")
    axes[0].set_xticks(range(count), [str(r) for r in done])
    axes[0].set_xlabel("step $t$ (labelled with the row written)")
    link_heatmap(result["link"], ax=axes[1], title=f"link matrix $L_t$ after {count} writes")
    weights_over_time(result["walk"], ax=axes[2], title=f"reading forward from row {done[0]}")
    axes[2].set_xlabel("read step")
    fig.suptitle(f"rows written in the order {tuple(done)}")
    return fig


def link_explorer(orders: Mapping[str, Sequence[int]], n: int, order: str | None = None,
                  writes: int | None = None):
    """Widget: a write order (a dropdown over ``orders``) and how many of its writes have
    happened (a slider), redrawing :func:`draw_links`."""
    from ipywidgets import Dropdown, IntSlider, interactive

    names = list(orders)
    if not names:
        raise ValueError("orders must name at least one write order, got none")
    for name in names:
        _check_order(orders[name], n)
    start = names[0] if order is None else order
    if start not in orders:
        raise ValueError(f"order {start!r} is not one of {names}")
    longest = max(len(orders[name]) for name in names)
    count = len(orders[start]) if writes is None else int(writes)

    def update(order: str, writes: int) -> Figure:
        return draw_links(orders[order], n, min(writes, len(orders[order])))

    return interactive(
        update,
        order=Dropdown(options=names, value=start, description="order"),
        writes=IntSlider(value=count, min=1, max=longest, step=1, description="writes"),
    )


# ---------------------------------------------------------------------------------------------
# The assembled machine
# ---------------------------------------------------------------------------------------------

#: The write head's stages, in order, with the interface parameters each one takes.
WRITE_STAGES = (
    ("allocation", r"$f^i_t \rightarrow \mathbf{u}_t$"),
    ("content", r"$\mathbf{k}^w_t,\ \beta^w_t$"),
    ("gates", r"$g^a_t,\ g^w_t$"),
)
#: A read head's stages, in order, with the interface parameters each one takes.
READ_STAGES = (
    ("content", r"$\mathbf{k}^{r,i}_t,\ \beta^{r,i}_t$"),
    ("links", r"$L_t\ \rightarrow\ \mathbf{f}^i_t, \mathbf{b}^i_t$"),
    ("read modes", r"$\boldsymbol{\pi}^i_t$"),
)

def dnc_diagram(width: float = 12.0, height: float = 6.2) -> Figure:
    r"""One time step of the DNC (:class:`neural_memory.dnc.DNC`) as a block diagram.

    The controller turns $\mathbf{x}_t$ and the previous read vectors into $\mathbf{h}_t$, and
    one linear layer turns $\mathbf{h}_t$ into the interface vector $\boldsymbol{\xi}_t$. The
    write head (allocation, content, gates) writes first; the memory's bookkeeping (usage,
    precedence, links) is updated; then the read heads (content, links, read modes) read the
    memory just written. The output sees $\mathbf{h}_t$ and the new read vectors, which also
    go back to the controller at $t + 1$. Every box carries its name as a text artist with
    ``gid="box:<name>"``. Returns the figure.
    """
    fig, ax = _canvas(width, height)
    read_colour, write_colour = PALETTE[0], PALETTE[3]

    # input, controller, output
    _box(ax, 0.1, 3.0, 1.3, 1.0, "input", r"$\mathbf{x}_t$", face=_IO, size=10)
    _box(ax, 1.85, 2.6, 1.25, 1.8, "controller", "LSTM", face=_CONTROLLER, edge=PALETTE[0],
         size=10)
    _arrow(ax, (1.4, 3.5), (1.85, 3.5))
    _box(ax, 13.85, 5.95, 1.45, 1.0, "output", r"$\mathbf{y}_t$", face=_IO, size=10)

    # the interface vector feeds both heads: the write head first (1), the read heads after (2)
    frame = {"left": 3.6, "width": 6.8, "stage_w": 1.95, "pad": 0.2}  # x from 3.6 to 10.4
    _head(ax, 0.85, "1. write head", write_colour, WRITE_STAGES, **frame)
    _head(ax, 4.45, "2. read heads ($i = 1, \\dots, R$)", read_colour, READ_STAGES, **frame)
    controller_right = 1.85 + 1.25
    _arrow(ax, (controller_right, 4.0), (3.6, 5.15), r"$\boldsymbol{\xi}_t$", where=(3.15, 4.75),
           connection="arc3,rad=-0.2")
    _arrow(ax, (controller_right, 3.0), (3.6, 1.55), r"$\boldsymbol{\xi}_t$", where=(3.15, 2.25),
           connection="arc3,rad=0.2")
    _route(ax, [(2.47, 4.4), (2.47, 6.6), (13.85, 6.6)])
    ax.text(7.0, 6.6, r"$\mathbf{h}_t$", ha="center", va="center", fontsize=9.5, color="0.2",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6})

    # memory: N rows of width M, with the state the DNC keeps next to it
    mem_x, mem_y, mem_w, mem_h = 11.45, 1.9, 1.3, 2.8
    mem_right = mem_x + mem_w + 1.55
    _box(ax, mem_x - 0.3, mem_y - 0.15, mem_right - mem_x + 0.3, mem_h + 1.05, "memory", face=_MEMORY,
         edge=PALETTE[2], size=10.5, top=True)
    _memory_rows(ax, mem_x, mem_y, mem_w, mem_h)
    ax.text(mem_x + mem_w / 2, mem_y + mem_h + 0.3, r"$\mathbf{M}_t$ ($N \times M$)",
            ha="center", va="center", fontsize=9.5)
    ax.text(mem_x + mem_w + 0.12, mem_y + mem_h / 2,
            "usage\n$\\mathbf{u}_t$\n\nprecedence\n$\\mathbf{p}_t$\n\nlinks\n$L_t$",
            ha="left", va="center", fontsize=8.5)

    # write head to memory (erase, then add), memory to read heads (content and links)
    _arrow(ax, (10.4, 1.55), (mem_x - 0.3, 2.5),
           r"$\mathbf{w}^w_t,\ \mathbf{e}_t,\ \mathbf{v}_t$", where=(10.75, 1.1), colour=write_colour)
    ax.text(10.75, 0.62, "erase, then add", ha="center", va="center", fontsize=9,
            color=write_colour)
    _arrow(ax, (10.4, 5.15), (mem_x - 0.3, 4.3), r"$\mathbf{w}^{r,i}_t$", where=(10.8, 5.15),
           colour=read_colour)

    # read vectors: to the output now and to the controller at t + 1
    _route(ax, [(mem_right, 4.3), (14.55, 4.3), (14.55, 5.95)], colour=read_colour)
    ax.text(14.55, 5.1, "$\\mathbf{r}^i_t$", ha="center", va="center", fontsize=9.5,
            color=read_colour, bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6})
    _route(ax, [(mem_x + mem_w / 2, mem_y - 0.15), (mem_x + mem_w / 2, 0.2), (2.2, 0.2),
                (2.2, 2.6)], colour=read_colour, style="--")
    ax.text(6.9, 0.2, r"$\mathbf{r}^1_t, \dots, \mathbf{r}^R_t$ go back to the controller at step $t+1$",
            ha="center", va="center", fontsize=9.5, color=read_colour,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6})
    return fig


def _trace_field(trace: Any, name: str, index: int, dims: int) -> torch.Tensor:
    """One episode of a trace field, as a float64 tensor with ``dims`` axes."""
    if not hasattr(trace, name):
        raise ValueError(f"expected a DNCTrace with a {name!r} field; got {type(trace).__name__}")
    x = getattr(trace, name).detach().cpu().to(torch.float64)
    if not 0 <= index < x.shape[0]:
        raise ValueError(f"index {index} is out of range for a batch of {x.shape[0]}")
    x = x[index]
    if x.dim() != dims:
        raise ValueError(f"trace.{name} has an unexpected shape {tuple(getattr(trace, name).shape)}")
    return x


def draw_step(trace: Any, t: int, index: int = 0, head: int = 0) -> Figure:
    r"""The weightings of step ``t`` of a :class:`~neural_memory.dnc.DNCTrace` as bar charts.

    Top, the write head: usage $\mathbf{u}_t$, allocation $\mathbf{a}_t$, content
    $\mathbf{c}^w_t$ and the write weighting $\mathbf{w}^w_t$. Bottom, read head ``head``
    (counted from 0; the title counts from 1, as the paper does):
    content $\mathbf{c}^{r}_t$, backward $\mathbf{b}_t$, forward $\mathbf{f}_t$ and the read
    weighting $\mathbf{w}^r_t$. The titles give the gates and read modes that mixed them.
    """
    usage = _trace_field(trace, "usage", index, 2)  # (T, N)
    steps = usage.shape[0]
    if not 0 <= t < steps:
        raise ValueError(f"step t must be in 0..{steps - 1}, got {t}")
    reads = _trace_field(trace, "read_weights", index, 3)  # (T, R, N)
    if not 0 <= head < reads.shape[1]:
        raise ValueError(f"head must be in 0..{reads.shape[1] - 1}, got {head}")
    xi = trace.interface
    g_a = float(xi.allocation_gate[index, t, 0].detach())
    g_w = float(xi.write_gate[index, t, 0].detach())
    modes = xi.read_modes[index, t, head].detach().tolist()  # backward, content, forward
    top = {
        "usage $u_t$": usage[t],
        "allocation $a_t$": _trace_field(trace, "allocation", index, 2)[t],
        "write content $c^w_t$": _trace_field(trace, "write_content", index, 2)[t],
        f"write $w^w_t$ ($g^a$ = {g_a:.2f}, $g^w$ = {g_w:.2f})":
            _trace_field(trace, "write_weights", index, 3)[t, 0],
    }  # fmt: skip
    bottom = {
        f"read content $c^r_t$ ($\\pi$ = {modes[1]:.2f})":
            _trace_field(trace, "read_content", index, 3)[t, head],
        f"backward $b_t$ ($\\pi$ = {modes[0]:.2f})": _trace_field(trace, "backward", index, 3)[t, head],
        f"forward $f_t$ ($\\pi$ = {modes[2]:.2f})": _trace_field(trace, "forward", index, 3)[t, head],
        "read $w^r_t$": reads[t, head],
    }  # fmt: skip
    fig, grid = new_axes(ncols=4, nrows=2, width=3.0, height=2.3, sharey=True)
    for row, (panels, colour) in enumerate(((top, PALETTE[3]), (bottom, PALETTE[0]))):
        for ax, (name, w) in zip(grid[row], panels.items(), strict=True):
            bar_weights(w, ax=ax, title=name, color=colour)
            ax.title.set_fontsize(9)
        grid[row, 0].set_ylabel("write head" if row == 0 else f"read head {head + 1}")
    fig.suptitle(f"step t = {t}")
    return fig


def trace_figure(trace: Any, index: int = 0, title: str | None = None) -> tuple[Figure, list[Axes]]:
    """A whole :class:`~neural_memory.dnc.DNCTrace` of one episode: usage, allocation, the
    write weighting and each read head's weighting over time (rows down, time right), and the
    link matrix after the last step.

    Each heat map runs from 0 (white) to its own largest value (black), shown by its colour
    bar: an untrained machine's weightings are faint, and one scale for all would hide them.
    Returns the figure and its axes (unused grid cells are hidden).
    """
    panels = {
        "usage $u_t$": _trace_field(trace, "usage", index, 2),
        "allocation $a_t$": _trace_field(trace, "allocation", index, 2),
        "write weighting $w^w_t$": _trace_field(trace, "write_weights", index, 3)[:, 0],
    }
    reads = _trace_field(trace, "read_weights", index, 3)  # (T, R, N)
    for head in range(reads.shape[1]):
        panels[f"read weighting $w^{{r,{head + 1}}}_t$"] = reads[:, head]
    link = _trace_field(trace, "link", index, 3)[-1]  # (N, N)
    count = len(panels) + 1
    ncols = 3
    nrows = -(-count // ncols)
    fig, grid = new_axes(ncols=ncols, nrows=nrows, width=3.4, height=2.9)
    axes = list(grid.flatten())
    for ax, (name, x) in zip(axes, panels.items(), strict=False):
        top = float(x.max().clamp_min(1e-12))
        weights_over_time(x, ax=ax, title=name, vmax=top)
        fig.colorbar(ax.images[0], ax=ax)
    link_heatmap(link, ax=axes[len(panels)], vmax=None, annotate=False,
                 title=f"link matrix $L_t$ at t = {reads.shape[0] - 1}")
    for ax in axes[count:]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig, axes[:count]
