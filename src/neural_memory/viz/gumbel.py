"""Figures and widgets of Part I (hard memory reads with the straight-through Gumbel-softmax).

Each function draws data it is given, or data it computes with ``neural_memory.gumbel`` from a
seeded generator, so a chapter's figure is one call. Functions return the axes (or the widget).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes

from neural_memory.gumbel import gumbel_softmax_from_noise, sample_gumbel
from neural_memory.viz.common import PALETTE, bar_weights, new_axes

__all__ = [
    "gumbel_max_frequencies",
    "gumbel_max_widget",
    "plot_estimator_comparison",
    "plot_gumbel_density",
    "plot_image_reads",
    "plot_images",
    "plot_memory_fit",
    "plot_probs_vs_frequencies",
    "plot_read_distances",
    "plot_read_weights",
    "plot_seed_scores",
    "plot_slot_usage",
    "plot_temperature_samples",
    "plot_training_curve",
    "temperature_widget",
]


def _axes(ax: Axes | None, **kwargs) -> Axes:
    if ax is None:
        _, axes = new_axes(**kwargs)
        ax = axes[0, 0]
    return ax


def _np(x) -> np.ndarray:
    return torch.as_tensor(x).detach().cpu().double().numpy()


# -- Chapter 11: the Gumbel distribution and the Gumbel-max trick ---------------------------


def plot_gumbel_density(samples: torch.Tensor, ax: Axes | None = None, bins: int = 80,
                        title: str | None = "Gumbel noise") -> Axes:
    r"""Histogram (as a density) of noise samples with the analytic density :math:`e^{-(x + e^{-x})}`."""
    ax = _axes(ax, width=5.0)
    s = _np(samples).ravel()
    ax.hist(s, bins=bins, density=True, color=PALETTE[0], alpha=0.6, label=f"{len(s):,} samples")
    xs = np.linspace(s.min(), s.max(), 400)
    ax.plot(xs, np.exp(-(xs + np.exp(-xs))), color=PALETTE[3], lw=2, label=r"$e^{-(x+e^{-x})}$")
    ax.set_xlabel("g")
    ax.set_ylabel("density")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_probs_vs_frequencies(probs: torch.Tensor, freqs: torch.Tensor, ax: Axes | None = None,
                              title: str | None = None,
                              labels: tuple[str, str] = ("softmax(logits)", "Gumbel-max frequency"),
                              ) -> Axes:
    """Side-by-side bars: a categorical distribution and the empirical frequencies of samples."""
    ax = _axes(ax, width=5.0)
    p, f = _np(probs), _np(freqs)
    xs = np.arange(len(p))
    ax.bar(xs - 0.2, p, width=0.4, color=PALETTE[0], label=labels[0])
    ax.bar(xs + 0.2, f, width=0.4, color=PALETTE[1], label=labels[1])
    ax.set_xticks(xs)
    ax.set_xlabel("category")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def gumbel_max_frequencies(logits: torch.Tensor, n_samples: int, seed: int = 0) -> torch.Tensor:
    """Empirical frequencies of ``argmax(logits + g)`` over ``n_samples`` Gumbel draws; shape (N,)."""
    gen = torch.Generator().manual_seed(seed)
    logits = torch.as_tensor(logits, dtype=torch.float64)
    noise = sample_gumbel((n_samples, logits.numel()), generator=gen, dtype=torch.float64)  # (S, N)
    z = (logits + noise).argmax(dim=1)  # (S,)
    return torch.bincount(z, minlength=logits.numel()).double() / n_samples  # (N,)


def gumbel_max_widget(logits: Sequence[float] = (1.0, 0.0, -1.0, 0.5), n_samples: int = 20_000,
                      seed: int = 0):
    """Sliders for the logits; shows softmax probabilities next to Gumbel-max frequencies."""
    import ipywidgets as widgets

    def draw(**values):
        lg = torch.tensor([values[f"logit{i}"] for i in range(len(logits))], dtype=torch.float64)
        ax = plot_probs_vs_frequencies(torch.softmax(lg, 0), gumbel_max_frequencies(lg, n_samples, seed),
                                       title=f"{n_samples:,} Gumbel-max samples")
        plt.show()
        return ax

    sliders = {
        f"logit{i}": widgets.FloatSlider(value=float(v), min=-3.0, max=3.0, step=0.25,
                                         description=f"logit {i}", continuous_update=False)
        for i, v in enumerate(logits)
    }
    return widgets.interactive(draw, **sliders)


# -- Chapter 12: temperature and straight-through ---------------------------------------------


def plot_temperature_samples(logits: torch.Tensor, taus: Sequence[float] = (0.1, 0.25, 0.5, 2.0),
                             seed: int = 0, n_mean: int = 5000, axes=None):
    """The article's Fig. 1: a distribution, then a Gumbel-softmax sample at each temperature.

    All panels use the same Gumbel noise draw, so only the temperature changes between them.
    Bars: that one sample; dots: the mean of ``n_mean`` samples at the same temperature.
    Returns the array of axes.
    """
    logits = torch.as_tensor(logits, dtype=torch.float64)
    n = logits.numel()
    if axes is None:
        _, axes = new_axes(ncols=len(taus) + 1, width=2.3, height=2.4, sharey=True)
    axes = np.asarray(axes).ravel()
    gen = torch.Generator().manual_seed(seed)
    noise = sample_gumbel((n_mean, n), generator=gen, dtype=torch.float64)  # (S, N)
    bar_weights(torch.softmax(logits, 0), ax=axes[0], title="softmax(logits)", color=PALETTE[2])
    for ax, tau in zip(axes[1:], taus, strict=True):
        y = gumbel_softmax_from_noise(logits.expand(n_mean, n), noise, tau=tau)  # (S, N)
        bar_weights(y[0], ax=ax, title=rf"sample, $\tau$ = {tau:g}")
        ax.plot(range(n), _np(y.mean(0)), "o", color=PALETTE[3], label="mean")
        ax.set_ylabel("")
    axes[-1].legend(loc="upper right")
    return axes


def temperature_widget(logits: Sequence[float] = (1.0, 0.0, -1.0, 0.5, 2.0), seed: int = 0):
    """A log-scale temperature slider driving :func:`plot_temperature_samples` for one tau."""
    import ipywidgets as widgets

    def draw(log10_tau: float):
        tau = 10.0**log10_tau
        axes = plot_temperature_samples(torch.tensor(logits), taus=(tau,), seed=seed)
        plt.show()
        return axes

    slider = widgets.FloatSlider(value=math.log10(0.5), min=-2.0, max=1.0, step=0.1,
                                 description="log10 tau", continuous_update=False)
    return widgets.interactive(draw, log10_tau=slider)


def plot_estimator_comparison(names: Sequence[str], variances: Sequence[float],
                              biases: Sequence[float], ax: Axes | None = None,
                              title: str | None = "gradient estimators") -> Axes:
    """Per-estimator variance and squared bias (summed over coordinates), log scale."""
    ax = _axes(ax, width=6.0, height=3.2)
    xs = np.arange(len(names))
    v = np.asarray(variances, dtype=float)
    b2 = np.asarray(biases, dtype=float) ** 2
    ax.bar(xs - 0.2, v, width=0.4, color=PALETTE[0], label="variance (one sample)")
    ax.bar(xs + 0.2, np.maximum(b2, 1e-12), width=0.4, color=PALETTE[3], label="squared bias")
    ax.set_yscale("log")
    ax.set_xticks(xs, list(names), rotation=20, ha="right")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


# -- Chapter 13: reading from memory ---------------------------------------------------------


def plot_memory_fit(x: torch.Tensor, y: torch.Tensor, x_grid: torch.Tensor | None = None,
                    fit: torch.Tensor | None = None, best_fit: torch.Tensor | None = None,
                    memory_values: torch.Tensor | None = None, ax: Axes | None = None,
                    title: str | None = None, fit_label: str = "Fit") -> Axes:
    """Training data, a network's fit and the best piecewise-constant fit (the article's Figs. 2-3)."""
    ax = _axes(ax, width=5.5, height=3.5)
    ax.scatter(_np(x).ravel(), _np(y).ravel(), s=6, color="0.6", alpha=0.6, label="data")
    if memory_values is not None:
        for i, m in enumerate(_np(memory_values).ravel()):
            ax.axhline(m, color="0.3", lw=0.6, ls=":", label="memory values" if i == 0 else None)
    if best_fit is not None:
        ax.plot(_np(x_grid).ravel(), _np(best_fit).ravel(), color=PALETTE[2], lw=2.5, label="Best Fit")
    if fit is not None:
        ax.plot(_np(x_grid).ravel(), _np(fit).ravel(), color=PALETTE[0], lw=2, ls="--", label=fit_label)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(loc="upper center", fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_training_curve(losses: Sequence[float], ax: Axes | None = None, window: int = 25,
                        floor: float | None = None, floor_label: str = "noise floor",
                        ylabel: str = "training MSE", title: str | None = None) -> Axes:
    """The loss of every training iteration (thin) and its running mean over ``window``
    iterations (thick), on a log scale; ``floor`` draws a horizontal reference line."""
    ax = _axes(ax, width=5.5, height=3.0)
    y = _np(losses).ravel()
    it = np.arange(len(y))
    ax.plot(it, y, color=PALETTE[0], lw=0.6, alpha=0.4, label="every iteration")
    if len(y) >= window:
        mean = np.convolve(y, np.ones(window) / window, mode="valid")
        ax.plot(it[window - 1:], mean, color=PALETTE[0], lw=2, label=f"mean of the last {window}")
    if floor is not None:
        ax.axhline(floor, color="0.3", lw=1, ls=":", label=floor_label)
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_seed_scores(scores: Mapping[str, Sequence[float]], ax: Axes | None = None,
                     reference: float | None = None, reference_label: str | None = None,
                     ylabel: str = "score", title: str | None = None) -> Axes:
    """One group per key: a dot per seed and a bar at the mean over seeds; ``reference`` draws a
    horizontal line (e.g. the best possible value)."""
    names = list(scores)
    ax = _axes(ax, width=max(3.5, 1.6 * len(names)), height=3.0)
    for i, name in enumerate(names):
        values = _np(scores[name]).ravel()
        colour = PALETTE[i % len(PALETTE)]
        ax.bar(i, values.mean(), width=0.6, color=colour, alpha=0.35,
               label="mean over seeds" if i == 0 else None)
        offsets = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
        ax.scatter(i + offsets, values, color=colour, s=22, zorder=3,
                   label="one seed" if i == 0 else None)
    if reference is not None:
        ax.axhline(reference, color="0.3", lw=1, ls=":", label=reference_label)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_slot_usage(indices: torch.Tensor, n_rows: int, ax: Axes | None = None,
                    title: str | None = "rows read", labels: Sequence[str] | None = None) -> Axes:
    """Fraction of inputs that read each memory row."""
    counts = torch.bincount(torch.as_tensor(indices).reshape(-1).cpu(), minlength=n_rows).double()
    ax = bar_weights(counts / counts.sum(), ax=_axes(ax), title=title, labels=labels)
    ax.set_ylabel("fraction of inputs")
    return ax


def plot_read_weights(weights: torch.Tensor, row_titles: Sequence[str], axes=None,
                      labels: Sequence[str] | None = None):
    """One bar chart per example of its weighting over memory rows; ``weights`` is (B, N)."""
    weights = torch.as_tensor(weights)
    if axes is None:
        _, axes = new_axes(ncols=len(weights), width=2.4, height=2.2, sharey=True)
    axes = np.asarray(axes).ravel()
    for ax, w, t in zip(axes, weights, row_titles, strict=True):
        bar_weights(w, ax=ax, title=t, labels=labels)
        ax.set_xlabel("memory row")
    axes[0].set_ylabel("read weight")
    return axes


# -- Chapter 14: a bank of images ------------------------------------------------------------


def plot_images(images: torch.Tensor, titles: Sequence[str] | None = None, axes=None,
                shape: tuple[int, int] = (8, 8), cmap: str = "gray_r"):
    """A row of small images (each a flattened ``shape`` vector)."""
    images = torch.as_tensor(images).detach().cpu()
    if axes is None:
        _, axes = new_axes(ncols=len(images), width=1.1, height=1.3)
    axes = np.asarray(axes).ravel()
    for i, (ax, img) in enumerate(zip(axes, images, strict=True)):
        ax.imshow(img.reshape(shape).numpy(), cmap=cmap)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        for spine in ax.spines.values():
            spine.set_visible(False)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    return axes


def plot_read_distances(distance: torch.Tensor, correct: torch.Tensor, ax: Axes | None = None,
                        bins: int = 30, title: str | None = None) -> Axes:
    """Histograms of the distance between each input and the image it read, for the reads of
    the right class and the wrong ones (each normalised to a density; dashed lines: the means)."""
    d, ok = _np(distance).ravel(), _np(correct).ravel().astype(bool)
    ax = _axes(ax, width=5.0, height=3.0)
    edges = np.linspace(0.0, d.max(), bins + 1)
    for colour, mask, label in ((PALETTE[2], ok, "right class"), (PALETTE[3], ~ok, "wrong class")):
        ax.hist(d[mask], bins=edges, density=True, alpha=0.5, color=colour,
                label=f"{label} ({int(mask.sum())} reads)")
        ax.axvline(d[mask].mean(), color=colour, lw=1.5, ls="--")
    ax.set_xlabel("squared distance ||x - read||²")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return ax


def plot_image_reads(inputs: torch.Tensor, read_images: torch.Tensor, input_titles: Sequence[str],
                     read_titles: Sequence[str], shape: tuple[int, int] = (8, 8)):
    """Inputs (top row) above the memory row each one read (bottom row)."""
    n = len(inputs)
    _, axes = new_axes(ncols=n, nrows=2, width=1.1, height=1.3)
    plot_images(inputs, input_titles, axes=axes[0], shape=shape)
    plot_images(read_images, read_titles, axes=axes[1], shape=shape)
    axes[0, 0].set_ylabel("input")
    axes[1, 0].set_ylabel("read")
    return axes
