"""Plotting helpers: every figure in the book is one call into this package.

Keeping the figures here (and not in the notebooks) gives every chapter one look and keeps
notebooks short. Submodules group the helpers by part of the book; the common ones are here.
"""

from neural_memory.viz.common import bar_weights, new_axes, style

__all__ = ["bar_weights", "new_axes", "style"]
