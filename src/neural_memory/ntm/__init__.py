"""The Neural Turing Machine (Graves et al., 2014), built from small pieces.

* :mod:`neural_memory.ntm.memory` -- read (eq. 2) and write (erase eq. 3, add eq. 4).
* :mod:`neural_memory.ntm.addressing` -- content, gate, shift and sharpen (eqs. 5-9).
* :mod:`neural_memory.ntm.heads` -- controller output to every head's parameters.
* :mod:`neural_memory.ntm.controller` -- LSTM and feedforward controllers.
* :mod:`neural_memory.ntm.model` -- :class:`NTMConfig` (with presets) and :class:`NTM`.
* :mod:`neural_memory.ntm.hard` -- heads that address exactly one row (Part IV).
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
    shift_index,
)
from neural_memory.ntm.controller import (
    Controller,
    FeedforwardController,
    LSTMController,
    make_controller,
)
from neural_memory.ntm.hard import HARD_ADDRESSING, entropy_bits, harden
from neural_memory.ntm.heads import HeadParameters, NTMHeads
from neural_memory.ntm.memory import read, write, write_heads
from neural_memory.ntm.model import NTM, PAPER_LEARNING_RATES, NTMConfig, NTMTrace

__all__ = [
    "HARD_ADDRESSING",
    "NTM",
    "PAPER_LEARNING_RATES",
    "AddressingStages",
    "Controller",
    "FeedforwardController",
    "HeadParameters",
    "LSTMController",
    "NTMConfig",
    "NTMHeads",
    "NTMTrace",
    "address",
    "address_stages",
    "content_weights",
    "cosine_similarity",
    "entropy_bits",
    "harden",
    "interpolate",
    "make_controller",
    "read",
    "sharpen",
    "shift",
    "shift_index",
    "write",
    "write_heads",
]
