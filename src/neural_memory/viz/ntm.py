r"""Figures and widgets for Part II, the Neural Turing Machine (Graves et al. 2014).

Every picture of Part II is one call into this module:

* :func:`memory_heatmap` and :func:`memory_before_after` draw the memory matrix
  :math:`\mathbf{M} \in \mathbb{R}^{N \times M}` (rows on the vertical axis), before and after a
  write (Eqs. 3-4 of the paper).
* :func:`weighting_panel` draws several weightings :math:`\mathbf{w} \in \mathbb{R}^N` side by
  side, and :func:`addressing_panel` the four stages of addressing (Eqs. 5-9): the content
  weighting :math:`\mathbf{w}^c`, the gated :math:`\mathbf{w}^g`, the shifted
  :math:`\tilde{\mathbf{w}}` and the sharpened :math:`\mathbf{w}`.
* :func:`weights_over_time` and :func:`read_write_heatmaps` draw (T, N) weightings over time.
* The ``*_explorer`` functions build ipywidgets ``interactive`` objects whose sliders drive the
  library's addressing functions (:mod:`neural_memory.ntm.addressing`) and redraw. Each one's
  ``.result`` is the figure at the default slider values, so a notebook can show it statically.

Inputs are a single example: a weighting is (N,) and a memory (N, M); a leading batch axis of
size 1 is accepted and dropped. Anything else raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from neural_memory.viz.common import PALETTE, bar_weights, new_axes

STAGE_TITLES = (
    "content $w^c$",
    "gated $w^g$",
    "shifted $\\tilde{w}$",
    "sharpened $w$",
)


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _tensor(x: torch.Tensor | Sequence, name: str) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float64).detach().cpu()


def _vector(x: torch.Tensor | Sequence[float], name: str) -> torch.Tensor:
    """A weighting as a (N,) tensor; a leading batch axis of size 1 is dropped."""
    t = _tensor(x, name)
    if t.dim() == 2 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 1:
        raise ValueError(f"{name} must be a weighting of shape (N,) (or (1, N)), got shape {tuple(t.shape)}")
    return t


def _matrix(x: torch.Tensor | Sequence, name: str, shape: str) -> torch.Tensor:
    """A 2-D array (e.g. a memory (N, M) or weights over time (T, N)); a leading 1 is dropped."""
    t = _tensor(x, name)
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dim() != 2:
        raise ValueError(f"{name} must have shape {shape}, got shape {tuple(t.shape)}")
    return t


# ---------------------------------------------------------------------------------------------
# Memory
# ---------------------------------------------------------------------------------------------


def memory_heatmap(
    memory: torch.Tensor,
    ax: Axes | None = None,
    title: str | None = None,
    vmax: float | None = None,
    colorbar: bool = True,
) -> Axes:
    """Draw a memory matrix (N, M) as a heat map: row ``i`` at height ``i``, column ``j`` at ``x = j``.

    The colour scale is symmetric around 0 (memory entries can be negative); ``vmax`` fixes its
    end so that two heat maps drawn with the same ``vmax`` can be compared by colour.
    """
    mem = _matrix(memory, "memory", "(N, M)")  # (N, M)
    if ax is None:
        _, axes = new_axes()
        ax = axes[0, 0]
    vmax = float(mem.abs().max().clamp_min(1e-12)) if vmax is None else float(vmax)
    image = ax.imshow(mem.numpy(), cmap="RdBu_r", vmin=-vmax, vmax=vmax, aspect="auto")
    ax.grid(False)
    ax.set_xlabel("column $j$")
    ax.set_ylabel("row $i$")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    if colorbar:
        ax.figure.colorbar(image, ax=ax)
    if title:
        ax.set_title(title)
    return ax


def memory_before_after(
    before: torch.Tensor,
    after: torch.Tensor,
    w: torch.Tensor | None = None,
    title: str | None = None,
) -> tuple[Figure, list[Axes]]:
    """Draw a write: [the write weighting,] the memory before, after, and the change (after - before).

    ``before`` and ``after`` are (N, M); ``w`` (N,) is drawn as horizontal bars aligned with the
    rows. Before and after share one colour scale. Returns the figure and its axes, left to right.
    """
    mem0 = _matrix(before, "before", "(N, M)")  # (N, M)
    mem1 = _matrix(after, "after", "(N, M)")  # (N, M)
    if mem0.shape != mem1.shape:
        raise ValueError(f"before and after must have the same shape, got {tuple(mem0.shape)} and {tuple(mem1.shape)}")
    panels = 3 if w is None else 4
    fig, grid = new_axes(ncols=panels, width=3.2, height=2.8)
    axes = list(grid[0])
    if w is not None:
        weights = _vector(w, "w")  # (N,)
        if len(weights) != mem0.shape[0]:
            raise ValueError(f"w must have one entry per memory row ({mem0.shape[0]}), got {len(weights)}")
        ax = axes[0]
        ax.barh(range(len(weights)), weights.numpy(), color=PALETTE[1])
        ax.set_ylim(len(weights) - 0.5, -0.5)  # row 0 on top, like the heat maps
        ax.set_xlim(0.0, 1.0)
        ax.set_yticks(range(len(weights)))
        ax.set_xlabel("$w(i)$")
        ax.set_ylabel("row $i$")
        ax.set_title("write weighting")
    vmax = float(torch.cat([mem0.flatten(), mem1.flatten()]).abs().max().clamp_min(1e-12))
    start = panels - 3
    memory_heatmap(mem0, ax=axes[start], title="before", vmax=vmax, colorbar=False)
    memory_heatmap(mem1, ax=axes[start + 1], title="after", vmax=vmax)
    memory_heatmap(mem1 - mem0, ax=axes[start + 2], title="change (after - before)")
    if title:
        fig.suptitle(title)
    return fig, axes


# ---------------------------------------------------------------------------------------------
# Weightings
# ---------------------------------------------------------------------------------------------


def weighting_panel(
    weightings: Mapping[str, torch.Tensor],
    title: str | None = None,
    width: float = 2.6,
    height: float = 2.4,
) -> tuple[Figure, list[Axes]]:
    """Draw several weightings (each (N,)) as bar charts side by side, titled by their keys."""
    if not weightings:
        raise ValueError("weighting_panel needs at least one weighting, got none")
    vectors = {name: _vector(w, name) for name, w in weightings.items()}
    sizes = {len(v) for v in vectors.values()}
    if len(sizes) != 1:
        raise ValueError(f"all weightings must have the same length N, got lengths {sorted(sizes)}")
    fig, grid = new_axes(ncols=len(vectors), width=width, height=height, sharey=True)
    axes = list(grid[0])
    for i, (ax, (name, w)) in enumerate(zip(axes, vectors.items(), strict=True)):
        bar_weights(w, ax=ax, title=name, color=PALETTE[i % len(PALETTE)])
    axes[0].set_ylabel("weight")
    if title:
        fig.suptitle(title)
    return fig, axes


def addressing_panel(
    stages: Sequence[torch.Tensor],
    w_prev: torch.Tensor | None = None,
    title: str | None = None,
) -> tuple[Figure, list[Axes]]:
    """Draw the four addressing stages side by side: content, gated, shifted, sharpened.

    ``stages`` is the library's ``AddressingStages`` (or any sequence of four (N,) or (1, N)
    weightings in that order). With ``w_prev``, the previous weighting is drawn first, since the
    gate mixes it in. Returns the figure and its axes, left to right.
    """
    if len(stages) != 4:
        raise ValueError(f"stages must hold 4 weightings (content, gated, shifted, sharpened), got {len(stages)}")
    panels: dict[str, torch.Tensor] = {}
    if w_prev is not None:
        panels["previous $w_{t-1}$"] = w_prev
    panels.update(dict(zip(STAGE_TITLES, stages, strict=True)))
    return weighting_panel(panels, title=title)


def weights_over_time(
    w: torch.Tensor,
    ax: Axes | None = None,
    title: str | None = None,
    vmax: float | None = 1.0,
) -> Axes:
    """Draw weightings over time (T, N) as a heat map: time on the x axis, row on the y axis.

    White is 0 and black is ``vmax`` (1 by default, so that maps can be compared). ``vmax=None``
    stretches the scale from the smallest (white) to the largest (black) weight, which shows the
    structure of nearly uniform weightings.
    """
    weights = _matrix(w, "w", "(T, N)")  # (T, N)
    if ax is None:
        _, axes = new_axes()
        ax = axes[0, 0]
    low, top = (float(weights.min()), float(weights.max())) if vmax is None else (0.0, float(vmax))
    ax.imshow(weights.T.numpy(), cmap="Greys", vmin=low, vmax=top, aspect="auto")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(False)
    ax.set_xlabel("time $t$")
    ax.set_ylabel("row $i$")
    if title:
        ax.set_title(title)
    return ax


def read_write_heatmaps(
    read_w: torch.Tensor,
    write_w: torch.Tensor,
    title: str | None = None,
    vmax: float | None = 1.0,
) -> tuple[Figure, list[Axes]]:
    """Draw a write head's and a read head's weightings over time, each (T, N), side by side.

    ``vmax`` is passed to :func:`weights_over_time` (``None``: each map stretched to its range).
    """
    write = _matrix(write_w, "write_w", "(T, N)")  # (T, N)
    read = _matrix(read_w, "read_w", "(T, N)")  # (T, N)
    if write.shape[1] != read.shape[1]:
        raise ValueError(f"read_w and write_w must cover the same N rows, got {read.shape[1]} and {write.shape[1]}")
    fig, grid = new_axes(ncols=2, width=4.0, height=3.0)
    axes = list(grid[0])
    weights_over_time(write, ax=axes[0], title="write weightings", vmax=vmax)
    weights_over_time(read, ax=axes[1], title="read weightings", vmax=vmax)
    if title:
        fig.suptitle(title)
    return fig, axes


# ---------------------------------------------------------------------------------------------
# Widgets: each explorer wraps a draw_* function (which returns the figure) in `interactive`.
# ---------------------------------------------------------------------------------------------


def _batch(x: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(x, dtype=torch.float32).unsqueeze(0)  # add B = 1


def shift_from_masses(left: float, stay: float, right: float) -> tuple[torch.Tensor, str]:
    """The shift weighting (K = 3) from slider masses on shifts -1, 0, +1, normalised to sum 1.

    Returns the weighting (3,) and a short label; all-zero masses fall back to "stay" (0, 1, 0).
    """
    masses = torch.tensor([left, stay, right], dtype=torch.float32)
    if (masses < 0).any():
        raise ValueError(f"shift masses must be non-negative, got {masses.tolist()}")
    if masses.sum() == 0:
        masses = torch.tensor([0.0, 1.0, 0.0])
    s = masses / masses.sum()  # (3,)
    label = "s = (" + ", ".join(f"{v:.2f}" for v in s.tolist()) + ") on shifts (-1, 0, +1)"
    return s, label


def draw_content(memory: torch.Tensor, key: torch.Tensor, beta: float) -> Figure:
    """Content addressing (Eq. 5-6): cosine similarity of ``key`` (M,) to each row, and w^c."""
    from neural_memory.ntm import content_weights, cosine_similarity

    mem = _matrix(memory, "memory", "(N, M)")
    similarity = cosine_similarity(_batch(mem), _batch(key))[0]  # (N,)
    w_c = content_weights(_batch(mem), _batch(key), torch.tensor([[beta]]))[0]  # (N,)
    fig, grid = new_axes(ncols=3, width=3.0, height=2.6)
    axes = grid[0]
    memory_heatmap(mem, ax=axes[0], title="memory", colorbar=False)
    bar_weights(similarity, ax=axes[1], title="cosine similarity $\\mathcal{K}[\\mathbf{k}, \\mathbf{M}(i)]$",
                ylim=(-1.0, 1.0))
    bar_weights(w_c, ax=axes[2], title=f"content weighting, $\\beta$ = {beta:.1f}", color=PALETTE[2])
    return fig


def content_explorer(memory: torch.Tensor, keys: Mapping[str, torch.Tensor], beta: float = 5.0):
    """Widget: a key selector and a β slider redrawing :func:`draw_content`."""
    from ipywidgets import Dropdown, FloatSlider, interactive

    names = list(keys)
    if not names:
        raise ValueError("keys must name at least one key vector, got none")
    return interactive(
        lambda key, beta: draw_content(memory, keys[key], beta),
        key=Dropdown(options=names, value=names[0], description="key"),
        beta=FloatSlider(value=beta, min=0.0, max=50.0, step=0.5, description="β"),
    )


def draw_gate(w_content: torch.Tensor, w_prev: torch.Tensor, g: float) -> Figure:
    """Interpolation (Eq. 7): w^g = g w^c + (1 - g) w_{t-1}, drawn next to its two inputs."""
    from neural_memory.ntm import interpolate

    w_c, prev = _vector(w_content, "w_content"), _vector(w_prev, "w_prev")
    w_g = interpolate(_batch(w_c), _batch(prev), torch.tensor([[g]]))[0]  # (N,)
    fig, _ = weighting_panel(
        {"content $w^c$": w_c, "previous $w_{t-1}$": prev, f"gated $w^g$, g = {g:.2f}": w_g}
    )
    return fig


def gate_explorer(w_content: torch.Tensor, w_prev: torch.Tensor, g: float = 0.5):
    """Widget: a slider for the gate g redrawing :func:`draw_gate`."""
    from ipywidgets import FloatSlider, interactive

    return interactive(
        lambda g: draw_gate(w_content, w_prev, g),
        g=FloatSlider(value=g, min=0.0, max=1.0, step=0.05, description="g"),
    )


def draw_shift(w: torch.Tensor, left: float, stay: float, right: float) -> Figure:
    """Convolutional shift (Eq. 8) of ``w`` (N,) by the masses on shifts -1, 0, +1."""
    from neural_memory.ntm import shift

    w_g = _vector(w, "w")
    s, label = shift_from_masses(left, stay, right)
    w_s = shift(_batch(w_g), s.unsqueeze(0))[0]  # (N,)
    fig, grid = new_axes(ncols=3, width=2.6, height=2.4)
    axes = grid[0]
    bar_weights(w_g, ax=axes[0], title="before $w^g$", color=PALETTE[0])
    bar_weights(s, ax=axes[1], title="shift weighting $s$", labels=["-1", "0", "+1"], color=PALETTE[1])
    axes[1].set_xlabel("shift")
    bar_weights(w_s, ax=axes[2], title="shifted $\\tilde{w}$", color=PALETTE[2])
    fig.suptitle(label)
    return fig


def shift_explorer(w: torch.Tensor, left: float = 0.0, stay: float = 0.0, right: float = 1.0):
    """Widget: three sliders (mass on shifts -1, 0, +1) redrawing :func:`draw_shift`."""
    from ipywidgets import FloatSlider, interactive

    def slider(value: float, label: str) -> FloatSlider:
        return FloatSlider(value=value, min=0.0, max=1.0, step=0.05, description=label)

    return interactive(
        lambda left, stay, right: draw_shift(w, left, stay, right),
        left=slider(left, "s(-1)"),
        stay=slider(stay, "s(0)"),
        right=slider(right, "s(+1)"),
    )


def draw_sharpen(w: torch.Tensor, gamma: float) -> Figure:
    """Sharpening (Eq. 9): w^γ / Σ w^γ, drawn next to its input."""
    from neural_memory.ntm import sharpen

    w_s = _vector(w, "w")
    w_sharp = sharpen(_batch(w_s), torch.tensor([[gamma]]))[0]  # (N,)
    fig, _ = weighting_panel({"shifted $\\tilde{w}$": w_s, f"sharpened $w$, $\\gamma$ = {gamma:.1f}": w_sharp})
    return fig


def sharpen_explorer(w: torch.Tensor, gamma: float = 1.0):
    """Widget: a slider for γ redrawing :func:`draw_sharpen`."""
    from ipywidgets import FloatSlider, interactive

    return interactive(
        lambda gamma: draw_sharpen(w, gamma),
        gamma=FloatSlider(value=gamma, min=1.0, max=20.0, step=0.5, description="γ"),
    )


def draw_addressing(
    memory: torch.Tensor,
    w_prev: torch.Tensor,
    key: torch.Tensor,
    beta: float,
    g: float,
    left: float,
    stay: float,
    right: float,
    gamma: float,
) -> Figure:
    """All four addressing stages (Eqs. 5-9) for one head, via the library's ``address_stages``."""
    from neural_memory.ntm import address_stages

    mem = _matrix(memory, "memory", "(N, M)")
    prev = _vector(w_prev, "w_prev")
    s, label = shift_from_masses(left, stay, right)
    stages = address_stages(
        _batch(mem), _batch(prev), _batch(key), torch.tensor([[beta]]), torch.tensor([[g]]),
        s.unsqueeze(0), torch.tensor([[gamma]]),
    )
    settings = f"$\\beta$ = {beta:.1f}, g = {g:.2f}, {label}, $\\gamma$ = {gamma:.1f}"
    fig, _ = addressing_panel([stage[0] for stage in stages], w_prev=prev, title=settings)
    return fig


