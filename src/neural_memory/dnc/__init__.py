"""The Differentiable Neural Computer (Graves et al., 2016), built from small pieces.

Pure functions of tensors, one module per concept of the paper's Methods section:

* :mod:`neural_memory.dnc.allocation` -- retention, usage and the allocation weighting.
* :mod:`neural_memory.dnc.linkage` -- precedence, the link matrix, forward and backward weightings.
* :mod:`neural_memory.dnc.weighting` -- the write and read weightings.
* :mod:`neural_memory.dnc.interface` -- the controller's interface vector, split and squashed.

Content addressing and the erase-then-add write are the NTM's
(:func:`neural_memory.ntm.content_weights`, :func:`neural_memory.ntm.write`).

* :mod:`neural_memory.dnc.model` -- :class:`DNCConfig` (with presets) and :class:`DNC`.
"""

from neural_memory.dnc.allocation import allocation_weights, retention, usage
from neural_memory.dnc.interface import (
    DNCInterface,
    check_interface,
    interface_size,
    oneplus,
    parse_interface,
)
from neural_memory.dnc.linkage import directional_weights, link_matrix, precedence
from neural_memory.dnc.model import DNC, DNCConfig, DNCState, DNCStep, DNCTrace
from neural_memory.dnc.weighting import READ_MODES, read_weights, write_weights

__all__ = [
    "DNC",
    "READ_MODES",
    "DNCConfig",
    "DNCInterface",
    "DNCState",
    "DNCStep",
    "DNCTrace",
    "allocation_weights",
    "check_interface",
    "directional_weights",
    "interface_size",
    "link_matrix",
    "oneplus",
    "parse_interface",
    "precedence",
    "read_weights",
    "retention",
    "usage",
    "write_weights",
]
