"""The Neural Turing Machine (Graves et al., 2014), built from small pieces.

* :mod:`neural_memory.ntm.memory` -- read (eq. 2) and write (erase eq. 3, add eq. 4).
* :mod:`neural_memory.ntm.addressing` -- content, gate, shift and sharpen (eqs. 5-9).
"""

from neural_memory.ntm.addressing import (
    AddressingStages,
    address,
    address_stages,
    content_weights,
    cosine_similarity,
    interpolate,
    sharpen,
    shift,
)
from neural_memory.ntm.memory import read, write, write_heads

__all__ = [
    "AddressingStages",
    "address",
    "address_stages",
    "content_weights",
    "cosine_similarity",
    "interpolate",
    "read",
    "sharpen",
    "shift",
    "write",
    "write_heads",
]
