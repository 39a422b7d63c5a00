"""Input checks shared by the DNC's pure functions: shapes first, then value ranges.

Every check raises a one-line ``ValueError`` that says what was expected and what was given.
The public functions run them on every call (they are what a reader calls on toy inputs); the
:class:`~neural_memory.dnc.model.DNC` checks its input once per sequence and then calls the
unchecked versions, whose ranges hold by construction (sigmoids, softmaxes, and the invariants
the equations keep).
"""

from __future__ import annotations

from torch import Tensor

#: How far a value may stray outside its range (float rounding, gradcheck's perturbations).
TOLERANCE = 1e-5


def shape(x: Tensor) -> tuple[int, ...]:
    return tuple(x.shape)


_AXES = {"B": "B >= 1 batch elements", "N": "N >= 1 memory rows", "R": "R >= 1 read heads"}


def check_tensor(x: object, name: str, layout: str) -> None:
    """``x`` is a tensor laid out as ``layout``, e.g. ``"(B, R, N)"``: one dimension per letter,
    ``B``, ``N`` and ``R`` at least 1, and a digit an exact size (``"(B, 1)"``)."""
    axes = [a.strip() for a in layout.strip("()").split(",")]
    if not isinstance(x, Tensor):
        raise ValueError(f"{name} must be a tensor of shape {layout}; got {type(x).__name__}")
    if x.dim() != len(axes):
        raise ValueError(f"{name} must have shape {layout}; got shape {shape(x)}")
    for axis, size in zip(axes, x.shape, strict=True):
        if axis.isdigit() and size != int(axis):
            raise ValueError(f"{name} must have shape {layout}; got shape {shape(x)}")
        if axis in _AXES and size < 1:
            raise ValueError(f"{name} must have {_AXES[axis]}; got shape {shape(x)}")


def check_same_shape(x: Tensor, name: str, like: Tensor, like_name: str, layout: str) -> None:
    if x.shape != like.shape:
        raise ValueError(
            f"{name} must have the shape of {like_name}, {layout} = {shape(like)}; got {shape(x)}"
        )


def check_unit_interval(x: Tensor, name: str) -> None:
    """Every entry in ``[0, 1]`` (gates, usage, retention)."""
    if not bool(((x >= -TOLERANCE) & (x <= 1 + TOLERANCE)).all()):
        raise ValueError(
            f"{name} must have every entry in [0, 1]; got values from {x.min().item():.6g} "
            f"to {x.max().item():.6g}"
        )


def check_weighting(x: Tensor, name: str) -> None:
    """Non-negative entries summing to at most 1 over the last axis (a DNC weighting)."""
    total = x.sum(-1)
    if not bool((x >= -TOLERANCE).all() & (total <= 1 + TOLERANCE).all()):
        raise ValueError(
            f"{name} must be a weighting: entries >= 0 that sum to at most 1 over the rows; "
            f"got entries from {x.min().item():.6g} and sums up to {total.max().item():.6g}"
        )


def check_distribution(x: Tensor, name: str) -> None:
    """Non-negative entries summing to 1 over the last axis."""
    total = x.sum(-1)
    if not bool((x >= -TOLERANCE).all() & ((total - 1).abs() <= TOLERANCE).all()):
        raise ValueError(
            f"{name} must be a distribution over its last axis (entries >= 0 summing to 1); "
            f"got entries from {x.min().item():.6g} and sums from {total.min().item():.6g} "
            f"to {total.max().item():.6g}"
        )
