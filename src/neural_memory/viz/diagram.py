r"""A block diagram of the Neural Turing Machine (Graves et al., 2014, Fig. 1 and section 3).

:func:`ntm_diagram` draws one time step $t$ of the machine that :class:`neural_memory.ntm.NTM`
implements, with the book's symbols:

* the **controller** reads the input $\mathbf{x}_t$ and the previous read vector
  $\mathbf{r}_{t-1}$ and emits $\mathbf{h}_t$;
* each **head** turns $\mathbf{h}_t$ into a weighting $\mathbf{w}_t$ over the $N$ memory rows
  through the four addressing stages, eqs. (5)-(9): content ($\mathbf{k}_t, \beta_t$),
  interpolation ($g_t$, with the previous weighting $\mathbf{w}_{t-1}$), shift
  ($\mathbf{s}_t$) and sharpening ($\gamma_t$);
* the **read head** reads $\mathbf{r}_t = \sum_i w_t(i)\,\mathbf{M}_t(i)$, eq. (2); the
  **write head** erases and adds with $\mathbf{e}_t, \mathbf{a}_t$, eqs. (3)-(4);
* the **output** $\mathbf{y}_t$ comes from $\mathbf{h}_t$ and, over the "Mealy" path, from the
  read vector $\mathbf{r}_t$ of the same step; $\mathbf{r}_t$ also goes back to the controller
  at step $t + 1$.

The figure is drawn with matplotlib patches and arrows on one axes in data coordinates; every
box carries its name as a text artist, so a test can find the boxes by their labels.
"""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.path import Path

from neural_memory.viz.common import PALETTE, new_axes

__all__ = ["STAGES", "ntm_diagram"]

#: The four addressing stages, in order, with the parameters each one takes.
STAGES = (
    ("content", r"$\mathbf{k}_t,\ \beta_t$"),
    ("interpolation", r"$g_t,\ \mathbf{w}_{t-1}$"),
    ("shift", r"$\mathbf{s}_t$"),
    ("sharpening", r"$\gamma_t$"),
)

_CONTROLLER, _HEAD, _STAGE, _MEMORY, _IO = "#DCE9F5", "#FDF0D5", "white", "#DDF2EA", "#EEEEEE"


def _box(ax: Axes, x: float, y: float, w: float, h: float, label: str, detail: str | None = None,
         face: str = "white", edge: str = "0.25", size: float = 10.0, weight: str = "bold",
         top: bool = False) -> FancyBboxPatch:
    """A rounded box with ``label`` (and ``detail`` under it) centred, or ``label`` at its top."""
    patch = FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.02,rounding_size=0.12",
                           facecolor=face, edgecolor=edge, linewidth=1.2)
    ax.add_patch(patch)
    if top:
        ax.text(x + 0.12, y + h - 0.1, label, ha="left", va="top", fontsize=size,
                fontweight=weight, gid=f"box:{label}")
    elif detail is None:
        ax.text(x + w / 2, y + h / 2, label, ha="center", va="center", fontsize=size,
                fontweight=weight, gid=f"box:{label}")
    else:
        ax.text(x + w / 2, y + h * 0.64, label, ha="center", va="center", fontsize=size,
                fontweight=weight, gid=f"box:{label}")
        ax.text(x + w / 2, y + h * 0.3, detail, ha="center", va="center", fontsize=size - 1)
    return patch


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], label: str | None = None,
           where: tuple[float, float] | None = None, colour: str = "0.2", style: str = "-",
           connection: str = "arc3", ha: str = "center", size: float = 9.5) -> FancyArrowPatch:
    """An arrow from ``start`` to ``end`` (data coordinates), with an optional label at ``where``."""
    arrow = FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=13, color=colour,
                            linewidth=1.3, linestyle=style, connectionstyle=connection,
                            shrinkA=0, shrinkB=0)
    ax.add_patch(arrow)
    if label is not None:
        x, y = where if where is not None else ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        ax.text(x, y, label, ha=ha, va="center", fontsize=size, color=colour,
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6})
    return arrow


def _route(ax: Axes, points: list[tuple[float, float]], colour: str = "0.2",
           style: str = "-") -> FancyArrowPatch:
    """An arrow along straight segments through ``points`` (data coordinates)."""
    codes = [Path.MOVETO] + [Path.LINETO] * (len(points) - 1)
    arrow = FancyArrowPatch(path=Path(points, codes), arrowstyle="-|>", mutation_scale=13,
                            color=colour, linewidth=1.3, linestyle=style)
    ax.add_patch(arrow)
    return arrow


def _head(ax: Axes, y: float, name: str, colour: str, stages=STAGES, left: float = 3.2,
          width: float = 7.4, stage_w: float = 1.55, pad: float = 0.25) -> tuple[float, float]:
    """A head's frame at height ``y`` with its ``stages`` (``(name, parameters)`` pairs; the
    NTM's four by default) inside, left to right, joined by arrows; returns the frame's left and
    right edge midpoints' x (its middle height is ``y + 0.85``)."""
    height, gap = 1.7, 0.27
    _box(ax, left, y, width, height, name, face=_HEAD, edge=colour, size=10.5, top=True)
    x = left + pad
    middle = y + 0.7
    for i, (stage, params) in enumerate(stages):
        _box(ax, x, y + 0.22, stage_w, 0.96, stage, params, face=_STAGE, edge="0.45", size=9.5,
             weight="normal")
        if i < len(stages) - 1:
            _arrow(ax, (x + stage_w + 0.02, middle), (x + stage_w + gap - 0.02, middle))
        x += stage_w + gap
    return left, left + width


