"""The training loop shared by every Part III model, its recipe, and evaluation on fresh data.

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

**Exact resume.** A checkpoint holds the model, the optimizer state, the data generator's state
(a ``torch.Generator`` that draws every training batch), torch's global RNG state and the loop
counters; resuming from it replays exactly the batches and updates an uninterrupted run would
have made, so both end with bit-identical weights (on the same machine and torch build).

The learning curve is a CSV file with one row every ``log_every`` sequences: ``sequences``
seen, ``cost_bits`` and ``bit_errors`` per sequence averaged over the training batches since the
previous row, and cumulative training ``wall_seconds``. It is rewritten atomically at every row;
on resume, rows after the checkpoint are dropped.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from neural_memory.checkpoint import (
    SHIPPED_DIR,
    Checkpoint,
    CheckpointError,
    build_model,
    export_checkpoint,
    load_checkpoint,
    model_classes,
    read_csv,
    save_checkpoint,
    write_csv,
)
from neural_memory.ntm.fused import check_device
from neural_memory.tasks import Batch, Task, get_task
from neural_memory.tasks.metrics import (
    scored_bits,
    sequence_bit_errors,
    sequence_cost_bits,
    sequence_cost_nats,
)

LOG_COLUMNS = ("sequences", "cost_bits", "bit_errors", "wall_seconds")


MIXED_LENGTHS = ("never", "always", "after-drop")
#: TrainConfig's on/off options that only Adam has.
ADAM_SWITCHES = ("amsgrad", "amsgrad_after_drop", "fused_optimizer")


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
    # Spike clipping (issue 7: relapses): rescale the whole gradient to at most spike_clip times
    # the running mean of recent gradient norms (decay spike_clip_beta per batch; it is fed the
    # norms after clipping, so a spike does not raise its own limit). None: off.
    spike_clip: float | None = None
    spike_clip_beta: float = 0.99
    # Weight noise (issue 7: relapses; Graves, 2011): every batch's forward and backward pass runs
    # with Gaussian noise of this standard deviation added to every parameter (fresh noise per
    # batch, from torch's global RNG, so a checkpoint resumes it exactly), and the update is
    # applied to the noiseless weights. None: off.
    weight_noise: float | None = None
    # ... only from the learning-rate drop on (needs lr_drop_below), so that the run is the same
    # as without the noise up to the drop and the noise acts on the margins of the model the drop
    # would otherwise freeze (issue 7). Measured with 0.02 on the eight seeds that relapse
    # without it: all eight relapsed, seven of them higher (the appendix).
    weight_noise_from_drop: bool = False
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
    # Settle after converging (issue 7: runs that relapse): the first time the training bit
    # errors per sequence (a learning-curve row, or the benchmark's running mean) fall below
    # lr_drop_below, the learning rate is multiplied by lr_drop_factor, once. None: never.
    lr_drop_below: float | None = None
    lr_drop_factor: float = 0.1
    # ... and not at once, but this many sequences after that first time, so that the full step
    # can finish the fall (issue 7: the seeds that relapse are mostly the ones that first cross
    # the line early, during a steep fall; but with 20,000 such seeds collapsed under the full
    # step before the drop came: see the "Performance and stability" appendix). 0: at once.
    lr_drop_delay: int = 0
    # Lengths inside a training batch (Task.sample_train's ``mixed``): "never" -- one size per
    # batch, as in the paper; "always" -- every sequence drawn on its own, padded; "after-drop" --
    # one size per batch until the learning-rate drop above, mixed from then on.
    mixed_lengths: str = "never"
    # What else changes at the drop. amsgrad_after_drop (Adam only): from the drop on, divide by
    # the largest second-moment estimate since the drop (AMSGrad, started from Adam's estimate at
    # that moment), so steps shrink when gradients do. lr_half_life_after_drop: after the drop the
    # learning rate halves every this many sequences (0: it stays at lr * lr_drop_factor).
    amsgrad_after_drop: bool = False
    lr_half_life_after_drop: int = 0
    # A learning rate that follows the errors (issue 7: relapses), instead of the one-time drop:
    # before every update the step is lr * clamp((E / lr_follow_errors) ** lr_follow_power,
    # lr_follow_floor, 1), where E is the running mean (decay lr_follow_beta per batch, this batch
    # included) of the training bit errors per sequence -- small once the model is right, larger
    # again as soon as it errs (lr_follow_down_only: it never rises again). None: off.
    lr_follow_errors: float | None = None
    lr_follow_power: float = 1.0
    lr_follow_floor: float = 0.01
    lr_follow_beta: float = 0.98
    lr_follow_down_only: bool = False
    # Focus on the sizes the model gets wrong (issue 7: relapses; one size per batch): every
    # batch's sizes are drawn with probability (1 - focus_errors) / N + focus_errors * e / sum(e)
    # over the N sizes of the training range, e each size's running mean of training bit errors
    # per sequence (decay focus_beta per batch of that size; a size not drawn yet counts as the
    # worst one). 0: uniform, as in the paper.
    focus_errors: float = 0.0
    focus_beta: float = 0.8
    # Adam only: AMSGrad (Reddi et al., 2018) divides by the largest second-moment estimate so
    # far, so steps shrink once gradients do (measured against relapse in benchmarks/).
    amsgrad: bool = False
    # Adam only: the decay rates of its running means of the gradient and its square.
    beta1: float = 0.9
    beta2: float = 0.999
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
        for name in ("batch_size", "sequences", "log_every", "checkpoint_every", "eval_sequences"):
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
        if self.lr_drop_below is not None and not self.lr_drop_below > 0:
            raise ValueError(f"lr_drop_below must be > 0 or None, got {self.lr_drop_below!r}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise ValueError(f"TrainConfig.{name} must be in [0, 1), got {value!r}")
        for name in ADAM_SWITCHES:  # Adam's on/off options
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(f"TrainConfig.{name} must be a bool, got {value!r}")
            if value and self.optimizer != "adam":
                raise ValueError(f"TrainConfig.{name}=True needs optimizer='adam' (an option of "
                                 "Adam; RMSProp has no counterpart here), got "
                                 f"optimizer={self.optimizer!r}")
        if not 0 < self.lr_drop_factor <= 1:
            raise ValueError(f"lr_drop_factor must be in (0, 1], got {self.lr_drop_factor!r}")
        if self.mixed_lengths not in MIXED_LENGTHS:
            raise ValueError(
                f"mixed_lengths must be one of {MIXED_LENGTHS}, got {self.mixed_lengths!r}"
            )
        for name in ("lr_half_life_after_drop", "lr_drop_delay"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be an integer >= 0 (sequences), got {value!r}")
        for name in ("lr_follow_down_only", "weight_noise_from_drop"):  # the non-Adam switches
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be a bool, got {value!r}")
        if self.weight_noise_from_drop and self.weight_noise is None:
            raise ValueError("weight_noise_from_drop needs a weight_noise (a standard deviation), "
                             "got weight_noise=None")
        at_drop = self.mixed_lengths == "after-drop" or self.amsgrad_after_drop \
            or self.lr_half_life_after_drop or self.lr_drop_delay or self.weight_noise_from_drop
        if at_drop and (self.lr_drop_below is None or self.lr_drop_factor == 1):
            raise ValueError("mixed_lengths='after-drop', amsgrad_after_drop, "
                             "lr_half_life_after_drop, lr_drop_delay and weight_noise_from_drop "
                             "act at the learning-rate drop: expected lr_drop_below set and an "
                             f"lr_drop_factor below 1, got lr_drop_below={self.lr_drop_below!r} "
                             f"and lr_drop_factor={self.lr_drop_factor!r}")
        if self.lr_follow_errors is not None and self.lr_drop_below is not None:
            raise ValueError("lr_follow_errors and lr_drop_below are two schedules for the "
                             "learning rate; expected one of them set, got both "
                             f"(lr_follow_errors={self.lr_follow_errors!r}, "
                             f"lr_drop_below={self.lr_drop_below!r})")
        # Numbers (not bools) that must be finite and in range; the optional ones when set.
        ranges = {"spike_clip_beta": ("in (0, 1)", lambda v: 0 < v < 1),
                  "lr_follow_power": ("> 0", lambda v: v > 0),
                  "lr_follow_floor": ("in (0, 1]", lambda v: 0 < v <= 1),
                  "lr_follow_beta": ("in [0, 1)", lambda v: 0 <= v < 1),
                  "focus_errors": ("in [0, 1]", lambda v: 0 <= v <= 1),
                  "focus_beta": ("in [0, 1)", lambda v: 0 <= v < 1)}
        if self.weight_noise is not None:
            ranges["weight_noise"] = ("> 0 (a standard deviation) or None", lambda v: v > 0)
        if self.spike_clip is not None:
            ranges["spike_clip"] = (">= 1 (a multiple of the running mean gradient norm) or None",
                                    lambda v: v >= 1)
        if self.lr_follow_errors is not None:
            ranges["lr_follow_errors"] = ("> 0 or None", lambda v: v > 0)
        for name, (what, in_range) in ranges.items():
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)
                    and math.isfinite(value) and in_range(value)):
                raise ValueError(f"TrainConfig.{name} must be a number {what}, got {value!r}")
        if self.focus_errors and self.mixed_lengths != "never":
            raise ValueError("focus_errors draws one set of sizes per batch; it does not go with "
                             f"mixed_lengths={self.mixed_lengths!r}")
        if not isinstance(self.hard_anneal_sequences, int) or self.hard_anneal_sequences < 0:
            raise ValueError(
                f"hard_anneal_sequences must be an integer >= 0, got {self.hard_anneal_sequences!r}"
            )

    @classmethod
    def preset(cls, name: str, **overrides) -> TrainConfig:
        """A named recipe: ``"<task>-<model>"`` (the paper's settings) or ``"tiny"``."""
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
# Faster recipes for a small compute budget (Part III's shipped models; see the chapters):
# batches of 32 instead of 1, a larger step, the paper's element-wise clipping kept. Adam at
# 1e-3; the same with a curriculum over the first 50,000 sequences; centered RMSProp at 3e-4.
_FAST = {"batch_size": 32, "sequences": 200_000, "log_every": 1_000, "checkpoint_every": 10_000,
         "eval_sequences": 512}
_RECIPES["fast-adam"] = TrainConfig(optimizer="adam", lr=1e-3, eps=1e-8, **_FAST)
_RECIPES["fast-adam-curriculum"] = TrainConfig(
    optimizer="adam", lr=1e-3, eps=1e-8, curriculum_sequences=50_000, curriculum_start=0.1, **_FAST
)
# fast-adam, then a 33-fold smaller step once the training bit errors first fall below 0.1 per
# sequence (issue 7, measured in benchmarks/, see the "Performance and stability" appendix: with
# the row-0 copy NTM every seed converged, and over three times its sequences 3 of 10 seeds rose
# just above 1 bit per sequence (at most 1.92; 4 of 10, at most 1.88, with the current kernel
# and fused Adam), against 4 of 5, three to chance, without the
# drop; a tenfold drop (this recipe's first version) left relapses in 2-3 seeds of 5, a 0.3-fold
# one in 4; AMSGrad, Adam eps 1e-4 and beta2 0.99 did worse). Changes after the drop -- annealing
# the step (lr_half_life_after_drop), AMSGrad from the drop, mixed-length batches -- did not remove
# the relapses: the relapsing seeds were never really below 0.1 when the drop came; neither did
# mixed-length batches from the start (2 of 5). Spike clipping (spike_clip=3) gave 2 of 10 and
# faster convergence, but collapses without the drop and learned less after it, so it is not on.
# A step that follows the errors (lr_follow_errors) collapsed when it could rise again and
# relapsed when it only fell; drawing lengths by their errors (focus_errors=0.8) relapsed in 5 of 10.
# It runs PyTorch's fused Adam (fused_optimizer; the update of fast-adam, faster per step).
# Weight noise (weight_noise=0.02) relapsed in 1 of the same 10 seeds but in 5 of 10 fresh ones
# (seeds 10-19, where this recipe relapsed in 4 of 10), so it is not on either. A 100-fold drop
# gave 19 of the 20 seeds the same verdict (the relapses are settled before the drop, mostly in
# seeds that cross early), and keeping the full step 20,000 sequences past the crossing
# (lr_drop_delay) collapsed 4 of 4 of those seeds. A tenfold drop relapsed in 8 of 20 too, more
# deeply (to 13), with better final models (15 of 20 within Part III's targets, against 10); on
# the eight seeds that relapse a 0.3-fold one collapsed 4 of 4, and weight noise from the drop
# (weight_noise_from_drop) relapsed in 8; batches of 64 relapsed in 3 of 5.
_RECIPES["fast-adam-settle"] = TrainConfig(
    optimizer="adam", lr=1e-3, eps=1e-8, lr_drop_below=0.1, lr_drop_factor=0.03,
    fused_optimizer=True, **_FAST
)
# fast-adam-settle with a tenfold drop, for the copy NTM whose sharpening is bounded at 2
# (NTMConfig.preset("copy-row0-gamma2")): the benchmark's and the shipped copy model's recipe
# (issue 7). On 40 seeds of that model every seed converged (median 21 s, worst 52 s) and none
# rose above 1 bit per sequence over three times its sequences (worst running mean 0.95); 30 of
# the 40 models at the end of those runs met Part III's copy targets. The tenfold drop alone
# relapsed in 8 of 20 seeds of the unbounded model (see the appendix).
_RECIPES["fast-adam-settle10"] = replace(_RECIPES["fast-adam-settle"], lr_drop_factor=0.1)
_RECIPES["fast-rmsprop"] = TrainConfig(lr=3e-4, **{**_FAST, "batch_size": 16})
_RECIPES["tiny"] = TrainConfig(
    lr=1e-3, batch_size=4, sequences=32, log_every=8, checkpoint_every=16, eval_sequences=8
)


def default_preset(task: str, model_kind: str) -> str:
    """The model preset ``train`` uses by default: the paper's for the NTM, ``small`` for the LSTM."""
    return task if model_kind == "ntm" else "small"


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
    # fused=None (not False) leaves PyTorch's own choice, as before the option existed.
    return torch.optim.Adam(params, lr=config.lr, eps=config.eps, amsgrad=config.amsgrad,
                            betas=(config.beta1, config.beta2),
                            fused=True if config.fused_optimizer else None)


def clip_gradients(params: Iterable[nn.Parameter], config: TrainConfig) -> None:
    """Element-wise clipping (``clip_value``) then norm clipping (``clip_norm``), if set."""
    params = [p for p in params if p.grad is not None]
    if config.clip_value is not None:
        torch.nn.utils.clip_grad_value_(params, config.clip_value)
    if config.clip_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, config.clip_norm)


