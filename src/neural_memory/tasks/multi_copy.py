"""The multi-copy task: several copy episodes in one sequence, a test of memory reuse.

Not one of the paper's tasks: it is built for the Differentiable Neural Computer (Graves et al.,
2016), whose memory can free rows it no longer needs and write them again. A sequence is ``E``
copy episodes back to back. Each episode is the copy task (``copy.py``): ``L`` random 8-bit
vectors, the delimiter flag on its own channel, then ``L`` answer steps with no input, in which
the target is the episode's vectors in order. The next episode starts on the step after the last
answer step, so the answer phase lasts exactly as long as the input phase before it. All episodes
of a batch have the same ``L``; in training ``L`` is uniform on 1..8 and ``E`` on 1..6, one
value of each per batch.

**Why it needs memory reuse.** The task knows nothing of memory, but its sizes are chosen for a
memory of 16 rows. One episode stores at most 8 vectors and fits easily; a whole sequence stores
up to ``6 * 8 = 48``, three times the rows. A model that writes each vector to a row of its own
and never frees one runs out of rows after 16 vectors (in the third episode when ``L = 8``); to
copy every episode it has to write over the rows of episodes it has finished with.

Layout for ``L = 2``, ``E = 2`` (``x`` = a random bit, ``.`` = 0; time runs left to right)::

                   episode 1                   episode 2
                   input     answer            input     answer
    step t:        0  1  2   3  4              5  6  7   8  9
    inputs  ch 0-7 x  x  .   .  .              y  y  .   .  .      8 data channels
            ch 8   .  .  1   .  .              .  .  1   .  .      delimiter
    targets ch 0-7 .  .  .   x  x              .  .  .   y  y      each episode's vectors again
    mask           0  0  0   1  1              0  0  0   1  1      scored steps

(``y`` = the bits of episode 2.) ``T = E (2L + 1)``; input size 9, output size 8 -- the copy
task's channels, so a model built for copy runs this task unchanged. With ``E = 1`` a batch is a
copy batch, drawn from the generator in the same order.
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


def multi_copy_batch(
    batch_size: int, length: int, episodes: int, generator: torch.Generator | None = None
) -> Batch:
    """A batch of ``episodes`` copy episodes per sequence, each of ``length`` vectors (see the
    module docstring)."""
    check_batch_size(batch_size)
    check_range("length", length, length)
    check_range("episodes", episodes, episodes)
    span = 2 * length + 1  # steps per episode
    T = episodes * span
    data = random_bits((batch_size, episodes, length, WIDTH), generator)  # (B, E, L, 8)
    inputs = torch.zeros(batch_size, episodes, span, WIDTH + 1)  # (B, E, 2L+1, 9)
    inputs[:, :, :length, :WIDTH] = data
    inputs[:, :, length, WIDTH] = 1.0  # each episode's delimiter
    targets = torch.zeros(batch_size, episodes, span, WIDTH)  # (B, E, 2L+1, 8)
    targets[:, :, length + 1 :] = data
    mask = torch.zeros(batch_size, episodes, span)  # (B, E, 2L+1)
    mask[:, :, length + 1 :] = 1.0
    # the episodes one after the other along time
    return Batch(
        inputs.reshape(batch_size, T, WIDTH + 1),  # (B, T, 9)
        targets.reshape(batch_size, T, WIDTH),  # (B, T, 8)
        mask.reshape(batch_size, T),  # (B, T)
    )


@dataclass(frozen=True)
class MultiCopyTask(Task):
    """Multi-copy: training lengths uniform on ``[min_length, max_length]`` (1..8) and episode
    counts on ``[min_episodes, max_episodes]`` (1..6)."""

    min_length: int = 1
    max_length: int = 8
    min_episodes: int = 1
    max_episodes: int = 6

    name = "multi_copy"
    input_size = WIDTH + 1
    output_size = WIDTH
    size_parameters = ("length", "episodes")

    def __post_init__(self) -> None:
        check_range("length", self.min_length, self.max_length)
        check_range("episodes", self.min_episodes, self.max_episodes)

    def sample(
        self,
        batch_size: int,
        generator: torch.Generator | None = None,
        length: int | None = None,
        episodes: int | None = None,
    ) -> Batch:
        """A batch of ``episodes`` episodes of ``length`` vectors per sequence (each random in
        its training range if None)."""
        sizes = self.draw_sizes(generator, length=length, episodes=episodes)
        return self._batch(batch_size, generator, **sizes)

    def training_ranges(self) -> dict[str, tuple[int, int]]:
        return {"length": (self.min_length, self.max_length),
                "episodes": (self.min_episodes, self.max_episodes)}

    def _batch(
        self, batch_size: int, generator: torch.Generator | None, length: int, episodes: int
    ) -> Batch:
        return multi_copy_batch(batch_size, length, episodes, generator)