def _canvas(width: float, height: float) -> tuple[Figure, Axes]:
    """A figure with one axis-free panel whose coordinates run over [0, 15.4] x [-0.35, 7.3],
    the frame both block diagrams are laid out in."""
    fig, axes = new_axes(width=width, height=height)
    ax = axes[0, 0]
    ax.set_xlim(0.0, 15.4)
    ax.set_ylim(-0.35, 7.3)
    ax.set_aspect("auto")
    ax.axis("off")
    return fig, ax


def _memory_rows(ax: Axes, x: float, y: float, w: float, h: float, rows: int = 8) -> None:
    """The memory drawn as ``rows`` white bars filling the rectangle ``(x, y, w, h)``."""
    for i in range(rows):
        ax.add_patch(Rectangle((x, y + i * h / rows), w, h / rows * 0.82,
                               facecolor="white", edgecolor=PALETTE[2], linewidth=0.8))


def ntm_diagram(width: float = 12.0, height: float = 6.2) -> Figure:
    """One time step of the NTM as a block diagram: controller, read and write heads with their
    four addressing stages, memory, output, and arrows for the data flow. Returns the figure."""
    fig, ax = _canvas(width, height)
    read_colour, write_colour = PALETTE[0], PALETTE[3]

    # input, controller, output
    _box(ax, 0.1, 3.0, 1.3, 1.0, "input", r"$\mathbf{x}_t$", face=_IO, size=10)
    _box(ax, 1.5 + 0.35, 2.6, 1.25, 1.8, "controller", "LSTM or\nfeed-\nforward",
         face=_CONTROLLER, edge=PALETTE[0], size=10)
    _arrow(ax, (1.4, 3.5), (1.85, 3.5))
    _box(ax, 13.85, 5.95, 1.45, 1.0, "output", r"$\mathbf{y}_t$", face=_IO, size=10)

    # the two heads, each: content -> interpolation -> shift -> sharpening
    read_left, read_right = _head(ax, 4.45, "read head", read_colour)
    write_left, write_right = _head(ax, 0.85, "write head", write_colour)
    controller_right = 1.85 + 1.25
    _arrow(ax, (controller_right, 4.0), (read_left, 5.15), r"$\mathbf{h}_t$", where=(3.0, 4.75),
           connection="arc3,rad=-0.2")
    _arrow(ax, (controller_right, 3.0), (write_left, 1.55), r"$\mathbf{h}_t$", where=(3.0, 2.25),
           connection="arc3,rad=0.2")
    _route(ax, [(2.47, 4.4), (2.47, 6.6), (13.85, 6.6)])
    ax.text(7.2, 6.6, r"$\mathbf{h}_t$", ha="center", va="center", fontsize=9.5, color="0.2",
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6})

    # memory: N rows of width M
    mem_x, mem_y, mem_w, mem_h = 11.6, 1.9, 1.5, 2.8
    _box(ax, mem_x - 0.15, mem_y - 0.15, mem_w + 0.3, mem_h + 1.05, "memory", face=_MEMORY,
         edge=PALETTE[2], size=10.5, top=True)
    _memory_rows(ax, mem_x, mem_y, mem_w, mem_h)
    ax.text(mem_x + mem_w / 2, mem_y + mem_h + 0.3, r"$\mathbf{M}_t$  ($N \times M$)",
            ha="center", va="center", fontsize=9.5)

    # heads to memory
    _arrow(ax, (read_right, 5.15), (mem_x - 0.15, 4.3), r"$\mathbf{w}^{r}_t$", where=(11.05, 5.0),
           colour=read_colour)
    _arrow(ax, (write_right, 1.55), (mem_x - 0.15, 2.5), r"$\mathbf{w}^{w}_t,\ \mathbf{e}_t,\ \mathbf{a}_t$",
           where=(11.1, 1.1), colour=write_colour)
    ax.text(11.1, 0.62, "erase, then add", ha="center", va="center", fontsize=9, color=write_colour)

    # read vector: to the output now (the "Mealy" path) and to the controller at t + 1
    _route(ax, [(mem_x + mem_w + 0.15, 4.3), (14.55, 4.3), (14.55, 5.95)], colour=read_colour)
    ax.text(14.55, 5.0, "$\\mathbf{r}_t$\n(Mealy\npath)", ha="center", va="center", fontsize=9.5,
            color=read_colour, bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6})
    _route(ax, [(mem_x + mem_w / 2, mem_y - 0.15), (mem_x + mem_w / 2, 0.2), (2.2, 0.2), (2.2, 2.6)],
           colour=read_colour, style="--")
    ax.text(6.9, 0.2, r"$\mathbf{r}_t$ goes back to the controller at step $t+1$",
            ha="center", va="center", fontsize=9.5, color=read_colour,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.6})
    return fig
