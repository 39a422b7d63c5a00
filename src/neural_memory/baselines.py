"""The LSTM baseline of Graves et al. (2014), Section 4 and Table 3.

A stack of ``L`` LSTM layers of ``C`` units each, read out by a linear layer to one logit per
output bit:

.. math::

    \\mathbf{h}^{(1)}_t = \\mathrm{LSTM}_1(\\mathbf{x}_t, \\mathbf{h}^{(1)}_{t-1}), \\quad
    \\mathbf{h}^{(\\ell)}_t = \\mathrm{LSTM}_\\ell(\\mathbf{h}^{(\\ell-1)}_t, \\mathbf{h}^{(\\ell)}_{t-1}), \\quad
    \\mathbf{z}_t = W \\mathbf{h}^{(L)}_t + \\mathbf{b}

where :math:`\\mathbf{z}_t` are the pre-sigmoid outputs (logits), exactly what the NTM returns,
so both models plug into the same training loop and metrics.

**Sizes.** The paper's baseline has 3 layers of 256 (copy, associative recall), 512 (repeat
copy) or 128 units (priority sort) (Table 3); those are the presets named after the tasks. The
paper's LSTM also has peephole and skip connections, which ``nn.LSTM`` does not, so our counts
are a little smaller (copy: 1,328,136 parameters here, 1,352,969 in the paper). The models we
*ship* use the ``small`` preset, 3 layers of 128 units (about 0.34M parameters), stored in
float16: four paper-sized baselines would take more than 30 MB, while the NTMs they are compared
with have tens of thousands of parameters. ``tiny`` (one layer of 16) is for tests.

**Traces.** An LSTM has no addressable memory, so ``forward(x, return_trace=True)`` returns
``(logits, None)``: callers that plot NTM traces can treat both models the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import nn


@dataclass(frozen=True)
class LSTMConfig:
    """Shape of the stacked-LSTM baseline (``num_layers`` x ``hidden_size``)."""

    input_size: int = 9
    output_size: int = 8
    hidden_size: int = 128
    num_layers: int = 3

    def __post_init__(self) -> None:
        for name in ("input_size", "output_size", "hidden_size", "num_layers"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"LSTMConfig.{name} must be a positive integer, got {value!r}")

    @classmethod
    def preset(cls, name: str, **overrides) -> LSTMConfig:
        """A named configuration (see ``preset_names()``); keyword arguments override fields."""
        if name not in _PRESETS:
            raise ValueError(f"unknown LSTM preset {name!r}; expected one of {cls.preset_names()}")
        return replace(_PRESETS[name], **overrides)

    @classmethod
    def preset_names(cls) -> list[str]:
        return list(_PRESETS)


_PRESETS: dict[str, LSTMConfig] = {
    # Graves et al. (2014), Table 3: 3 layers; the channel counts are the tasks'.
    "copy": LSTMConfig(9, 8, 256, 3),
    "repeat_copy": LSTMConfig(10, 9, 512, 3),
    "associative_recall": LSTMConfig(8, 6, 256, 3),
    "priority_sort": LSTMConfig(10, 8, 128, 3),
    # the shipped baselines (small enough to ship four of them), and a test-sized one
    "small": LSTMConfig(9, 8, 128, 3),
    "tiny": LSTMConfig(9, 8, 16, 1),
}


class LSTMBaseline(nn.Module):
    """Stacked LSTM + linear read-out: ``(B, T, input_size)`` -> logits ``(B, T, output_size)``."""

    def __init__(self, config: LSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(
            config.input_size, config.hidden_size, num_layers=config.num_layers, batch_first=True
        )
        self.readout = nn.Linear(config.hidden_size, config.output_size)

    def forward(self, x: torch.Tensor, return_trace: bool = False):
        """Logits for every step; with ``return_trace`` the pair ``(logits, None)``."""
        if x.dim() != 3 or x.shape[-1] != self.config.input_size:
            raise ValueError(
                f"LSTMBaseline expects input of shape (B, T, {self.config.input_size}), "
                f"got {tuple(x.shape)}"
            )
        h, _ = self.lstm(x)  # (B, T, C), zero initial state
        logits = self.readout(h)  # (B, T, O)
        return (logits, None) if return_trace else logits


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
