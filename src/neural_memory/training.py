"""The training loop shared by every model in the book, its recipe, and evaluation on fresh data.

**Objective.** For a batch of ``B`` sequences the loss is the mean over the batch of each
sequence's masked binary cross-entropy, summed over its scored bits (in nats; the logs report it
in bits, divided by :math:`\\ln 2`) -- the "cost per sequence" of Graves et al. (2014), Section 4.

**Recipe** (``TrainConfig``). The paper trains every model with RMSProp with momentum 0.9 and
clips every gradient component to :math:`(-10, 10)` (Section 4); learning rates are per task and
model (Tables 2 and 3). We use ``torch.optim.RMSprop(centered=True, alpha=0.95, momentum=0.9)``,
the form of Graves (2013, eq. 38-41): a running mean of the gradient and of its square, the step
divided by the running standard deviation. (Graves adds the :math:`\\epsilon` inside the square
root; torch adds it outside.) Adam is available as an alternative. Element-wise clipping
(``clip_value``) is the paper's "clip gradients" trick; norm clipping (``clip_norm``) may be
used instead or as well. ``curriculum_sequences > 0`` grows the task's size range linearly from
``curriculum_start`` of the full range to all of it over that many sequences.

**The loop** (:func:`train`). One loop trains every model: the command line, the experiments
and the benchmarks. It draws each batch from a seeded generator, takes one step, and keeps a
learning curve with one row every ``log_every`` sequences: ``sequences`` seen, ``cost_bits`` and
``bit_errors`` per sequence averaged over the training batches since the previous row, and
cumulative training ``wall_seconds``. Everything else a run does is a :class:`Callback`: the
recipe's learning-rate drop and the hard heads' temperature schedule (added from the recipe and
the model), and, as the caller wishes, writing the curve, checkpoints, a progress bar, or a
benchmark's convergence monitor. Each callback's state goes into the checkpoint with the loop's.

**Exact resume.** A checkpoint holds the model, the optimizer state, the data generator's state
(a ``torch.Generator`` that draws every training batch), torch's global RNG state, the loop's
counters and every callback's state; resuming from it replays exactly the batches and updates an
uninterrupted run would have made, so both end with bit-identical weights (on the same machine
and torch build). :func:`run_training` writes the curve as a CSV file, rewritten atomically at
every row; on resume, rows after the checkpoint are dropped.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from neural_memory.checkpoint import (
    SHIPPED_DIR,
    Checkpoint,
    CheckpointError,
    check_manifest_is_for,
    config_from_dict,
    dataclass_from_dict,
    export_checkpoint,
    load_checkpoint,
    read_csv,
    read_manifest,
    save_checkpoint,
    shipped_checkpoint,
    write_csv,
)
from neural_memory.ntm.fused import check_device
from neural_memory.registry import build_model, model_classes
from neural_memory.tasks import Task, get_task
from neural_memory.tasks.metrics import (
    scored_bits,
    sequence_bit_errors,
    sequence_cost_bits,
    sequence_cost_nats,
)

LOG_COLUMNS = ("sequences", "cost_bits", "bit_errors", "wall_seconds")

#: Options that earlier versions of ``TrainConfig`` had, with the value that left each one off.
#: They were measured against the copy NTM's relapses and not adopted (the book's "Performance
#: and stability" appendix names the commit that still has them). Manifests written then record
#: them; a checkpoint that used one at another value cannot be resumed by this version.
REMOVED_OPTIONS: dict[str, Any] = {
    "spike_clip": None, "spike_clip_beta": 0.99, "weight_noise": None,
    "weight_noise_from_drop": False, "lr_drop_delay": 0, "mixed_lengths": "never",
    "amsgrad": False, "amsgrad_after_drop": False, "lr_half_life_after_drop": 0,
    "lr_follow_errors": None, "lr_follow_power": 1.0, "lr_follow_floor": 0.01,
    "lr_follow_beta": 0.98, "lr_follow_down_only": False, "focus_errors": 0.0,
    "focus_beta": 0.8, "beta1": 0.9, "beta2": 0.999,
}


@dataclass(frozen=True)
class TrainConfig:
    """How to train: optimizer, learning rate, batch size, clipping, curriculum, cadence."""

    optimizer: str = "rmsprop"  # "rmsprop" | "adam"
    lr: float = 1e-4
    momentum: float = 0.9  # RMSProp momentum (ignored by Adam)
    alpha: float = 0.95  # RMSProp decay of the running averages
    eps: float = 1e-4
    batch_size: int = 1
    sequences: int = 100_000  # training sequences in total
    clip_value: float | None = 10.0  # clip every gradient component to [-v, v] (paper)
    clip_norm: float | None = None  # and/or rescale the whole gradient to at most this norm
    curriculum_sequences: int = 0  # 0: no curriculum
    curriculum_start: float = 0.1  # fraction of the size range at the start of the curriculum
    log_every: int = 1_000  # sequences between learning-curve rows
    checkpoint_every: int = 10_000  # sequences between checkpoints
    eval_sequences: int = 256  # fresh sequences for the final metrics
    # Hard heads (NTMConfig.hard_addressing, Part IV); ignored by soft models. Over the first
    # hard_anneal_sequences the temperature falls geometrically from hard_tau_start to
    # hard_tau_end and the hard/soft mix grows linearly from hard_mix_start to 1.
    hard_tau_start: float = 1.0
    hard_tau_end: float = 1.0
    hard_mix_start: float = 1.0  # 1: hard from the start; 0: start soft, anneal to hard
    hard_anneal_sequences: int = 0
    # Settle after converging: the first time the running mean of the training bit errors per
    # sequence over the last lr_drop_window sequences (checked after every batch) falls below
    # lr_drop_below, the learning rate is multiplied by lr_drop_factor, once (LearningRateDrop).
    # None: never.
    lr_drop_below: float | None = None
    lr_drop_factor: float = 0.1
    lr_drop_window: int = 500
    # Adam only: PyTorch's fused implementation (``torch.optim.Adam(fused=True)``), one compiled
    # loop over all parameters instead of a Python loop issuing several operations per
    # parameter. The same update, rounded differently (last-bit differences); faster per step.
    fused_optimizer: bool = False

    def __post_init__(self) -> None:
        if self.optimizer not in ("rmsprop", "adam"):
            raise ValueError(f"optimizer must be 'rmsprop' or 'adam', got {self.optimizer!r}")
        for name in ("lr", "eps"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"TrainConfig.{name} must be a finite number > 0, got {value!r}")
        # RMSProp's decay of its running averages and its momentum (torch refuses a negative
        # momentum only when the optimizer is built; here the recipe is refused at once).
        if not (isinstance(self.alpha, (int, float)) and 0 < self.alpha <= 1):
            raise ValueError(f"TrainConfig.alpha must be in (0, 1], got {self.alpha!r}")
        if not (isinstance(self.momentum, (int, float)) and 0 <= self.momentum < 1):
            raise ValueError(f"TrainConfig.momentum must be in [0, 1), got {self.momentum!r}")
        for name in ("batch_size", "sequences", "log_every", "checkpoint_every", "eval_sequences",
                     "lr_drop_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        for name in ("clip_value", "clip_norm"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"TrainConfig.{name} must be > 0 or None, got {value!r}")
        if not 0 < self.curriculum_start <= 1:
            raise ValueError(f"curriculum_start must be in (0, 1], got {self.curriculum_start!r}")
        if self.curriculum_sequences < 0:
            raise ValueError(f"curriculum_sequences must be >= 0, got {self.curriculum_sequences!r}")
        for name in ("hard_tau_start", "hard_tau_end"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"TrainConfig.{name} must be a finite number > 0, got {value!r}")
        if not 0 <= self.hard_mix_start <= 1:
            raise ValueError(f"hard_mix_start must be in [0, 1], got {self.hard_mix_start!r}")
        if not isinstance(self.hard_anneal_sequences, int) or self.hard_anneal_sequences < 0:
            raise ValueError(
                f"hard_anneal_sequences must be an integer >= 0, got {self.hard_anneal_sequences!r}"
            )
        if self.lr_drop_below is not None and not self.lr_drop_below > 0:
            raise ValueError(f"lr_drop_below must be > 0 or None, got {self.lr_drop_below!r}")
        if not 0 < self.lr_drop_factor <= 1:
            raise ValueError(f"lr_drop_factor must be in (0, 1], got {self.lr_drop_factor!r}")
        if not isinstance(self.fused_optimizer, bool):
            raise ValueError(f"TrainConfig.fused_optimizer must be a bool, got {self.fused_optimizer!r}")
        if self.fused_optimizer and self.optimizer != "adam":
            raise ValueError("TrainConfig.fused_optimizer=True needs optimizer='adam' (an option of "
                             f"Adam; RMSProp has no counterpart here), got optimizer={self.optimizer!r}")

    @classmethod
    def preset(cls, name: str, **overrides) -> TrainConfig:
        """A named recipe: ``"<task>-<model>"`` (the paper's settings), a ``fast-*`` recipe for a
        small compute budget, or ``"tiny"``."""
        if name not in _RECIPES:
            raise ValueError(f"unknown training recipe {name!r}; expected one of {cls.preset_names()}")
        return replace(_RECIPES[name], **overrides)

    @classmethod
    def preset_names(cls) -> list[str]:
        return list(_RECIPES)


# Learning rates: Graves et al. (2014), Table 2 (NTM, LSTM controller) and Table 3 (LSTM).
_PAPER_LR = {
    ("copy", "ntm"): 1e-4,
    ("repeat_copy", "ntm"): 1e-4,
    ("associative_recall", "ntm"): 1e-4,
    ("priority_sort", "ntm"): 3e-5,
    ("copy", "lstm"): 3e-5,
    ("repeat_copy", "lstm"): 3e-5,
    ("associative_recall", "lstm"): 1e-4,
    ("priority_sort", "lstm"): 3e-5,
}
_RECIPES: dict[str, TrainConfig] = {
    f"{task}-{model}": TrainConfig(lr=lr) for (task, model), lr in _PAPER_LR.items()
}
# The DNC (Graves et al., 2016) was not trained on these tasks in its paper: the same recipe at
# 1e-4, the learning rate of DeepMind's reference implementation's training script.
_RECIPES.update({f"{task}-dnc": TrainConfig(lr=1e-4)
                 for task in ("copy", "repeat_copy", "associative_recall", "priority_sort")})
# Multi-copy (several copy episodes in one sequence, for the DNC's memory reuse) is not a task of
# either paper: each model gets its copy recipe.
_RECIPES.update({f"multi_copy-{model}": _RECIPES[f"copy-{model}"] for model in ("ntm", "lstm", "dnc")})
# Faster recipes for a small compute budget (Part III's shipped models; see the chapters):
# batches of 32 instead of 1, a larger step, the paper's element-wise clipping kept. Adam at
# 1e-3; the same with a curriculum over the first 50,000 sequences; centered RMSProp at 3e-4.
_FAST = {"batch_size": 32, "sequences": 200_000, "log_every": 1_000, "checkpoint_every": 10_000,
         "eval_sequences": 512}
_RECIPES["fast-adam"] = TrainConfig(optimizer="adam", lr=1e-3, eps=1e-8, **_FAST)
_RECIPES["fast-adam-curriculum"] = TrainConfig(
    optimizer="adam", lr=1e-3, eps=1e-8, curriculum_sequences=50_000, curriculum_start=0.1, **_FAST
)
# fast-adam with PyTorch's fused Adam, and a 33-fold smaller step once the training bit errors
# first fall below 0.1 per sequence: the copy NTM's recipe before its sharpening was bounded.
_RECIPES["fast-adam-settle"] = TrainConfig(
    optimizer="adam", lr=1e-3, eps=1e-8, lr_drop_below=0.1, lr_drop_factor=0.03,
    fused_optimizer=True, **_FAST
)
# The same with a tenfold drop: the recipe of the shipped copy NTM, whose sharpening is bounded
# at 2 (NTMConfig.preset("copy-row0-gamma2")), and of the convergence benchmark. How the two were
# chosen, and what they give over forty seeds, is in the "Performance and stability" appendix.
_RECIPES["fast-adam-settle10"] = replace(_RECIPES["fast-adam-settle"], lr_drop_factor=0.1)
_RECIPES["fast-rmsprop"] = TrainConfig(lr=3e-4, **{**_FAST, "batch_size": 16})
_RECIPES["tiny"] = TrainConfig(
    lr=1e-3, batch_size=4, sequences=32, log_every=8, checkpoint_every=16, eval_sequences=8
)


def default_preset(task: str, model_kind: str) -> str:
    """The model preset ``train`` uses by default: the one named after the task for the NTM (the
    paper's, or ``multi_copy``'s 16 rows) and for the DNC where it has one (``multi_copy``),
    else ``small``."""
    if model_kind == "ntm":
        return task
    if model_kind == "dnc" and task in model_classes("dnc")[0].preset_names():
        return task
    return "small"


def default_recipe(task: str, model_kind: str, preset: str) -> str:
    """The recipe ``train`` uses by default: ``tiny`` with the tiny model, else ``task-model``."""
    return "tiny" if preset == "tiny" else f"{task}-{model_kind}"


def model_config_for(task: Task, model_kind: str, preset: str) -> Any:
    """The model config of ``preset``, with the task's input and output sizes."""
    config_cls, _ = model_classes(model_kind)
    return config_cls.preset(preset, input_size=task.input_size, output_size=task.output_size)


# --------------------------------------------------------------------------- pieces of a step


def make_optimizer(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=config.lr, alpha=config.alpha, eps=config.eps, momentum=config.momentum,
            centered=True,
        )
    # fused=None (not False) leaves PyTorch's own choice of implementation.
    return torch.optim.Adam(params, lr=config.lr, eps=config.eps,
                            fused=True if config.fused_optimizer else None)


def clip_gradients(params: Iterable[nn.Parameter], config: TrainConfig) -> None:
    """Element-wise clipping (``clip_value``) then norm clipping (``clip_norm``), if set."""
    params = [p for p in params if p.grad is not None]
    if config.clip_value is not None:
        torch.nn.utils.clip_grad_value_(params, config.clip_value)
    if config.clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, config.clip_norm)


