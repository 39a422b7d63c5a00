"""The copy task (Graves et al., 2014, Section 4.1).

The network sees a sequence of ``L`` random 8-bit vectors, then a delimiter flag on its own
channel, and must then reproduce the whole sequence while it receives no input. In training
``L`` is uniform on 1..20; generalisation is tested on longer sequences (``length=...``).

Layout for ``L = 3`` (``x`` = a random bit, ``.`` = 0; time runs left to right)::

                   input phase   answer phase
    step t:        0  1  2  3    4  5  6
    inputs  ch 0-7 x  x  x  .    .  .  .      8 data channels
            ch 8   .  .  .  1    .  .  .      delimiter
    targets ch 0-7 .  .  .  .    x  x  x      the input sequence again, in order
    mask           0  0  0  0    1  1  1      scored steps

``T = 2L + 1``; input size 9, output size 8.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from neural_memory.tasks.base import (
    Batch,
    Task,
    check_batch_size,
    check_range,
    random_bits,
)

WIDTH = 8  # bits per vector


def copy_batch(batch_size: int, length: int, generator: torch.Generator | None = None) -> Batch:
    """A batch of copy episodes, all of ``length`` vectors (see the module docstring)."""
    check_batch_size(batch_size)
    check_range("length", length, length)
    T = 2 * length + 1
    data = random_bits((batch_size, length, WIDTH), generator)  # (B, L, 8)
    inputs = torch.zeros(batch_size, T, WIDTH + 1)  # (B, T, 9)
    inputs[:, :length, :WIDTH] = data
    inputs[:, length, WIDTH] = 1.0  # delimiter
    targets = torch.zeros(batch_size, T, WIDTH)  # (B, T, 8)
    targets[:, length + 1 :] = data
    mask = torch.zeros(batch_size, T)  # (B, T)
    mask[:, length + 1 :] = 1.0
    return Batch(inputs, targets, mask)


@dataclass(frozen=True)
class CopyTask(Task):
    """Copy: training lengths uniform on ``[min_length, max_length]`` (paper: 1..20)."""

    min_length: int = 1
    max_length: int = 20

    name = "copy"
    input_size = WIDTH + 1
    output_size = WIDTH
    size_parameters = ("length",)

    def __post_init__(self) -> None:
        check_range("length", self.min_length, self.max_length)

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None, length: int | None = None
    ) -> Batch:
        """A batch with ``length`` vectors per sequence (random in the training range if None)."""
        return self._batch(batch_size, generator, **self.draw_sizes(generator, length=length))

    def training_ranges(self) -> dict[str, tuple[int, int]]:
        return {"length": (self.min_length, self.max_length)}

    def _batch(self, batch_size: int, generator: torch.Generator | None, length: int) -> Batch:
        return copy_batch(batch_size, length, generator)