def clip_spikes(optimizer: torch.optim.Optimizer, config: TrainConfig) -> bool:
    """Spike clipping (``config.spike_clip``): rescale the whole gradient of the optimizer's
    parameters to at most ``spike_clip`` times the running mean of the norms of earlier batches;
    then update that mean with the norm as applied. The mean, and a count of clipped batches
    (``spike_clips``), live in the first parameter group, so a checkpoint of the optimizer keeps
    them and a resumed run clips exactly as an uninterrupted one. The first batch with a nonzero
    gradient only starts the mean (a zero mean would clip every later gradient to nothing).
    Returns True when this batch was clipped."""
    if config.spike_clip is None:
        return False
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    norm = float(torch.nn.utils.get_total_norm([p.grad for p in params]))
    if not math.isfinite(norm):
        raise FloatingPointError(f"the gradient's norm became {norm}; lower the learning rate")
    group = optimizer.param_groups[0]
    mean = group.get("grad_norm_mean") or None  # none yet, or only zero gradients so far
    group.setdefault("spike_clips", 0)
    clipped = mean is not None and norm > config.spike_clip * mean
    if clipped:
        limit = config.spike_clip * mean
        torch.nn.utils.clip_grads_with_norm_(params, limit, torch.tensor(norm))
        group["spike_clips"] += 1
        norm = limit
    group["grad_norm_mean"] = _running_mean(mean, norm, config.spike_clip_beta)
    return clipped


