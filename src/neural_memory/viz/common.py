"""The shared look of the book's figures and the helpers every part uses."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes

#: One palette for the whole book (colour-blind safe, from Okabe & Ito).
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def style() -> None:
    """Apply the book's matplotlib style (idempotent)."""
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.prop_cycle": plt.cycler(color=PALETTE),
            "font.size": 10,
        }
    )


def new_axes(ncols: int = 1, nrows: int = 1, width: float = 4.0, height: float = 3.0, **kwargs):
    """Create a figure with ``nrows x ncols`` axes of the given size each, in the book's style."""
    style()
    return plt.subplots(
        nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, layout="constrained",
        **kwargs,
    )


def bar_weights(
    weights: torch.Tensor | Sequence[float],
    ax: Axes | None = None,
    title: str | None = None,
    labels: Sequence[str] | None = None,
    color: str | None = None,
    ylim: tuple[float, float] | None = (0.0, 1.0),
) -> Axes:
    """Draw a weighting over memory rows (or any categorical distribution) as bars.

    ``weights`` is a 1-D tensor or sequence of length N; row ``i`` is drawn at ``x = i``.
    """
    w = torch.as_tensor(weights, dtype=torch.float64).detach().cpu()
    if w.dim() != 1:
        raise ValueError(f"bar_weights expects a 1-D weighting of shape (N,), got shape {tuple(w.shape)}")
    if ax is None:
        _, axes = new_axes()
        ax = axes[0, 0]
    xs = range(len(w))
    ax.bar(xs, w.numpy(), color=color or PALETTE[0])
    if labels is not None:
        ax.set_xticks(list(xs), labels)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("row")
    if title:
        ax.set_title(title)
    return ax