def difficulty_at(sequences_seen: int, config: TrainConfig) -> float:
    """The curriculum's fraction of the training range after ``sequences_seen`` sequences."""
    if config.curriculum_sequences <= 0:
        return 1.0
    progress = min(1.0, sequences_seen / config.curriculum_sequences)
    return config.curriculum_start + (1.0 - config.curriculum_start) * progress


def hard_schedule_at(sequences_seen: int, config: TrainConfig) -> tuple[float, float]:
    """The hard heads' ``(temperature, mix)`` after ``sequences_seen`` sequences.

    Over the first ``hard_anneal_sequences`` the temperature goes geometrically from
    ``hard_tau_start`` to ``hard_tau_end`` and the mix linearly from ``hard_mix_start`` to 1;
    after that (or with no annealing) they stay at ``hard_tau_end`` and 1.
    """
    if config.hard_anneal_sequences <= 0:
        return float(config.hard_tau_end), 1.0
    progress = min(1.0, sequences_seen / config.hard_anneal_sequences)
    tau = config.hard_tau_start * (config.hard_tau_end / config.hard_tau_start) ** progress
    mix = config.hard_mix_start + (1.0 - config.hard_mix_start) * progress
    return float(tau), float(mix)


def train_step(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
) -> tuple[float, float]:
    """One update on one batch; returns the batch's summed cost (bits) and summed bit errors.
    Raises FloatingPointError if the loss is not finite."""
    inputs, targets, mask = batch
    if not model.training:  # (walking the module tree every step costs about 1% of a fused one)
        model.train()
    optimizer.zero_grad(set_to_none=True)
    logits = model(inputs)  # (B, T, O)
    cost_nats = sequence_cost_nats(logits, targets, mask)  # (B,)
    loss = cost_nats.mean()
    if not torch.isfinite(loss):
        raise FloatingPointError(f"the training loss became {loss.item()}; lower the learning rate")
    loss.backward()
    with torch.no_grad():
        errors = float(sequence_bit_errors(logits, targets, mask).sum())
    # The parameters the optimizer updates (the same set as model.parameters() for every model
    # here, without walking the module tree again).
    clip_gradients((p for g in optimizer.param_groups for p in g["params"]), config)
    optimizer.step()
    return float(cost_nats.detach().sum()) / math.log(2.0), errors


