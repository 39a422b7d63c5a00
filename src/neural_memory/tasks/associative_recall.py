"""The associative recall task (Graves et al., 2014, Section 4.3).

An *item* is a short sequence of ``3`` random 6-bit vectors (18 bits). The network sees ``k``
items, each bounded by item-delimiter flags, then a *query*: a copy of one of the items (not the
last one), bounded by query-delimiter flags on both sides. It must then output the item that
followed the query item in the list. In training ``k`` is uniform on 2..6. The query is drawn
uniformly from items ``1 .. k-1`` of each sequence independently.

Layout for ``k = 2`` items, query = item 1 (``a``/``b`` the bits of items 1 and 2, ``.`` = 0)::

    step t:          0  1 2 3  4  5 6 7  8  9 10 11 12   13 14 15
    inputs  ch 0-5   .  a a a  .  b b b  .  a  a  a  .    .  .  .    6 data channels
            ch 6     1  . . .  1  . . .  .  .  .  .  .    .  .  .    item delimiter
            ch 7     .  . . .  .  . . .  1  .  .  .  1    .  .  .    query delimiter
    targets ch 0-5   .  . . .  .  . . .  .  .  .  .  .    b  b  b    the item after the query
    mask             0  0 0 0  0  0 0 0  0  0  0  0  0    1  1  1

Each item is bounded on the left by its own item delimiter and on the right by the next item's
delimiter (or by the first query delimiter). ``T = 4k + 8`` for items of 3 vectors; input size 8,
output size 6.
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

WIDTH = 6  # bits per vector
ITEM_LENGTH = 3  # vectors per item


def associative_recall_batch(
    batch_size: int,
    items: int,
    generator: torch.Generator | None = None,
    item_length: int = ITEM_LENGTH,
) -> tuple[Batch, torch.Tensor]:
    """A batch of ``items``-item episodes and the index (0-based) of each sequence's query item."""
    check_batch_size(batch_size)
    check_range("items", items, items, minimum=2)
    check_range("item_length", item_length, item_length)
    span = item_length + 1  # one delimiter step + the item's vectors
    T = items * span + item_length + 2 + item_length
    data = random_bits((batch_size, items, item_length, WIDTH), generator)  # (B, k, 3, 6)
    query = torch.randint(0, items - 1, (batch_size,), generator=generator)  # (B,)
    rows = torch.arange(batch_size)
    inputs = torch.zeros(batch_size, T, WIDTH + 2)  # (B, T, 8)
    for i in range(items):
        inputs[:, i * span, WIDTH] = 1.0  # item delimiter
        inputs[:, i * span + 1 : (i + 1) * span, :WIDTH] = data[:, i]
    q = items * span  # first query delimiter
    inputs[:, q, WIDTH + 1] = 1.0
    inputs[:, q + 1 : q + 1 + item_length, :WIDTH] = data[rows, query]  # (B, 3, 6)
    inputs[:, q + 1 + item_length, WIDTH + 1] = 1.0
    answer = q + 2 + item_length
    targets = torch.zeros(batch_size, T, WIDTH)  # (B, T, 6)
    targets[:, answer:] = data[rows, query + 1]  # (B, 3, 6)
    mask = torch.zeros(batch_size, T)  # (B, T)
    mask[:, answer:] = 1.0
    return Batch(inputs, targets, mask), query


@dataclass(frozen=True)
class AssociativeRecallTask(Task):
    """Associative recall: training item counts uniform on ``[min_items, max_items]`` (2..6)."""

    min_items: int = 2
    max_items: int = 6
    item_length: int = ITEM_LENGTH

    name = "associative_recall"
    input_size = WIDTH + 2
    output_size = WIDTH
    size_parameters = ("items",)

    def __post_init__(self) -> None:
        check_range("items", self.min_items, self.max_items, minimum=2)
        check_range("item_length", self.item_length, self.item_length)

    def sample(
        self, batch_size: int, generator: torch.Generator | None = None, items: int | None = None
    ) -> Batch:
        """A batch with ``items`` items per sequence (random in the training range if None)."""
        return self._batch(batch_size, generator, **self.draw_sizes(generator, items=items))

    def training_ranges(self) -> dict[str, tuple[int, int]]:
        return {"items": (self.min_items, self.max_items)}

    def _batch(self, batch_size: int, generator: torch.Generator | None, items: int) -> Batch:
        return associative_recall_batch(batch_size, items, generator, self.item_length)[0]
