"""The repeat copy task (Graves et al., 2014, Section 4.2).

The network sees ``L`` random 8-bit vectors, then one step carrying a delimiter flag and the
number of repetitions ``R`` (a scalar on its own channel). It must output the sequence ``R``
times in a row and then raise an end marker on an extra output channel: to stop at the right
time it has to read the count and keep track of how many copies it has made. In training ``L``
and ``R`` are both uniform on 1..10.

**The count channel.** The paper normalises the repeat number to mean zero and variance one. We
use the mean and variance of the *training* distribution of ``R`` (uniform integers on
``[min_repeats, max_repeats]``), fixed once per task:

.. math::

    \\tilde R = \\frac{R - \\mu}{\\sigma}, \\qquad \\mu = \\frac{a + b}{2}, \\qquad
    \\sigma^2 = \\frac{(b - a + 1)^2 - 1}{12}

with ``a, b`` the training range (1, 10: ``mu = 5.5``, ``sigma^2 = 8.25``). Test counts outside
the range (e.g. ``R = 20``) use the same ``mu, sigma`` and so land outside the training values,
which is exactly the generalisation the paper tests.

Layout for ``L = 2``, ``R = 2`` (``x`` random bit, ``r`` = the normalised count, ``.`` = 0)::

    step t:        0  1  2    3  4  5  6  7
    inputs  ch 0-7 x  x  .    .  .  .  .  .     8 data channels
            ch 8   .  .  1    .  .  .  .  .     delimiter
            ch 9   .  .  r    .  .  .  .  .     normalised repeat count
    targets ch 0-7 .  .  .    x  x  x  x  .     the sequence, R times
            ch 8   .  .  .    .  .  .  .  1     end marker
    mask           0  0  0    1  1  1  1  1     scored steps

``T = L + 1 + R*L + 1``; input size 10, output size 9.
"""

from __future__ import annotations

import math
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


def count_normalisation(min_repeats: int, max_repeats: int) -> tuple[float, float]:
    """Mean and standard deviation of a repeat count uniform on ``[min_repeats, max_repeats]``."""
    check_range("repeats", min_repeats, max_repeats)
    n = max_repeats - min_repeats + 1
    mean = (min_repeats + max_repeats) / 2
    std = math.sqrt((n * n - 1) / 12) if n > 1 else 1.0  # one possible count: nothing to scale
    return mean, std


def repeat_copy_batch(
    batch_size: int,
    length: int,
    repeats: int,
    generator: torch.Generator | None = None,
    count_mean: float = 5.5,
    count_std: float = math.sqrt(8.25),
) -> Batch:
    """A batch of repeat-copy episodes with fixed ``length`` and ``repeats``."""
    check_batch_size(batch_size)
    check_range("length", length, length)
    check_range("repeats", repeats, repeats)
    T = length + 1 + repeats * length + 1
    data = random_bits((batch_size, length, WIDTH), generator)  # (B, L, 8)
    inputs = torch.zeros(batch_size, T, WIDTH + 2)  # (B, T, 10)
    inputs[:, :length, :WIDTH] = data
    inputs[:, length, WIDTH] = 1.0  # delimiter
    inputs[:, length, WIDTH + 1] = (repeats - count_mean) / count_std  # normalised count
    targets = torch.zeros(batch_size, T, WIDTH + 1)  # (B, T, 9)
    start = length + 1
    targets[:, start : start + repeats * length, :WIDTH] = data.repeat(1, repeats, 1)  # (B, R*L, 8)
    targets[:, T - 1, WIDTH] = 1.0  # end marker
    mask = torch.zeros(batch_size, T)  # (B, T)
    mask[:, start:] = 1.0
    return Batch(inputs, targets, mask)


@dataclass(frozen=True)
class RepeatCopyTask(Task):
    """Repeat copy: training lengths and repeat counts uniform on their ranges (paper: 1..10)."""

    min_length: int = 1
    max_length: int = 10
    min_repeats: int = 1
    max_repeats: int = 10

    name = "repeat_copy"
    input_size = WIDTH + 2
    output_size = WIDTH + 1
    size_parameters = ("length", "repeats")

    def __post_init__(self) -> None:
        check_range("length", self.min_length, self.max_length)
        check_range("repeats", self.min_repeats, self.max_repeats)

    @property
    def count_normalisation(self) -> tuple[float, float]:
        """``(mu, sigma)`` of the training repeat counts, used to normalise the count channel."""
        return count_normalisation(self.min_repeats, self.max_repeats)

    def normalise_count(self, repeats: int) -> float:
        mean, std = self.count_normalisation
        return (repeats - mean) / std

    def _batch(
        self, batch_size: int, generator: torch.Generator | None, length: int, repeats: int
    ) -> Batch:
        mean, std = self.count_normalisation
        return repeat_copy_batch(batch_size, length, repeats, generator, mean, std)

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        length: int | None = None,
        repeats: int | None = None,
    ) -> Batch:
        """A batch with the given ``length`` and ``repeats`` (random in the training range if None)."""
        sizes = self.draw_sizes(generator, length=length, repeats=repeats)
        return self._batch(batch_size, generator, **sizes)

    def training_ranges(self) -> dict[str, tuple[int, int]]:
        return {"length": (self.min_length, self.max_length),
                "repeats": (self.min_repeats, self.max_repeats)}