@torch.no_grad()
def evaluate_model(
    model: nn.Module,
    task: Task,
    sequences: int,
    generator: torch.Generator,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    **size: int | None,
) -> dict[str, float]:
    """Metrics on ``sequences`` fresh sequences: cost (bits) and bit errors per sequence, bit
    error rate. ``size`` fixes the problem size (``length``, ``repeats``, ``items``); sizes left
    out are drawn from the training range, one per batch of ``batch_size``."""
    if sequences < 1 or batch_size < 1:
        raise ValueError(f"sequences and batch_size must be >= 1, got {sequences}, {batch_size}")
    unknown = sorted(k for k, v in size.items() if v is not None and k not in task.size_parameters)
    if unknown:
        raise ValueError(
            f"task {task.name!r} takes the size parameters {list(task.size_parameters)}, "
            f"not {unknown}"
        )
    size = {k: v for k, v in size.items() if v is not None}
    model.eval()
    cost = errors = bits = 0.0
    done = 0
    while done < sequences:
        b = min(batch_size, sequences - done)
        inputs, targets, mask = (t.to(device) for t in task.sample(b, generator, **size))
        logits = model(inputs)  # (b, T, O)
        cost += float(sequence_cost_bits(logits, targets, mask).sum())
        errors += float(sequence_bit_errors(logits, targets, mask).sum())
        bits += float(scored_bits(targets, mask).sum())
        done += b
    return {
        "cost_bits": cost / sequences,
        "bit_errors": errors / sequences,
        "bit_error_rate": errors / max(bits, 1.0),
        "sequences": sequences,
    }