def addressing_explorer(
    memory: torch.Tensor,
    w_prev: torch.Tensor,
    keys: Mapping[str, torch.Tensor],
    beta: float = 10.0,
    g: float = 1.0,
    left: float = 0.0,
    stay: float = 1.0,
    right: float = 0.0,
    gamma: float = 1.0,
):
    """Widget: key, β, g, shift masses and γ all at once, redrawing :func:`draw_addressing`."""
    from ipywidgets import Dropdown, FloatSlider, interactive

    names = list(keys)
    if not names:
        raise ValueError("keys must name at least one key vector, got none")

    def slider(value: float, low: float, high: float, step: float, label: str) -> FloatSlider:
        return FloatSlider(value=value, min=low, max=high, step=step, description=label)

    return interactive(
        lambda key, beta, g, left, stay, right, gamma: draw_addressing(
            memory, w_prev, keys[key], beta, g, left, stay, right, gamma
        ),
        key=Dropdown(options=names, value=names[0], description="key"),
        beta=slider(beta, 0.0, 50.0, 0.5, "β"),
        g=slider(g, 0.0, 1.0, 0.05, "g"),
        left=slider(left, 0.0, 1.0, 0.05, "s(-1)"),
        stay=slider(stay, 0.0, 1.0, 0.05, "s(0)"),
        right=slider(right, 0.0, 1.0, 0.05, "s(+1)"),
        gamma=slider(gamma, 1.0, 20.0, 0.5, "γ"),
    )