def _running_mean(mean: float | None, value: float, beta: float) -> float:
    """An exponential running mean with decay ``beta``; ``value`` itself starts it (``mean`` None)."""
    return value if mean is None else beta * mean + (1 - beta) * value


def follow_errors(
    optimizer: torch.optim.Optimizer, config: TrainConfig, bit_errors: float
) -> None:
    """The learning rate that follows the errors (``config.lr_follow_errors``): update the
    running mean of the training bit errors per sequence with this batch's ``bit_errors`` and set
    every group's step to ``lr * clamp((mean / lr_follow_errors) ** lr_follow_power,
    lr_follow_floor, 1)`` -- or, with ``lr_follow_down_only``, to that or its current step,
    whichever is smaller. The mean lives in the first parameter group (``errors_mean``), so a
    checkpoint of the optimizer keeps it and a resumed run goes on as an uninterrupted one."""
    if config.lr_follow_errors is None:
        return
    group = optimizer.param_groups[0]
    mean = _running_mean(group.get("errors_mean"), bit_errors, config.lr_follow_beta)
    group["errors_mean"] = mean
    factor = (mean / config.lr_follow_errors) ** config.lr_follow_power
    lr = config.lr * min(1.0, max(config.lr_follow_floor, factor))
    for g in optimizer.param_groups:
        g["lr"] = min(g["lr"], lr) if config.lr_follow_down_only else lr