def evaluate(
    model: nn.Module,
    task: Task | str,
    sequences: int = 256,
    *,
    seed: int = 0,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    **size: int | None,
) -> dict[str, float]:
    """:func:`evaluate_model` on ``sequences`` fresh sequences drawn from a generator seeded
    with ``seed`` (a task may be given by name): cost (bits) and bit errors per sequence, bit
    error rate. ``size`` fixes the problem size (``length``, ``repeats``, ``items``)."""
    task = get_task(task) if isinstance(task, str) else task
    return evaluate_model(model, task, sequences, torch.Generator().manual_seed(seed),
                          batch_size=batch_size, device=device, **size)


def size_sweep(
    model: nn.Module,
    task: Task,
    parameter: str,
    values: Iterable[int],
    sequences: int = 32,
    seed: int = 0,
    device: torch.device | str = "cpu",
    **fixed: int,
) -> list[dict[str, float]]:
    """``evaluate_model`` at each value of one size parameter (e.g. copy ``length`` 10..120),
    each on fresh data from ``seed``; the rows feed ``viz.tasks.generalisation_plot``."""
    rows = []
    for value in values:
        generator = torch.Generator().manual_seed(seed)
        metrics = evaluate_model(model, task, sequences, generator, device=device,
                                 **{**fixed, parameter: value})
        rows.append({parameter: value, **metrics})
    return rows


# --------------------------------------------------------------------------- the loop


class Callback:
    """Something :func:`train` calls at fixed points of the loop; every method is optional.

    ``on_start`` before the first batch (also when resuming), ``on_batch_start`` before each
    batch is drawn, ``on_log_row`` after each learning-curve row (``loop.rows[-1]``),
    ``on_batch_end`` after each update with the batch's summed cost (bits), summed bit errors and
    size, ``on_end`` when the loop stops. A callback stops the loop by setting ``loop.stop``.
    What it must remember across a resume it returns from ``state_dict`` (plain Python values
    and tensors) and takes back in ``load_state_dict``; the loop saves it in the checkpoint under
    ``key`` (the class name unless set).
    """

    key: str = ""

    def on_start(self, loop: TrainLoop) -> None:
        pass

    def on_batch_start(self, loop: TrainLoop) -> None:
        pass

    def on_log_row(self, loop: TrainLoop) -> None:
        pass

    def on_batch_end(self, loop: TrainLoop, cost: float, errors: float, size: int) -> None:
        pass

    def on_end(self, loop: TrainLoop) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def _key(callback: Callback) -> str:
    return callback.key or type(callback).__name__


