"""Time to converge on copy: train until the running mean of bit errors per sequence is small.

One run per seed, with a training recipe (:class:`neural_memory.training.TrainConfig`) and the
library's own ``train_step``. The running mean is over the training batches that cover the last
``window`` sequences (all of a batch's sequences share one length, so a batch is the unit). A
seed *converges* at the first batch after which that mean is below ``threshold``; the run then
goes on until it has seen ``extend`` times as many sequences, and the seed *relapses* if the
running mean rises above ``relapse_threshold`` in that time. The budget is explicit: a seed that
has not converged after ``max_seconds`` of training (or ``max_sequences``) is reported as not
converged. Wall seconds count training only (data, forward, backward, optimiser step), not the
generalisation checks made at the end. At the end each seed's final model is also scored at
every training length (``bit_errors_by_training_length``).
"""

from __future__ import annotations

import copy
import math
import time
from collections import deque
from dataclasses import asdict, dataclass

import torch

from neural_memory.ntm import NTM, NTMConfig
from neural_memory.ntm.fused import check_device
from neural_memory.tasks import get_task
from neural_memory.training import (
    TrainConfig,
    draw_training_batch,
    evaluate_model,
    make_optimizer,
    maybe_drop_lr,
    settle_lr,
    train_step,
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


def run_seed(
    seed: int,
    recipe: TrainConfig,
    settings: ConvergenceSettings,
    model_overrides: dict | None = None,
    log=print,
    progress: bool = False,
    fused: bool = False,
    record_batches: bool = False,
    snapshots: dict | None = None,
    step=train_step,
    device: torch.device | str = "cpu",
    compiled: bool = False,
) -> dict:
    """Train one seed; returns its convergence record (see the module docstring). ``fused``:
    train with the fused C++ unroll (``NTM.use_fused``). ``record_batches``: also keep, for every
    batch, ``(sequences so far, time steps, gradient norm, bit errors, running mean)`` in
    ``record["batches"]`` -- the norm of the whole gradient as the optimiser receives it (after
    the recipe's clipping), read by a hook that does not change the update. ``snapshots``: a
    dict that receives copies of the model at convergence (``"converged"``) and at the end of
    the run (``"end"``). ``step``: the training step, called as :func:`train_step` is and
    returning ``(cost, bit errors)`` summed over the batch's ``recipe.batch_size`` fresh
    sequences (a trial may add others to the update, as ``replay_trial.py`` does). ``device``:
    where the model trains (``"cuda"`` for a GPU; the fused unroll is CPU-only); the batches are
    drawn on the CPU from the seed's generator and moved there, inside the timed step.
    ``compiled``: train with ``NTM.compile_step()`` (the compiling counts as training time)."""
    if fused:
        check_device(device)
    task = get_task("copy")
    torch.manual_seed(seed)
    model = NTM(
        NTMConfig.preset(
            "copy", input_size=task.input_size, output_size=task.output_size,
            **(model_overrides or {}),
        )
    )
    model = model.to(device)
    if fused:
        model.use_fused()
    if compiled:
        model.compile_step()
    optimizer = make_optimizer(model.parameters(), recipe)
    generator = torch.Generator().manual_seed(seed)
    batches_in_window = max(1, math.ceil(settings.window / recipe.batch_size))
    window: deque[tuple[float, int]] = deque(maxlen=batches_in_window)
    seen, train_seconds = 0, 0.0
    converged_at = converged_seconds = None
    stop_at = settings.max_sequences
    worst_after = 0.0
    curve: list[tuple[int, float, float]] = []  # (sequences, seconds, running mean)
    nan = False
    lr_dropped_at = None
    batches: list[tuple[int, int, float, float, float]] = []
    norms: list[float] = []
    if record_batches:
        def read_norm(opt, args, kwargs) -> None:
            grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
            norms.append(float(torch.nn.utils.get_total_norm(grads)))
        optimizer.register_step_pre_hook(read_norm)
    while seen < stop_at:
        start = time.perf_counter()
        batch = draw_training_batch(task, recipe.batch_size, generator, seen, optimizer, recipe)
        batch = tuple(t.to(device) for t in batch)
        settle_lr(optimizer, recipe, seen)
        try:
            _, errors = step(model, batch, optimizer, recipe)
        except FloatingPointError:
            nan = True
            break
        train_seconds += time.perf_counter() - start
        seen += recipe.batch_size
        window.append((errors, recipe.batch_size))
        covered = sum(b for _, b in window)
        mean = sum(e for e, _ in window) / covered
        if record_batches:
            batches.append((seen, batch[0].shape[1], round(norms[-1], 4), errors, round(mean, 4)))
        if len(curve) == 0 or seen - curve[-1][0] >= 1000:
            curve.append((seen, round(train_seconds, 2), round(mean, 4)))
            if progress and len(curve) % 5 == 0:
                log(f"    seed {seed}: {seen} sequences, {train_seconds:.0f} s, running mean {mean:.3f}")
        if covered >= settings.window and maybe_drop_lr(optimizer, recipe, mean, seen):
            log(f"  seed {seed}: learning rate x{recipe.lr_drop_factor:g} after {seen} sequences")
            lr_dropped_at = seen
        if converged_at is None:
            if covered >= settings.window and mean < settings.threshold:
                converged_at, converged_seconds = seen, train_seconds
                stop_at = min(settings.max_sequences, math.ceil(settings.extend * seen))
                log(f"  seed {seed}: converged after {seen} sequences, {train_seconds:.1f} s")
                if snapshots is not None:
                    snapshots["converged"] = copy.deepcopy(model)
            elif train_seconds > settings.max_seconds:
                log(f"  seed {seed}: not converged within {settings.max_seconds:.0f} s "
                    f"({seen} sequences, running mean {mean:.3f})")
                break
        else:
            worst_after = max(worst_after, mean)
    if snapshots is not None:
        snapshots["end"] = copy.deepcopy(model)
    record = {
        "seed": seed,
        "converged": converged_at is not None,
        "sequences_to_converge": converged_at,
        "seconds_to_converge": None if converged_seconds is None else round(converged_seconds, 2),
        "sequences_run": seen,
        "train_seconds": round(train_seconds, 2),
        "worst_running_mean_after_converging": round(worst_after, 4) if converged_at else None,
        "relapsed": (worst_after > settings.relapse_threshold) if converged_at else None,
        "nan": nan,
        "lr_dropped_at": lr_dropped_at,
        "spike_clips": optimizer.param_groups[0].get("spike_clips", 0) if recipe.spike_clip else None,
        "curve": curve,
    }
    if recipe.focus_errors:  # the running mean of the errors at each length, at the end
        record["size_errors"] = {k: round(v, 4) for k, v in
                                 optimizer.param_groups[0].get("size_errors", {}).items()}
    if record_batches:
        record["batches"] = batches
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
    log(f"  seed {seed}: ran {seen} sequences ({train_seconds:.1f} s); worst running mean after "
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
