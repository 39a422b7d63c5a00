"""The tasks, as random batch generators: the four algorithmic tasks of Graves et al. (2014),
Section 4, and ``multi_copy``, several copy episodes in one sequence, which tests the memory
reuse of the Differentiable Neural Computer (Graves et al., 2016).

Each task module's docstring draws its input/target channel layout. ``get_task(name)`` returns
a task with its default training ranges (the paper's, for the paper's tasks); ``TASKS`` maps
names to task classes.

=====================  ======  =======  ==========================================
task                   input   output   training distribution
=====================  ======  =======  ==========================================
``copy``               9       8        length 1..20
``repeat_copy``        10      9        length 1..10, repeats 1..10
``associative_recall`` 8       6        2..6 items of 3 six-bit vectors
``priority_sort``      10      8        20 vectors in, the top 16 out
``multi_copy``         9       8        1..6 copy episodes, each of length 1..8
=====================  ======  =======  ==========================================
"""

from __future__ import annotations

from neural_memory.tasks.associative_recall import AssociativeRecallTask
from neural_memory.tasks.base import Batch, Task
from neural_memory.tasks.copy import CopyTask
from neural_memory.tasks.metrics import (
    batch_metrics,
    sequence_bit_errors,
    sequence_cost_bits,
    sequence_cost_nats,
)
from neural_memory.tasks.multi_copy import MultiCopyTask
from neural_memory.tasks.priority_sort import PrioritySortTask
from neural_memory.tasks.repeat_copy import RepeatCopyTask

TASKS: dict[str, type[Task]] = {
    "copy": CopyTask,
    "repeat_copy": RepeatCopyTask,
    "associative_recall": AssociativeRecallTask,
    "priority_sort": PrioritySortTask,
    "multi_copy": MultiCopyTask,
}


def get_task(name: str, **overrides) -> Task:
    """The task called ``name`` with its default training ranges (keyword arguments override)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name](**overrides)


__all__ = [
    "TASKS",
    "AssociativeRecallTask",
    "Batch",
    "CopyTask",
    "MultiCopyTask",
    "PrioritySortTask",
    "RepeatCopyTask",
    "Task",
    "batch_metrics",
    "get_task",
    "sequence_bit_errors",
    "sequence_cost_bits",
    "sequence_cost_nats",
]