class WindowMean:
    """The mean training bit errors per sequence over the fewest last batches that cover
    ``window`` sequences (a batch is the unit: all its sequences share one size)."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.batches: deque[tuple[float, int]] = deque()  # (summed bit errors, sequences)

    def add(self, errors: float, size: int) -> tuple[float, bool]:
        """Add a batch; return the mean over the batches kept, and whether they cover the
        window."""
        self.batches.append((errors, size))
        while sum(n for _, n in self.batches) - self.batches[0][1] >= self.window:
            self.batches.popleft()
        covered = sum(n for _, n in self.batches)
        return sum(e for e, _ in self.batches) / covered, covered >= self.window

    def clear(self) -> None:
        self.batches.clear()

    def state_dict(self) -> list[list[float]]:
        return [list(b) for b in self.batches]

    def load_state_dict(self, batches: Sequence[Sequence[float]]) -> None:
        self.batches = deque(tuple(b) for b in batches)


class LearningRateDrop(Callback):
    """The recipe's one-time drop (``lr_drop_below``, ``lr_drop_factor``, ``lr_drop_window``).

    After every batch it updates the running mean of the training bit errors per sequence over
    the fewest last batches that cover ``lr_drop_window`` sequences; the first time that mean,
    over a full window, is below ``lr_drop_below``, every parameter group's learning rate
    becomes ``lr * lr_drop_factor``. Whether it happened is read from the optimizer's learning
    rate, which the checkpoint restores; the window is the callback's own checkpointed state,
    so a resumed run drops after the same batch as an uninterrupted one. ``dropped_at``
    (sequences) is kept for reports.
    """

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.window = WindowMean(config.lr_drop_window)
        self.dropped_at: int | None = None

    def on_batch_end(self, loop: TrainLoop, cost: float, errors: float, size: int) -> None:
        c = self.config
        if c.lr_drop_below is None or self.dropped(loop.optimizer):
            return
        mean, full = self.window.add(errors, size)
        if full and mean < c.lr_drop_below:
            for g in loop.optimizer.param_groups:
                g["lr"] = c.lr * c.lr_drop_factor
            self.dropped_at = loop.seen
            self.window.clear()  # no longer needed

    def dropped(self, optimizer: torch.optim.Optimizer) -> bool:
        return any(g["lr"] < self.config.lr for g in optimizer.param_groups)

    def state_dict(self) -> dict[str, Any]:
        return {"dropped_at": self.dropped_at, "window": self.window.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.dropped_at = state.get("dropped_at")
        self.window.load_state_dict(state.get("window", []))


class HardSchedule(Callback):
    """The hard heads' temperature and hard/soft mix (:func:`hard_schedule_at`), set on the
    model before every batch and when the loop ends."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config

    def on_batch_start(self, loop: TrainLoop) -> None:
        loop.model.set_hard_schedule(*hard_schedule_at(loop.seen, self.config))

    on_start = on_end = on_batch_start


class CurveLog(Callback):
    """Rewrites the learning curve as a CSV file (``LOG_COLUMNS``) at every row, atomically."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_log_row(self, loop: TrainLoop) -> None:
        write_csv(self.path, LOG_COLUMNS, loop.rows)


class Progress(Callback):
    """A tqdm progress bar on stderr, with the last row's cost and bit errors."""

    def __init__(self, desc: str = "") -> None:
        self.desc, self.bar = desc, None

    def on_start(self, loop: TrainLoop) -> None:
        self.bar = tqdm(total=loop.config.sequences, initial=loop.seen, file=sys.stderr,
                        unit="seq", desc=self.desc, dynamic_ncols=True)

    def on_batch_end(self, loop: TrainLoop, cost: float, errors: float, size: int) -> None:
        self.bar.update(size)

    def on_log_row(self, loop: TrainLoop) -> None:
        self.bar.set_postfix(cost=f"{loop.rows[-1][1]:.2f}", errors=f"{loop.rows[-1][2]:.2f}")

    def on_end(self, loop: TrainLoop) -> None:
        self.bar.close()


class Checkpoints(Callback):
    """Calls ``save(loop)`` whenever the run passes a multiple of ``every`` sequences before its
    end (the end itself is the caller's to save, after the final evaluation); with
    ``stop_after``, stops the loop at the first checkpoint at or after that many sequences, as if
    the run had been interrupted there."""

    def __init__(self, save, every: int, stop_after: int | None = None) -> None:
        self.save, self.every, self.stop_after = save, every, stop_after

    def on_batch_end(self, loop: TrainLoop, cost: float, errors: float, size: int) -> None:
        if loop.seen >= loop.config.sequences or loop.seen // self.every == (loop.seen - size) // self.every:
            return
        self.save(loop)
        if self.stop_after is not None and loop.seen >= self.stop_after:
            loop.stop = True


