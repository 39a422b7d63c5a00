"""Time to converge on copy: train until the running mean of bit errors per sequence is small.

One run per seed, trained by the library's one loop (:func:`neural_memory.training.train`) with a
model preset and a recipe (:class:`neural_memory.training.TrainConfig`), watched by a
:class:`ConvergenceMonitor`. The running mean is over the training batches that cover the last
``window`` sequences (all of a batch's sequences share one length, so a batch is the unit). A
seed *converges* at the first batch after which that mean is below ``threshold``; the run then
goes on until it has seen ``extend`` times as many sequences, and the seed *relapses* if the
running mean rises above ``relapse_threshold`` in that time. The budget is explicit: a seed that
has not converged after ``max_seconds`` of training (or ``max_sequences``) is reported as not
converged. The recipe's own learning-rate drop, if it has one, fires where it fires in every
other run (:class:`~neural_memory.training.LearningRateDrop`: the running mean over the last
``lr_drop_window`` sequences below ``lr_drop_below``), independently of the monitor. Wall
seconds count training only (data, forward, backward, optimiser step), not the generalisation
checks made at the end. At the end each seed's final model is also scored at every training
length (``bit_errors_by_training_length``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from neural_memory.ntm import NTM, NTMConfig
from neural_memory.ntm.fused import check_device
from neural_memory.tasks import get_task
from neural_memory.training import (
    Callback,
    LearningRateDrop,
    TrainConfig,
    TrainLoop,
    WindowMean,
    evaluate_model,
)


@dataclass(frozen=True)
class ConvergenceSettings:
    window: int = 500  # sequences in the running mean
    threshold: float = 0.1  # bit errors per sequence: converged below this
    relapse_threshold: float = 1.0  # bit errors per sequence: relapse above this after converging
    extend: float = 3.0  # run on to extend x the sequences at convergence
    max_seconds: float = 150.0  # training-time budget to converge
    max_sequences: int = 10_000_000
    eval_sequences: int = 256  # fresh sequences for each generalisation check
    by_length_sequences: int = 64  # fresh sequences per training length for the final profile


class ConvergenceMonitor(Callback):
    """Keeps the running mean of the training bit errors per sequence over the last
    ``settings.window`` sequences; records when it first falls below the threshold, stops the
    loop at ``extend`` times that many sequences (or when the time budget runs out first), and
    records the worst running mean after converging and a curve of the mean every 1,000
    sequences. All of it is checkpointable state."""

    key = "convergence"

    def __init__(self, settings: ConvergenceSettings, seed: int = 0, log=print,
                 progress: bool = False) -> None:
        self.settings, self.seed, self.log, self.progress = settings, seed, log, progress
        self.window = WindowMean(settings.window)
        self.converged_at: int | None = None
        self.converged_seconds: float | None = None
        self.stop_at = settings.max_sequences
        self.worst_after = 0.0
        self.timed_out = False
        self.curve: list[tuple[int, float, float]] = []  # (sequences, seconds, running mean)

    def on_batch_end(self, loop: TrainLoop, cost: float, errors: float, size: int) -> None:
        s = self.settings
        mean, full = self.window.add(errors, size)
        if not self.curve or loop.seen - self.curve[-1][0] >= 1000:
            self.curve.append((loop.seen, round(loop.wall, 2), round(mean, 4)))
            if self.progress and len(self.curve) % 5 == 0:
                self.log(f"    seed {self.seed}: {loop.seen} sequences, {loop.wall:.0f} s, "
                         f"running mean {mean:.3f}")
        if self.converged_at is None:
            if full and mean < s.threshold:
                self.converged_at, self.converged_seconds = loop.seen, loop.wall
                self.stop_at = min(s.max_sequences, math.ceil(s.extend * loop.seen))
                self.log(f"  seed {self.seed}: converged after {loop.seen} sequences, "
                         f"{loop.wall:.1f} s")
            elif loop.wall > s.max_seconds:
                self.timed_out = True
                self.log(f"  seed {self.seed}: not converged within {s.max_seconds:.0f} s "
                         f"({loop.seen} sequences, running mean {mean:.3f})")
        else:
            self.worst_after = max(self.worst_after, mean)
        if self.timed_out or loop.seen >= self.stop_at:
            loop.stop = True

    def state_dict(self) -> dict[str, Any]:
        return {"window": self.window.state_dict(), "converged_at": self.converged_at,
                "converged_seconds": self.converged_seconds, "stop_at": self.stop_at,
                "worst_after": self.worst_after, "timed_out": self.timed_out,
                "curve": list(self.curve)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.window.load_state_dict(state.get("window", []))
        for name in ("converged_at", "converged_seconds", "stop_at", "worst_after", "timed_out"):
            if name in state:
                setattr(self, name, state[name])
        self.curve = [tuple(c) for c in state.get("curve", [])]


def copy_model_config(preset: str = "copy", overrides: dict | None = None) -> NTMConfig:
    """The NTM ``preset`` sized for the copy task, with ``overrides`` (``--model-set``)."""
    task = get_task("copy")
    return NTMConfig.preset(preset, input_size=task.input_size, output_size=task.output_size,
                            **(overrides or {}))


def run_seed(
    seed: int,
    recipe: TrainConfig,
    settings: ConvergenceSettings,
    model_config: NTMConfig | None = None,
    log=print,
    progress: bool = False,
    fused: bool = False,
    device: torch.device | str = "cpu",
    compiled: bool = False,
) -> dict:
    """Train one seed of ``model_config`` (default: the paper's copy NTM) with ``recipe``;
    returns its convergence record (see the module docstring). ``fused``: train with the fused
    C++ unroll (``NTM.use_fused``). ``device``: where the model trains (``"cuda"`` for a GPU;
    the fused unroll is CPU-only); batches are drawn on the CPU from the seed's generator and
    moved there, inside the timed step. ``compiled``: train with ``NTM.compile_step()`` (the
    compiling counts as training time)."""
    if fused:
        check_device(device)
    task = get_task("copy")
    torch.manual_seed(seed)
    model = NTM(model_config or copy_model_config()).to(device)
    if fused:
        model.use_fused()
    if compiled:
        model.compile_step()
    monitor = ConvergenceMonitor(settings, seed, log, progress)
    loop = TrainLoop(model, task, replace(recipe, sequences=settings.max_sequences), seed=seed,
                     device=device, callbacks=[monitor])
    nan = False
    try:
        loop.run()
    except FloatingPointError:
        nan = True
    drop = loop.callback(LearningRateDrop)
    if drop is not None and drop.dropped_at is not None:
        log(f"  seed {seed}: learning rate x{recipe.lr_drop_factor:g} after {drop.dropped_at} "
            "sequences")
    converged_at, worst_after = monitor.converged_at, monitor.worst_after
    record = {
        "seed": seed,
        "converged": converged_at is not None,
        "sequences_to_converge": converged_at,
        "seconds_to_converge": None if converged_at is None else round(monitor.converged_seconds, 2),
        "sequences_run": loop.seen,
        "train_seconds": round(loop.wall, 2),
        "worst_running_mean_after_converging": round(worst_after, 4) if converged_at else None,
        "relapsed": (worst_after > settings.relapse_threshold) if converged_at else None,
        "nan": nan,
        "lr_dropped_at": None if drop is None else drop.dropped_at,
        "curve": monitor.curve,
    }
    gen = torch.Generator().manual_seed(10_000 + seed)
    for length in (20, 40):
        metrics = evaluate_model(model, task, settings.eval_sequences, gen, device=device,
                                 length=length)
        record[f"eval_length_{length}"] = {k: round(v, 5) for k, v in metrics.items()}
    # The final model's bit errors per sequence at each training length: their mean is what the
    # running mean would settle at if the weights stopped moving (the training distribution
    # draws every length equally often).
    gen = torch.Generator().manual_seed(20_000 + seed)
    record["bit_errors_by_training_length"] = {
        sizes["length"]: round(evaluate_model(model, task, settings.by_length_sequences, gen,
                                              device=device, **sizes)["bit_errors"], 4)
        for sizes in task.training_sizes()
    }
    log(f"  seed {seed}: ran {loop.seen} sequences ({loop.wall:.1f} s); worst running mean after "
        f"converging {worst_after:.3f}; length 20: {record['eval_length_20']['bit_errors']:.3f} "
        f"bit errors/seq; length 40 BER {record['eval_length_40']['bit_error_rate']:.4f}")
    return record


def summarise(records: list[dict], settings: ConvergenceSettings) -> dict:
    done = [r for r in records if r["converged"]]
    secs = sorted(r["seconds_to_converge"] for r in done)
    seqs = sorted(r["sequences_to_converge"] for r in done)

    def median(xs: list) -> float | None:
        if not xs:
            return None
        mid = len(xs) // 2
        return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2

    return {
        "seeds": len(records),
        "fraction_converged": len(done) / len(records),
        "median_seconds": median(secs),
        "worst_seconds": secs[-1] if len(done) == len(records) and secs else None,
        "median_sequences": median(seqs),
        "worst_sequences": seqs[-1] if len(done) == len(records) and seqs else None,
        "any_relapse": any(r["relapsed"] for r in done),
        "settings": asdict(settings),
    }