def difficulty_at(sequences_seen: int, config: TrainConfig) -> float:
    """The curriculum's fraction of the training range after ``sequences_seen`` sequences."""
    if config.curriculum_sequences <= 0:
        return 1.0
    progress = min(1.0, sequences_seen / config.curriculum_sequences)
    return config.curriculum_start + (1.0 - config.curriculum_start) * progress


def maybe_drop_lr(
    optimizer: torch.optim.Optimizer, config: TrainConfig, bit_errors: float, seen: int = 0
) -> bool:
    """Apply the recipe's one-time learning-rate drop: ``config.lr_drop_delay`` sequences after
    the first time ``bit_errors`` (per sequence, recent training batches) is below
    ``config.lr_drop_below`` (at once with no delay), if it has not happened yet; ``seen``:
    sequences trained on so far (kept as the drop's position, for ``settle_lr``).

    Whether it happened is read from the optimizer's own learning rate, and the first crossing is
    kept in its param groups (``lr_below_at``), both of which a checkpoint restores with the
    position and the AMSGrad switch, so a resumed run drops at the same point as an
    uninterrupted one. Returns True when it drops now.
    """
    if config.lr_drop_below is None or lr_dropped(optimizer, config):
        return False
    groups = optimizer.param_groups
    if "lr_below_at" not in groups[0]:
        if not bit_errors < config.lr_drop_below:
            return False
        for g in groups:
            g["lr_below_at"] = seen
    if seen - groups[0]["lr_below_at"] < config.lr_drop_delay:
        return False
    for g in groups:
        g["lr"] = config.lr * config.lr_drop_factor
        g["lr_dropped_at"] = seen
        if config.amsgrad_after_drop and not g["amsgrad"]:
            g["amsgrad"] = True
            for p in g["params"]:
                state = optimizer.state[p]
                if "exp_avg_sq" in state:  # a parameter never updated starts AMSGrad as Adam would
                    state["max_exp_avg_sq"] = state["exp_avg_sq"].clone()
    return True