class TrainLoop:
    """The state of one training run: the model, its optimizer, the data generator (seeded with
    ``seed``), the counters and the learning curve so far, and the callbacks. :func:`train`
    builds one and runs it; a resumed run loads a checkpoint's :meth:`state_dict` first.

    The model is built (after ``torch.manual_seed``) and moved to ``device`` by the caller.
    Callbacks from the recipe and the model come first: :class:`LearningRateDrop` when the
    recipe has a drop, :class:`HardSchedule` when the model has hard heads.
    """

    def __init__(self, model: nn.Module, task: Task, config: TrainConfig, *, seed: int = 0,
                 device: torch.device | str = "cpu", callbacks: Sequence[Callback] = ()) -> None:
        self.model, self.task, self.config, self.device = model, task, config, torch.device(device)
        self.optimizer = make_optimizer(model.parameters(), config)
        self.generator = torch.Generator().manual_seed(seed)  # every training batch comes from here
        self.seen, self.wall = 0, 0.0
        self.acc = [0.0, 0.0, 0]  # cost (bits), bit errors, sequences since the last row
        self.rows: list[list[float]] = []
        self.stop = False
        builtin: list[Callback] = []
        if config.lr_drop_below is not None:
            builtin.append(LearningRateDrop(config))
        if hasattr(model, "set_hard_schedule"):
            builtin.append(HardSchedule(config))
        self.callbacks = [*builtin, *callbacks]
        keys = [_key(c) for c in self.callbacks]
        if len(set(keys)) != len(keys):
            raise ValueError(f"callbacks need distinct keys for their checkpointed state, got {keys}")

    def callback(self, kind: type) -> Callback | None:
        """The first callback of class ``kind``, or None."""
        return next((c for c in self.callbacks if isinstance(c, kind)), None)

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs to resume: optimizer, RNG states, counters, callbacks."""
        rng = {"data": self.generator.get_state(), "torch": torch.get_rng_state()}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        return {
            "optimizer": self.optimizer.state_dict(),
            "rng": rng,
            "train_state": {
                "sequences_seen": self.seen, "wall_seconds": self.wall,
                "accumulator": list(self.acc),
                "callbacks": {_key(c): c.state_dict() for c in self.callbacks},
            },
        }

    def load_state_dict(self, state: dict[str, Any], rows: Sequence[Sequence[float]] = ()) -> None:
        """Continue from ``state`` (:meth:`state_dict`, as a checkpoint holds it) with the
        learning-curve ``rows`` written up to it."""
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["rng"]["data"])
        torch.set_rng_state(state["rng"]["torch"])
        if "cuda" in state["rng"] and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["rng"]["cuda"], self.device)
        st = state["train_state"]
        self.seen, self.wall = int(st["sequences_seen"]), float(st["wall_seconds"])
        self.acc = list(st["accumulator"])
        self.rows = [list(r) for r in rows if r[0] <= self.seen]
        saved = st.get("callbacks", {})  # absent in checkpoints written before callbacks had state
        for c in self.callbacks:
            c.load_state_dict(saved.get(_key(c), {}))

    def run(self) -> TrainLoop:
        """Train until ``config.sequences`` sequences have been seen (the last batch may be
        smaller, so that exactly that many are) or a callback sets ``stop``. Raises
        FloatingPointError if the loss stops being finite."""
        c = self.config
        total, every = c.sequences, c.log_every
        self.stop = False
        for cb in self.callbacks:
            cb.on_start(self)
        while self.seen < total and not self.stop:
            b = min(c.batch_size, total - self.seen)
            start = time.perf_counter()
            for cb in self.callbacks:
                cb.on_batch_start(self)
            batch = self.task.sample_train(b, self.generator, difficulty_at(self.seen, c))
            batch = tuple(t.to(self.device) for t in batch)
            cost, errors = train_step(self.model, batch, self.optimizer, c)
            self.wall += time.perf_counter() - start
            self.seen += b
            self.acc = [self.acc[0] + cost, self.acc[1] + errors, self.acc[2] + b]
            if self.seen // every > (self.seen - b) // every or self.seen >= total:
                n = self.acc[2]
                self.rows.append([self.seen, self.acc[0] / n, self.acc[1] / n, round(self.wall, 3)])
                self.acc = [0.0, 0.0, 0]
                for cb in self.callbacks:
                    cb.on_log_row(self)
            for cb in self.callbacks:
                cb.on_batch_end(self, cost, errors, b)
        for cb in self.callbacks:
            cb.on_end(self)
        return self


def train(
    model: nn.Module,
    task: Task | str,
    config: TrainConfig,
    *,
    seed: int = 0,
    device: torch.device | str = "cpu",
    callbacks: Sequence[Callback] = (),
    state: dict[str, Any] | None = None,
    rows: Sequence[Sequence[float]] = (),
) -> TrainLoop:
    """Train ``model`` on ``task`` with the recipe ``config``: the one training loop of the
    package (see :class:`TrainLoop` and :class:`Callback`). Batches come from a generator seeded
    with ``seed``; ``state`` (and the curve's ``rows``) resume a run from its checkpoint.
    Returns the finished loop: ``loop.rows`` is the learning curve, ``loop.seen`` and
    ``loop.wall`` the sequences and seconds of training."""
    loop = TrainLoop(model, get_task(task) if isinstance(task, str) else task, config, seed=seed,
                     device=device, callbacks=callbacks)
    if state is not None:
        loop.load_state_dict(state, rows)
    return loop.run()


# --------------------------------------------------------------------------- a run on disk


@dataclass
class TrainResult:
    """What ``run_training`` leaves behind."""

    model: nn.Module
    checkpoint: Path
    log: Path
    rows: list[list[float]]
    metrics: dict[str, float]
    exported: Path | None = None


def run_name(task: str, model_kind: str) -> str:
    return f"{task}-{model_kind}"


def _train_config_differences(found: dict[str, Any], expected: TrainConfig) -> list[str]:
    """The recipe fields in which a checkpoint's manifest (``found``) differs from ``expected``;
    a field missing from an older manifest counts as its default."""
    wanted = dataclasses.asdict(expected)
    defaults = dataclasses.asdict(TrainConfig())
    free = {"sequences", "checkpoint_every", "eval_sequences"}  # may change when resuming
    return [
        f"{k}: checkpoint={found.get(k, defaults[k])!r}, now={v!r}"
        for k, v in wanted.items()
        if k not in free and found.get(k, defaults[k]) != v
    ]


def _last_row_metrics(rows: Sequence[Sequence[float]]) -> dict[str, float]:
    """The training cost and bit errors of the last learning-curve row (none before the first)."""
    return {"train_cost_bits": rows[-1][1], "train_bit_errors": rows[-1][2]} if rows else {}


def removed_options_in_use(found: dict[str, Any]) -> list[str]:
    """The options of :data:`REMOVED_OPTIONS` that a manifest's recipe (``found``) set to a
    value other than the one that left them off."""
    return [f"{k}={found[k]!r}" for k, off in REMOVED_OPTIONS.items() if k in found and found[k] != off]


def _refuse_removed_options(found: dict[str, Any], path: Path, action: str) -> None:
    """CheckpointError if the recipe ``found`` in the manifest of ``path`` used an option of
    :data:`REMOVED_OPTIONS`: the run cannot be ``action`` (resumed, replayed) here."""
    removed = removed_options_in_use(found)
    if removed:
        raise CheckpointError(
            f"checkpoint {path} was trained with {', '.join(removed)}: training options "
            "this version no longer has (the book's 'Performance and stability' appendix "
            f"names the version that does); it cannot be {action} here"
        )


def run_training(
    task_name: str,
    model_kind: str,
    model_config: Any,
    train_config: TrainConfig,
    out_dir: str | Path,
    *,
    seed: int = 0,
    resume: bool = False,
    command: str | None = None,
    progress: bool = True,
    device: torch.device | str = "cpu",
    export_dir: str | Path | None = None,
    stop_after: int | None = None,
    fused: bool = False,
    preset: str | None = None,
    recipe: str | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainResult:
    """Train (or resume training) one model on one task with :func:`train`, on disk.

    Writes ``out_dir/<task>-<model>.pt`` (+ ``.json`` manifest) every ``checkpoint_every``
    sequences and at the end, and the learning curve ``out_dir/<task>-<model>.csv``. With
    ``export_dir`` the final model is also exported there in float16, with metrics measured on
    the exported weights. ``stop_after`` (for tests) stops early after that many sequences,
    right after a checkpoint -- as if the run had been interrupted. ``fused`` (NTM only) runs
    the fused C++ unroll (:meth:`NTM.use_fused <neural_memory.ntm.NTM.use_fused>`): the same
    function, computed faster; float rounding differs, so a run and its resume should agree on it.
    ``preset`` and ``recipe`` name where ``model_config`` and ``train_config`` came from; the
    manifest records them with ``fused`` and the number of torch threads, so that
    :func:`retrain_model` can replay the run. ``callbacks`` are added to the loop's own (the
    learning curve, the checkpoints and, with ``progress``, a progress bar).
    """
    task = get_task(task_name)
    if fused and model_kind != "ntm":
        raise ValueError(f"fused applies to the NTM only; got model {model_kind!r}")
    if fused:
        check_device(device)  # before any work on another device
    if (model_config.input_size, model_config.output_size) != (task.input_size, task.output_size):
        raise ValueError(
            f"task {task_name!r} has {task.input_size} inputs and {task.output_size} outputs; "
            f"the model config has {model_config.input_size} and {model_config.output_size}"
        )
    out_dir = Path(out_dir)
    name = run_name(task_name, model_kind)
    ckpt_path, log_path = out_dir / f"{name}.pt", out_dir / f"{name}.csv"
    if resume and not ckpt_path.exists():  # before anything is created or built
        raise CheckpointError(
            f"--resume expects the checkpoint {ckpt_path} of an earlier run, got no checkpoint "
            "there (nothing to resume)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(seed)  # model initialisation (and any randomness inside the model)
    model = build_model(model_kind, model_config).to(device)
    if fused:
        model.use_fused()

    origin = {"preset": preset, "recipe": recipe, "fused": fused, "threads": torch.get_num_threads()}

    def save(loop: TrainLoop, metrics: dict[str, float] | None = None) -> None:
        if metrics is None:  # a checkpoint during the run: the last row's training figures
            metrics = _last_row_metrics(loop.rows)
        state = loop.state_dict()
        save_checkpoint(
            ckpt_path, model, model_config, task=task_name, model_kind=model_kind, seed=seed,
            sequences_seen=loop.seen, metrics=metrics, optimizer_state=state["optimizer"],
            train_config=train_config, rng_state=state["rng"], train_state=state["train_state"],
            command=command, extra_manifest=origin,
        )

    loop_callbacks: list[Callback] = [CurveLog(log_path),
                                      Checkpoints(save, train_config.checkpoint_every, stop_after)]
    if progress:
        loop_callbacks.append(Progress(name))
    loop = TrainLoop(model, task, train_config, seed=seed, device=device,
                     callbacks=[*loop_callbacks, *callbacks])
    if resume:
        ckpt = load_checkpoint(ckpt_path, model_config, task=task_name, model_kind=model_kind)
        missing = [k for k in ("optimizer", "rng", "train_state") if k not in ckpt.state]
        if missing:
            raise CheckpointError(
                "--resume expects a checkpoint with resume state (optimizer, rng, train_state), "
                f"got {ckpt_path} without {', '.join(missing)}; it cannot be resumed"
            )
        found = ckpt.manifest.get("train_config") or {}
        _refuse_removed_options(found, ckpt_path, "resumed")
        diff = _train_config_differences(found, train_config)
        if diff:
            raise CheckpointError(
                f"checkpoint {ckpt_path} was trained with a different recipe: " + "; ".join(diff)
            )
        if ckpt.manifest.get("seed") != seed:
            raise CheckpointError(
                f"checkpoint {ckpt_path} was trained with seed {ckpt.manifest.get('seed')}; "
                f"expected the same seed, got {seed}"
            )
        model.load_state_dict(ckpt.model.state_dict())
        rows = [
            [int(r["sequences"]), float(r["cost_bits"]), float(r["bit_errors"]), float(r["wall_seconds"])]
            for r in (read_csv(log_path) if log_path.exists() else [])
        ]
        loop.load_state_dict(ckpt.state, rows)
        write_csv(log_path, LOG_COLUMNS, loop.rows)

    loop.run()
    if loop.stop:  # stopped by stop_after, right after a checkpoint
        return TrainResult(model, ckpt_path, log_path, loop.rows, _last_row_metrics(loop.rows))

    eval_gen = torch.Generator().manual_seed(seed + 1_000_003)  # fresh data, never trained on
    metrics = evaluate_model(model, task, train_config.eval_sequences, eval_gen, device=device)
    final = {**{f"eval_{k}": v for k, v in metrics.items()}, **_last_row_metrics(loop.rows)}
    save(loop, final)
    result = TrainResult(model, ckpt_path, log_path, loop.rows, final)
    if export_dir is not None:
        result.exported = export_run(ckpt_path, log_path, export_dir, task, train_config, seed, device)
    return result


def export_run(
    ckpt_path: Path,
    log_path: Path,
    export_dir: str | Path,
    task: Task,
    train_config: TrainConfig,
    seed: int,
    device: torch.device | str = "cpu",
) -> Path:
    """Export a finished run in float16 (weights, manifest, learning curve) to ``export_dir``,
    with final metrics measured again on the float16-rounded weights."""
    export_dir = Path(export_dir)
    rounded = load_checkpoint(ckpt_path).model.to(device)
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.half().float())
    eval_gen = torch.Generator().manual_seed(seed + 1_000_003)
    metrics = evaluate_model(rounded, task, train_config.eval_sequences, eval_gen, device=device)
    dst = export_dir / ckpt_path.name
    found = load_checkpoint(ckpt_path).manifest["metrics"]
    shipped = {k: v for k, v in found.items() if k.startswith("train_")}
    shipped.update({f"eval_{k}": v for k, v in metrics.items()})
    export_checkpoint(ckpt_path, dst, metrics=shipped)
    write_csv(export_dir / log_path.name, LOG_COLUMNS,
              [[r["sequences"], r["cost_bits"], r["bit_errors"], r["wall_seconds"]] for r in read_csv(log_path)])
    return dst


def load_or_train(
    task_name: str,
    model_kind: str,
    *,
    retrain: bool = False,
    directory: str | Path | None = None,
    out_dir: str | Path | None = None,
    preset: str | None = None,
    recipe: str | None = None,
    seed: int = 0,
    progress: bool = True,
    **recipe_overrides: Any,
) -> Checkpoint:
    """The shipped model for a task (``directory``, default the package's data dir); with
    ``retrain``, the same model trained again from its manifest (:func:`retrain_model`, into
    ``out_dir``, default ``runs/<task>-<model>``). Only when nothing is shipped does it train
    ``preset`` with ``recipe``, ``seed`` and ``recipe_overrides`` (defaults: the task's preset
    and recipe). The chapters call this: load by default, one flag retrains.
    """
    path = Path(directory if directory is not None else SHIPPED_DIR) / f"{run_name(task_name, model_kind)}.pt"
    out_dir = out_dir if out_dir is not None else Path("runs") / run_name(task_name, model_kind)
    if path.exists():
        if not retrain:
            return load_checkpoint(path, task=task_name, model_kind=model_kind)
        return retrain_model(task_name, model_kind, directory=path.parent, out_dir=out_dir,
                             progress=progress)
    task = get_task(task_name)
    preset = preset or default_preset(task_name, model_kind)
    recipe = recipe or default_recipe(task_name, model_kind, preset)
    config = model_config_for(task, model_kind, preset)
    train_config = TrainConfig.preset(recipe, **recipe_overrides)
    result = run_training(task_name, model_kind, config, train_config, out_dir, seed=seed,
                          progress=progress, preset=preset, recipe=recipe)
    return load_checkpoint(result.checkpoint, config, task=task_name, model_kind=model_kind)


def retrain_model(
    task_name: str,
    model_kind: str,
    *,
    directory: str | Path | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    export_dir: str | Path | None = None,
    callbacks: Sequence[Callback] = (),
) -> Checkpoint:
    """Train the shipped ``<task>-<model>`` again from its manifest: the same model config,
    recipe, seed, number of sequences, fused unroll or not, and number of torch threads (float
    rounding can depend on it; the previous count is restored afterwards). The run goes to
    ``out_dir`` (default ``runs/<task>-<model>``) and, with ``export_dir``, is exported there
    as :func:`run_training` does. On the same machine and torch build, the result has the
    shipped weights (the tests check this on small models).

    ``directory`` holds the manifest (default: the package's shipped models). A manifest that
    does not say whether the fused unroll ran or with how many threads (older ones) is read
    from its ``command``. ``callbacks`` go to :func:`run_training`.
    """
    path = shipped_checkpoint(task_name, model_kind, directory)
    manifest = read_manifest(path)
    check_manifest_is_for(manifest, path, task=task_name, model_kind=model_kind)
    found = manifest.get("train_config")
    if not found:
        raise CheckpointError(f"manifest of {path} records no recipe (train_config); it cannot be replayed")
    _refuse_removed_options(found, path, "replayed")
    train_config = dataclass_from_dict(TrainConfig, found)
    config = config_from_dict(model_kind, manifest["config"])
    command = (manifest.get("command") or "").split()
    fused = manifest.get("fused", "--fused" in command)
    threads = manifest.get("threads")
    if threads is None and "--threads" in command[:-1]:
        threads = int(command[command.index("--threads") + 1])
    out_dir = out_dir if out_dir is not None else Path("runs") / run_name(task_name, model_kind)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        result = run_training(
            task_name, model_kind, config, train_config, out_dir, seed=manifest["seed"],
            command=manifest.get("command"), progress=progress, fused=fused,
            preset=manifest.get("preset"), recipe=manifest.get("recipe"), export_dir=export_dir,
            callbacks=callbacks,
        )
    finally:
        torch.set_num_threads(before)
    return load_checkpoint(result.checkpoint, config, task=task_name, model_kind=model_kind)
