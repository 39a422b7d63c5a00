"""What every task generator shares: the batch it returns and the interface it implements.

A task is a source of random training and test sequences for a sequence-to-sequence model. One
call draws a batch of ``B`` sequences of ``T`` steps:

* ``inputs``  ``(B, T, I)`` -- what the model sees at each step (``I = task.input_size``);
* ``targets`` ``(B, T, O)`` -- the bits it should emit (``O = task.output_size``), zero where
  nothing is asked;
* ``mask``    ``(B, T)``    -- 1.0 at the steps whose outputs are scored, 0.0 elsewhere.

**Variable lengths.** By default every sequence inside one batch has the same length (one length
is drawn per batch). Graves et al. (2014) train with one sequence per update, so nothing is lost,
and no padding is needed; the mask only marks the answer phase of each sequence. Lengths still
vary from batch to batch.

**Curriculum.** ``sample_train(..., difficulty=d)`` draws from the training range with its upper
bound shrunk to ``low + ceil(d * (high - low))``; ``d = 1`` is the paper's full range.

All randomness comes from the ``torch.Generator`` passed in, so a seed fixes the data exactly.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import NamedTuple

import torch


class Batch(NamedTuple):
    """One batch of sequences: ``inputs (B,T,I)``, ``targets (B,T,O)``, ``mask (B,T)``."""

    inputs: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor


def check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")


def check_range(name: str, low: int, high: int, minimum: int = 1) -> None:
    """Raise ``ValueError`` unless ``minimum <= low <= high`` (integers)."""
    if low < minimum or high < low:
        raise ValueError(
            f"{name} range must satisfy {minimum} <= min <= max, got min={low}, max={high}"
        )


def check_difficulty(difficulty: float) -> None:
    if not 0.0 < difficulty <= 1.0:
        raise ValueError(f"difficulty must be in (0, 1], got {difficulty!r}")


def shrink(low: int, high: int, difficulty: float) -> int:
    """The curriculum's upper bound: ``low + ceil(difficulty * (high - low))``."""
    check_difficulty(difficulty)
    return low + math.ceil(difficulty * (high - low) - 1e-9)


def randint(low: int, high: int, generator: torch.Generator | None) -> int:
    """One integer uniform on ``[low, high]`` (both ends included), drawn from ``generator``."""
    return int(torch.randint(low, high + 1, (1,), generator=generator).item())


def random_bits(shape: tuple[int, ...], generator: torch.Generator | None) -> torch.Tensor:
    """Independent fair coin flips as a float tensor of 0.0/1.0."""
    return torch.randint(0, 2, shape, generator=generator).float()


class Task(ABC):
    """A generator of random episodes for one of the paper's tasks.

    Subclasses set ``name``, ``input_size`` and ``output_size`` and implement ``sample`` (fixed
    or random problem size, for training and for generalisation tests). The training
    distribution (``sample_train``) is shared: a subclass names its size parameters' training
    ranges (``training_ranges``) and builds a batch of given sizes (``_batch``); a task whose
    training distribution is not "each size uniform in its range" overrides ``sample_train``.
    """

    name: str
    input_size: int
    output_size: int

    @abstractmethod
    def sample(self, batch_size: int, generator: torch.Generator | None = None, **size) -> Batch:
        """Draw a batch; keyword arguments fix the problem size (see each task)."""

    def training_ranges(self) -> dict[str, tuple[int, int]]:
        """Each size parameter's training range ``(low, high)``, in the order they are drawn."""
        raise NotImplementedError(f"{type(self).__name__} does not define training_ranges")

    def _batch(self, batch_size: int, generator: torch.Generator | None, **size: int) -> Batch:
        """A batch with every size parameter given."""
        raise NotImplementedError(f"{type(self).__name__} does not define _batch")

    def draw_sizes(
        self, generator: torch.Generator | None, difficulty: float = 1.0, **given: int | None
    ) -> dict[str, int]:
        """The sizes of one batch: those ``given`` (not None) as they are, the others uniform in
        their training range with its upper bound shrunk by ``difficulty`` (see :func:`shrink`)."""
        sizes = {}
        for name, (low, high) in self.training_ranges().items():
            value = given.get(name)
            sizes[name] = randint(low, shrink(low, high, difficulty), generator) if value is None else value
        return sizes

    def training_sizes(self, difficulty: float = 1.0) -> list[dict[str, int]]:
        """Every set of sizes the training distribution can draw (each parameter's range shrunk by
        ``difficulty`` as in :meth:`draw_sizes`), the first parameter varying slowest."""
        grid: list[dict[str, int]] = [{}]
        for name, (low, high) in self.training_ranges().items():
            grid = [{**g, name: v} for g in grid for v in range(low, shrink(low, high, difficulty) + 1)]
        return grid

    def sample_train(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        difficulty: float = 1.0,
    ) -> Batch:
        """Draw a batch from the training distribution (``difficulty`` < 1: curriculum): one
        set of sizes for the whole batch."""
        return self._batch(batch_size, generator, **self.draw_sizes(generator, difficulty))

    #: the names of the keyword arguments ``sample`` accepts (``length``, ``repeats``, ``items``)
    size_parameters: tuple[str, ...] = ()