def settle_lr(optimizer: torch.optim.Optimizer, config: TrainConfig, seen: int) -> None:
    """After the drop, set the learning rate to ``lr * lr_drop_factor * 0.5 ** (sequences since
    the drop / lr_half_life_after_drop)``; nothing before the drop or without a half-life."""
    if not config.lr_half_life_after_drop or not lr_dropped(optimizer, config):
        return
    for g in optimizer.param_groups:
        since = max(0, seen - g.get("lr_dropped_at", seen))
        g["lr"] = config.lr * config.lr_drop_factor * 0.5 ** (since / config.lr_half_life_after_drop)


def lr_dropped(optimizer: torch.optim.Optimizer, config: TrainConfig) -> bool:
    """Whether the recipe's learning-rate drop has happened (read from the optimizer's state)."""
    return any(g["lr"] < config.lr for g in optimizer.param_groups)


def mixed_batches_now(optimizer: torch.optim.Optimizer, config: TrainConfig) -> bool:
    """Whether the next training batch mixes lengths (``config.mixed_lengths``)."""
    if config.mixed_lengths == "after-drop":
        return lr_dropped(optimizer, config)
    return config.mixed_lengths == "always"


def draw_training_batch(
    task: Task,
    batch_size: int,
    generator: torch.Generator,
    seen: int,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
) -> Batch:
    """The batch the recipe draws after ``seen`` sequences: the curriculum's difficulty
    (:func:`difficulty_at`), one length per batch or mixed (:func:`mixed_batches_now`), and the
    sizes drawn by their errors (:func:`focused_sizes`) with ``config.focus_errors``."""
    difficulty = difficulty_at(seen, config)
    if not config.focus_errors:
        return task.sample_train(batch_size, generator, difficulty,
                                 mixed=mixed_batches_now(optimizer, config))
    sizes = focused_sizes(task, generator, difficulty, optimizer, config)
    return task.sample(batch_size, generator, **sizes)


