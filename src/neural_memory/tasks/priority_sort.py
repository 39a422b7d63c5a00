"""The priority sort task (Graves et al., 2014, Section 4.5).

The network sees ``20`` random 8-bit vectors, each with a scalar priority drawn uniformly from
``[-1, 1]`` on its own channel, then a delimiter. It must output the ``16`` vectors of highest
priority, sorted by priority, highest first. (The paper gives the target as "the 16
highest-priority vectors in the input" in sorted order; its figure shows the highest first.)

Layout for ``n = 3`` inputs and ``m = 2`` outputs (``x`` random bit, ``p`` a priority)::

    step t:        0  1  2  3    4  5
    inputs  ch 0-7 x  x  x  .    .  .     8 data channels
            ch 8   p  p  p  .    .  .     priority, uniform on [-1, 1]
            ch 9   .  .  .  1    .  .     delimiter
    targets ch 0-7 .  .  .  .    x  x     the m highest-priority vectors, highest first
    mask           0  0  0  0    1  1

``T = n + 1 + m``; input size 10, output size 8. For generalisation tests ``length`` changes
``n``; the number of outputs stays ``min(m, n)`` unless ``outputs`` is given.
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
    shrink,
)

WIDTH = 8  # bits per vector


def priority_sort_batch(
    batch_size: int, length: int, outputs: int, generator: torch.Generator | None = None
) -> tuple[Batch, torch.Tensor]:
    """A batch of priority-sort episodes and the priorities ``(B, n)`` that were drawn."""
    check_batch_size(batch_size)
    check_range("length", length, length)
    if not 1 <= outputs <= length:
        raise ValueError(f"outputs must be in 1..length={length}, got {outputs}")
    T = length + 1 + outputs
    data = random_bits((batch_size, length, WIDTH), generator)  # (B, n, 8)
    priority = torch.rand(batch_size, length, generator=generator) * 2 - 1  # (B, n), U[-1, 1)
    inputs = torch.zeros(batch_size, T, WIDTH + 2)  # (B, T, 10)
    inputs[:, :length, :WIDTH] = data
    inputs[:, :length, WIDTH] = priority
    inputs[:, length, WIDTH + 1] = 1.0  # delimiter
    order = priority.argsort(dim=1, descending=True)[:, :outputs]  # (B, m)
    rows = torch.arange(batch_size)[:, None]  # (B, 1)
    targets = torch.zeros(batch_size, T, WIDTH)  # (B, T, 8)
    targets[:, length + 1 :] = data[rows, order]  # (B, m, 8)
    mask = torch.zeros(batch_size, T)  # (B, T)
    mask[:, length + 1 :] = 1.0
    return Batch(inputs, targets, mask), priority


@dataclass(frozen=True)
class PrioritySortTask(Task):
    """Priority sort: ``num_inputs`` prioritised vectors in, the top ``num_outputs`` out (20/16)."""

    num_inputs: int = 20
    num_outputs: int = 16

    name = "priority_sort"
    input_size = WIDTH + 2
    output_size = WIDTH
    size_parameters = ("length",)

    def __post_init__(self) -> None:
        check_range("num_outputs", self.num_outputs, self.num_inputs)

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        length: int | None = None,
        outputs: int | None = None,
    ) -> Batch:
        """A batch with ``length`` input vectors (default 20) and ``outputs`` answers."""
        length = self.num_inputs if length is None else length
        outputs = min(self.num_outputs, length) if outputs is None else outputs
        return priority_sort_batch(batch_size, length, outputs, generator)[0]

    def sample_train(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        difficulty: float = 1.0,
    ) -> Batch:
        """The paper's fixed size; a curriculum shrinks the number of inputs (and outputs)."""
        length = shrink(1, self.num_inputs, difficulty)
        outputs = max(1, round(self.num_outputs * length / self.num_inputs))
        return priority_sort_batch(batch_size, length, outputs, generator)[0]