def _size_key(sizes: dict[str, int]) -> str:
    return ",".join(f"{k}={v}" for k, v in sizes.items())


def focused_sizes(
    task: Task,
    generator: torch.Generator,
    difficulty: float,
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
) -> dict[str, int]:
    """The sizes of the next batch with ``config.focus_errors`` = f: each of the N sizes of the
    (curriculum-shrunk) training range with probability (1 - f) / N + f * e / sum(e), e the
    size's running mean of bit errors per sequence, kept by :func:`note_size_errors` in the
    optimizer's first parameter group (``size_errors``; a size not drawn yet counts as the worst
    one, and uniform while none has errors). The drawn sizes wait there (``focus_sizes``) for
    the batch's errors."""
    try:
        grid = task.training_sizes(difficulty)
    except NotImplementedError:
        raise ValueError(f"focus_errors needs a task whose sizes are drawn from training ranges; "
                         f"{task.name!r} has none") from None
    group = optimizer.param_groups[0]
    known = group.setdefault("size_errors", {})
    worst = max(known.values(), default=1.0)
    e = torch.tensor([known.get(_size_key(g), worst) for g in grid], dtype=torch.float64)
    f = config.focus_errors
    p = torch.full_like(e, 1 / len(grid))
    if e.sum() > 0:
        p = (1 - f) * p + f * e / e.sum()
    sizes = grid[int(torch.multinomial(p, 1, generator=generator))]
    group["focus_sizes"] = _size_key(sizes)
    return sizes


def note_size_errors(optimizer: torch.optim.Optimizer, config: TrainConfig, bit_errors: float) -> None:
    """With ``config.focus_errors``: fold this batch's bit errors per sequence into the running
    mean of the sizes :func:`focused_sizes` drew for it (decay ``focus_beta``)."""
    group = optimizer.param_groups[0]
    key = group.pop("focus_sizes", None)
    if not config.focus_errors or key is None:
        return
    known = group.setdefault("size_errors", {})
    known[key] = _running_mean(known.get(key), bit_errors, config.focus_beta)


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
    With ``config.weight_noise`` the forward and backward pass see noisy weights
    (:func:`add_weight_noise`) and the update is applied to the noiseless ones."""
    inputs, targets, mask = batch
    if not model.training:  # (walking the module tree every step costs about 1% of a fused one)
        model.train()
    optimizer.zero_grad(set_to_none=True)
    clean = add_weight_noise(optimizer, config)
    try:
        logits = model(inputs)  # (B, T, O)
        cost_nats = sequence_cost_nats(logits, targets, mask)  # (B,)
        loss = cost_nats.mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"the training loss became {loss.item()}; lower the learning rate")
        loss.backward()
    finally:
        remove_weight_noise(clean)
    with torch.no_grad():
        errors = float(sequence_bit_errors(logits, targets, mask).sum())
    per_sequence = errors / inputs.shape[0]
    follow_errors(optimizer, config, per_sequence)
    note_size_errors(optimizer, config, per_sequence)
    # The parameters the optimizer updates (the same set as model.parameters() for every model
    # here, without walking the module tree again).
    clip_gradients((p for g in optimizer.param_groups for p in g["params"]), config)
    clip_spikes(optimizer, config)
    optimizer.step()
    return float(cost_nats.detach().sum()) / math.log(2.0), errors


def add_weight_noise(
    optimizer: torch.optim.Optimizer, config: TrainConfig
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Weight noise (``config.weight_noise``): add Gaussian noise of that standard deviation to
    every parameter the optimizer updates, drawn from torch's global RNG (one draw per parameter,
    in the optimizer's order); returns ``(parameter, noiseless copy)`` pairs for
    :func:`remove_weight_noise` (none when off). The idea: with every batch seen through
    slightly perturbed weights, a decision that only just comes out right (a read head that only
    just holds its row) fails in training often enough to be learned. On the copy task it
    widened that margin but did not reliably remove relapses (the "Performance and stability"
    appendix: 6 of 20 seeds relapsed with noise 0.02, 8 of 20 without). With
    ``config.weight_noise_from_drop`` there is no noise before the learning-rate drop."""
    if config.weight_noise is None or (
        config.weight_noise_from_drop and not lr_dropped(optimizer, config)
    ):
        return []
    clean = []
    with torch.no_grad():
        for group in optimizer.param_groups:
            for p in group["params"]:
                clean.append((p, p.detach().clone()))
                p.add_(torch.randn_like(p), alpha=config.weight_noise)
    return clean


def remove_weight_noise(clean: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Put back the noiseless weights :func:`add_weight_noise` kept (exactly, not by subtracting)."""
    with torch.no_grad():
        for p, value in clean:
            p.copy_(value)


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


# --------------------------------------------------------------------------- the run


@dataclass
class TrainResult:
    """What ``run_training`` leaves behind."""

    model: nn.Module
    checkpoint: Path
    log: Path
    rows: list[list[float]]
    metrics: dict[str, float]
    exported: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def run_name(task: str, model_kind: str) -> str:
    return f"{task}-{model_kind}"


def _train_config_differences(found: dict[str, Any], expected: TrainConfig) -> list[str]:
    wanted = dataclasses.asdict(expected)
    defaults = dataclasses.asdict(TrainConfig())  # a field added later: its default was used
    free = {"sequences", "checkpoint_every", "eval_sequences"}  # may change when resuming
    return [
        f"{k}: checkpoint={found.get(k, defaults[k])!r}, now={v!r}"
        for k, v in wanted.items()
        if k not in free and found.get(k, defaults[k]) != v
    ]


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
) -> TrainResult:
    """Train (or resume training) one model on one task; see the module docstring.

    Writes ``out_dir/<task>-<model>.pt`` (+ ``.json`` manifest) every ``checkpoint_every``
    sequences and at the end, and the learning curve ``out_dir/<task>-<model>.csv``. With
    ``export_dir`` the final model is also exported there in float16, with metrics measured on
    the exported weights. ``stop_after`` (for tests) stops early after that many sequences,
    right after a checkpoint -- as if the run had been interrupted. ``fused`` (NTM only) runs
    the fused C++ unroll (:meth:`NTM.use_fused <neural_memory.ntm.NTM.use_fused>`): the same
    function, computed faster; float rounding differs, so a run and its resume should agree on it.
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
    optimizer = make_optimizer(model.parameters(), train_config)
    data_gen = torch.Generator().manual_seed(seed)  # every training batch comes from here
    seen, wall = 0, 0.0
    acc = [0.0, 0.0, 0]  # cost (bits), bit errors, sequences since the last log row
    rows: list[list[float]] = []

    if resume:
        ckpt = load_checkpoint(ckpt_path, model_config, task=task_name, model_kind=model_kind)
        missing = [k for k in ("optimizer", "rng", "train_state") if k not in ckpt.state]
        if missing:
            raise CheckpointError(
                "--resume expects a checkpoint with resume state (optimizer, rng, train_state), "
                f"got {ckpt_path} without {', '.join(missing)}; it cannot be resumed"
            )
        diff = _train_config_differences(ckpt.manifest.get("train_config") or {}, train_config)
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
        optimizer.load_state_dict(ckpt.state["optimizer"])
        data_gen.set_state(ckpt.state["rng"]["data"])
        torch.set_rng_state(ckpt.state["rng"]["torch"])
        if "cuda" in ckpt.state["rng"] and torch.device(device).type == "cuda":
            torch.cuda.set_rng_state(ckpt.state["rng"]["cuda"], torch.device(device))
        st = ckpt.state["train_state"]
        seen, wall, acc = int(st["sequences_seen"]), float(st["wall_seconds"]), list(st["accumulator"])
        if log_path.exists():
            rows = [
                [int(r["sequences"]), float(r["cost_bits"]), float(r["bit_errors"]), float(r["wall_seconds"])]
                for r in read_csv(log_path)
                if int(r["sequences"]) <= seen
            ]
        write_csv(log_path, LOG_COLUMNS, rows)

    def save(metrics: dict[str, float]) -> None:
        rng = {"data": data_gen.get_state(), "torch": torch.get_rng_state()}
        if torch.device(device).type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(torch.device(device))
        save_checkpoint(
            ckpt_path, model, model_config, task=task_name, model_kind=model_kind, seed=seed,
            sequences_seen=seen, metrics=metrics, optimizer_state=optimizer.state_dict(),
            train_config=train_config,
            rng_state=rng,
            train_state={"sequences_seen": seen, "wall_seconds": wall, "accumulator": list(acc)},
            command=command,
        )

    total = train_config.sequences
    bar = tqdm(total=total, initial=seen, file=sys.stderr, disable=not progress, unit="seq",
               desc=name, dynamic_ncols=True)
    B, every = train_config.batch_size, train_config.log_every
    while seen < total:
        b = min(B, total - seen)  # the last batch may be smaller: exactly `total` sequences
        start = time.perf_counter()
        batch = draw_training_batch(task, b, data_gen, seen, optimizer, train_config)
        if hasattr(model, "set_hard_schedule"):
            model.set_hard_schedule(*hard_schedule_at(seen, train_config))
        batch = tuple(t.to(device) for t in batch)
        settle_lr(optimizer, train_config, seen)
        cost, errors = train_step(model, batch, optimizer, train_config)
        wall += time.perf_counter() - start
        seen += b
        acc = [acc[0] + cost, acc[1] + errors, acc[2] + b]
        bar.update(b)
        if seen // every > (seen - b) // every or seen >= total:
            rows.append([seen, acc[0] / acc[2], acc[1] / acc[2], round(wall, 3)])
            acc = [0.0, 0.0, 0]
            write_csv(log_path, LOG_COLUMNS, rows)
            maybe_drop_lr(optimizer, train_config, rows[-1][2], seen)
            bar.set_postfix(cost=f"{rows[-1][1]:.2f}", errors=f"{rows[-1][2]:.2f}")
        ckpt_every = train_config.checkpoint_every
        if seen >= total:
            break
        if seen // ckpt_every > (seen - b) // ckpt_every:
            last = {"train_cost_bits": rows[-1][1], "train_bit_errors": rows[-1][2]} if rows else {}
            save(last)
            if stop_after is not None and seen >= stop_after:
                bar.close()
                return TrainResult(model, ckpt_path, log_path, rows, last)
    bar.close()

    if hasattr(model, "set_hard_schedule"):  # also when resuming a finished run
        model.set_hard_schedule(*hard_schedule_at(seen, train_config))
    eval_gen = torch.Generator().manual_seed(seed + 1_000_003)  # fresh data, never trained on
    metrics = evaluate_model(model, task, train_config.eval_sequences, eval_gen, device=device)
    final = {f"eval_{k}": v for k, v in metrics.items()}
    if rows:
        final.update(train_cost_bits=rows[-1][1], train_bit_errors=rows[-1][2])
    save(final)
    result = TrainResult(model, ckpt_path, log_path, rows, final)
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
    """The shipped model for a task (``directory``, default the package's data dir), or -- when
    ``retrain`` is true or none is shipped -- a freshly trained one (written to ``out_dir``,
    default ``runs/<task>-<model>``). The chapters call this: load by default, one flag retrains.
    """
    path = Path(directory if directory is not None else SHIPPED_DIR) / f"{run_name(task_name, model_kind)}.pt"
    if path.exists() and not retrain:
        return load_checkpoint(path, task=task_name, model_kind=model_kind)
    task = get_task(task_name)
    preset = preset or default_preset(task_name, model_kind)
    config = model_config_for(task, model_kind, preset)
    train_config = TrainConfig.preset(recipe or default_recipe(task_name, model_kind, preset), **recipe_overrides)
    out_dir = out_dir if out_dir is not None else Path("runs") / run_name(task_name, model_kind)
    result = run_training(task_name, model_kind, config, train_config, out_dir, seed=seed, progress=progress)
    return load_checkpoint(result.checkpoint, config, task=task_name, model_kind=model_kind)
