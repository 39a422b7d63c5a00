r"""Part IV: soft against hard addressing inside the NTM, over seeds, on two tasks.

Each *variant* is the same machine and recipe with a different kind of head
(:data:`VARIANTS`):

* ``soft`` -- the paper's soft heads (:mod:`neural_memory.ntm.addressing`);
* ``hard_read`` / ``hard_write`` / ``hard_both`` -- those heads read or write exactly one row,
  a straight-through Gumbel-softmax sample from their soft weighting
  (:mod:`neural_memory.ntm.hard`), from the first step of training;
* ``anneal_both`` -- both heads hard, but the hard/soft mix $\lambda$ grows linearly from 0
  (soft) to 1 (hard) over the first half of the budget.

Every hard variant's temperature falls geometrically from 1 to 0.5 over the first half of the
budget (Jang et al., 2017, anneal in the same range). The machine is the paper's
(:data:`TASKS` names the preset: heads start on row 0) with one change for every variant: a
constant $\mathbf{M}_0$ of 0.01 instead of $10^{-6}$, because hard write heads need it (see
:data:`~neural_memory.ntm.model.HARD_WRITE_MIN_MEMORY_INIT`). The recipe is ``fast-adam``
(Adam 1e-3, batches of 32, gradients clipped to $[-10, 10]$).

Each run is one call of the project's training command (:func:`~neural_memory.training.run_training`,
resumable) in ``<work>/<task>/<variant>-seed<k>/``; then it is scored on fresh sequences: in the
training range (:data:`CONVERGED_BELOW` bit errors per sequence decides *converged*), beyond it
(:data:`TASKS`' ``beyond`` sizes), and for the sharpness of its weightings -- the mean entropy
in bits per step of the read and write weightings it used, and of the soft weighting before it
was made one-hot. ``<out>/<task>/summary.json`` gathers the scores with the command, code
version and machine; ``<out>/<task>/<variant>-seed<k>.csv`` is each learning curve; every
run's final model is also exported in float16 (``<out>/<task>/models/<variant>-seed<k>/``,
about 140 kB each) for heat maps.
Runs already in the summary are skipped, so an interrupted command resumes.

Reproduce the stored results::

    python -m neural_memory.experiments.hard --task copy --seeds 0 1 2
    python -m neural_memory.experiments.hard --task associative_recall --seeds 0 1 \
        --variants soft hard_read hard_write hard_both
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import neural_memory
from neural_memory.checkpoint import load_checkpoint
from neural_memory.experiments.common import (
    STORED_RESULTS,
    code_version,
    load_summary,
    machine_description,
    run_missing,
)
from neural_memory.experiments.sweep import add_sweep_arguments, sweep_options
from neural_memory.ntm import NTM, NTMConfig
from neural_memory.ntm.hard import trace_entropy
from neural_memory.tasks import get_task
from neural_memory.training import TrainConfig, evaluate_model, run_training

__all__ = [
    "STORED",
    "CONVERGED_BELOW",
    "TASKS",
    "VARIANTS",
    "TaskSetup",
    "Variant",
    "load_model",
    "load_results",
    "main",
    "model_config",
    "run_one",
    "summarise",
    "train_config",
    "weighting_entropy",
]

#: Where the book's runs of this experiment are stored (inside the package).
STORED = STORED_RESULTS / "hard"

#: A run converged when its final bit errors per sequence in the training range are below this.
CONVERGED_BELOW = 0.1

#: Every variant's machine differs from the preset in this (hard writes need it, see above).
MEMORY_INIT_VALUE = 0.01


@dataclass(frozen=True)
class TaskSetup:
    """A task of the experiment: the NTM preset, the budget, and the sizes beyond training."""

    preset: str
    sequences: int
    beyond: dict[str, list[int]]  # size parameter -> values scored after training


TASKS: dict[str, TaskSetup] = {
    "copy": TaskSetup("copy-row0", 100_000, {"length": [20, 40, 60]}),
    "associative_recall": TaskSetup("associative_recall-row0", 120_000, {"items": [6, 12]}),
}


@dataclass(frozen=True)
class Variant:
    """One arm of the experiment: which heads are hard, and the recipe's hard schedule."""

    name: str
    description: str
    hard_addressing: str = "none"
    recipe: dict[str, Any] = field(default_factory=dict)


VARIANTS: tuple[Variant, ...] = (
    Variant("soft", "soft heads (Graves et al., 2014)"),
    Variant("hard_read", "read head one-hot", "read"),
    Variant("hard_write", "write head one-hot", "write"),
    Variant("hard_both", "read and write heads one-hot", "both"),
    Variant("anneal_both", "both heads, soft annealed to hard", "both", {"hard_mix_start": 0.0}),
)


def get_variant(name: str) -> Variant:
    for v in VARIANTS:
        if v.name == name:
            return v
    raise ValueError(f"unknown variant {name!r}; choose one of {[v.name for v in VARIANTS]}")


def _setup(task: str) -> TaskSetup:
    if task not in TASKS:
        raise ValueError(f"the Part IV experiment covers the tasks {sorted(TASKS)}, not {task!r}")
    return TASKS[task]


def model_config(task: str, variant: Variant | str) -> NTMConfig:
    """The machine of one (task, variant)."""
    v = get_variant(variant) if isinstance(variant, str) else variant
    return NTMConfig.preset(_setup(task).preset, memory_init_value=MEMORY_INIT_VALUE,
                            hard_addressing=v.hard_addressing)


def train_config(task: str, variant: Variant | str, sequences: int | None = None,
                 eval_sequences: int = 512) -> TrainConfig:
    """The recipe of one (task, variant): ``fast-adam`` with the hard schedule."""
    v = get_variant(variant) if isinstance(variant, str) else variant
    budget = _setup(task).sequences if sequences is None else sequences
    return TrainConfig.preset(
        "fast-adam", sequences=budget, checkpoint_every=10_000, eval_sequences=eval_sequences,
        hard_tau_start=1.0, hard_tau_end=0.5, hard_anneal_sequences=budget // 2, **v.recipe,
    )


def weighting_entropy(model: NTM, inputs: torch.Tensor) -> dict[str, float]:
    """Mean entropy (bits per head per step) of the read and write weightings on ``inputs``:
    ``read``/``write`` for the weightings used, ``read_soft``/``write_soft`` for the soft
    weighting before a hard head made it one-hot (the same for soft heads)."""
    model.eval()
    with torch.no_grad():
        _, trace = model(inputs, return_trace=True)
    return trace_entropy(trace)


def run_key(variant: str, seed: int) -> str:
    return f"{variant}-seed{seed}"


def run_one(task: str, variant: Variant | str, seed: int, out_dir: str | Path,
            work_dir: str | Path, sequences: int | None = None,
            export: bool = False, eval_sequences: int = 512) -> dict[str, Any]:
    """Train (or resume) one (task, variant, seed) with the training command and score it:
    ``eval_sequences`` fresh sequences in the training range, half as many at each size beyond."""
    v = get_variant(variant) if isinstance(variant, str) else variant
    key = run_key(v.name, seed)
    work = Path(work_dir) / task / key
    out = Path(out_dir) / task
    recipe = train_config(task, v, sequences, eval_sequences)
    resume = (work / f"{task}-ntm.pt").exists()
    command = (f"python -m neural_memory.experiments.hard --task {task} --variants {v.name} "
               f"--seeds {seed}" + ("" if sequences is None else f" --budget {sequences}"))
    result = run_training(
        task, "ntm", model_config(task, v), recipe, work, seed=seed, resume=resume,
        command=command, progress=False,
        export_dir=out / "models" / key if export else None,
    )
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(result.log, out / f"{key}.csv")
    model, spec = result.model, get_task(task)
    gen = torch.Generator().manual_seed(seed + 2_000_003)
    beyond = {}
    for parameter, values in _setup(task).beyond.items():
        for value in values:
            m = evaluate_model(model, spec, max(1, eval_sequences // 2), gen, **{parameter: value})
            beyond[f"{parameter}={value}"] = {k: m[k] for k in ("bit_errors", "bit_error_rate")}
    inputs, _, _ = spec.sample(64, torch.Generator().manual_seed(seed + 3_000_003))
    rows = result.rows
    first = next((int(r[0]) for r in rows if r[2] < CONVERGED_BELOW), None)
    return {
        "variant": v.name,
        "seed": seed,
        "sequences": rows[-1][0] if rows else 0,
        "wall_seconds": rows[-1][3] if rows else 0.0,
        "eval_cost_bits": result.metrics["eval_cost_bits"],
        "eval_bit_errors": result.metrics["eval_bit_errors"],
        "eval_bit_error_rate": result.metrics["eval_bit_error_rate"],
        "converged": bool(result.metrics["eval_bit_errors"] < CONVERGED_BELOW),
        "first_log_row_below": first,
        "beyond": beyond,
        "entropy_bits": weighting_entropy(model, inputs),
    }


def _header(task: str, seeds: list[int], budget: int, command: str) -> dict[str, Any]:
    return {
        "command": command,
        "package_version": neural_memory.__version__,
        "code_version": code_version(),
        "torch_version": torch.__version__,
        "machine": machine_description(),
        "task": task,
        "preset": _setup(task).preset,
        "memory_init_value": MEMORY_INIT_VALUE,
        "budget_sequences": budget,
        "recipe": dataclasses.asdict(train_config(task, "hard_both", budget)),
        "converged_below": CONVERGED_BELOW,
        "beyond": _setup(task).beyond,
        "seeds": seeds,
        "variants": [dataclasses.asdict(v) for v in VARIANTS],
    }


def run_all(task: str, seeds: list[int], out_dir: str | Path, work_dir: str | Path,
            command: str, variants: list[str] | None = None,
            budget: int | None = None, eval_sequences: int = 512, *,
            workers: int | None = 0, scheduler: Any = None,
            threads: int = 1) -> dict[str, Any]:
    """Run every (seed, variant) not yet in ``<out>/<task>/summary.json``, seeds outermost.

    By default one after another in this process (with its torch threads); ``workers=N``
    (``None``: one per core) runs them on a local Dask cluster, ``scheduler`` (an address, or a
    ``distributed.Client``) on an existing one whose workers see ``out_dir`` and ``work_dir``,
    each run with ``threads`` torch threads: the same numbers as in this process with that many
    threads (see :mod:`neural_memory.experiments.sweep`)."""
    # The same folders for workers started elsewhere.
    out_dir, work_dir = Path(out_dir).absolute(), Path(work_dir).absolute()
    budget = _setup(task).sequences if budget is None else budget
    sequences = None if budget == _setup(task).sequences else budget
    jobs = (
        (run_key(v.name, seed),
         lambda v=v, seed=seed: run_one(task, v, seed, out_dir, work_dir, sequences=sequences,
                                        export=True, eval_sequences=eval_sequences))
        for seed in seeds for v in VARIANTS if variants is None or v.name in variants
    )
    return run_missing(
        Path(out_dir) / task, budget, seeds, lambda all_seeds: _header(task, all_seeds, budget, command),
        jobs, lambda key, r: f"{task} {key:24s} errors {r['eval_bit_errors']:8.3f}  {r['wall_seconds']:7.1f}s",
        workers=workers, scheduler=scheduler, threads=threads,
    )


def load_results(task: str, out_dir: str | Path | None = None) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """The runs of one task: ``(summary, curves)``, ``curves[run]`` its log rows; by default the
    book's stored runs (:data:`STORED`, shipped with the package)."""
    return load_summary(Path(STORED if out_dir is None else out_dir) / task,
                        f"python -m neural_memory.experiments.hard --task {task}")


def load_model(task: str, variant: str, seed: int = 0, out_dir: str | Path | None = None) -> NTM:
    """The exported (float16-rounded) final model of one (task, variant, seed); by default from
    the book's stored runs."""
    path = (Path(STORED if out_dir is None else out_dir) / task / "models"
            / run_key(get_variant(variant).name, seed) / f"{task}-ntm.pt")
    return load_checkpoint(path, model_config(task, variant), task=task, model_kind="ntm").model


def summarise(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant (in :data:`VARIANTS` order): seeds, fraction converged, the median
    first log row below the threshold (over the seeds that got there), the mean final bit
    errors, and the mean of every ``beyond`` and entropy score over seeds."""
    table = []
    for v in VARIANTS:
        runs = [r for r in summary["runs"].values() if r["variant"] == v.name]
        if not runs:
            continue
        firsts = sorted(r["first_log_row_below"] for r in runs if r["first_log_row_below"] is not None)
        row: dict[str, Any] = {
            "variant": v.name,
            "seeds": len(runs),
            "converged": sum(r["converged"] for r in runs) / len(runs),
            "median_first_below": firsts[len(firsts) // 2] if firsts else None,
            "bit_errors_mean": sum(r["eval_bit_errors"] for r in runs) / len(runs),
            "bit_errors_min": min(r["eval_bit_errors"] for r in runs),
        }
        for size in runs[0]["beyond"]:
            row[f"ber {size}"] = sum(r["beyond"][size]["bit_error_rate"] for r in runs) / len(runs)
        for kind in runs[0]["entropy_bits"]:
            row[f"entropy {kind}"] = sum(r["entropy_bits"][kind] for r in runs) / len(runs)
        table.append(row)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m neural_memory.experiments.hard",
        description="Soft against hard NTM heads over seeds (Part IV of the book).")
    parser.add_argument("--task", required=True, choices=sorted(TASKS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", choices=[v.name for v in VARIANTS], default=None)
    parser.add_argument("--budget", type=int, default=None,
                        help="training sequences per run (default: the task's, see TASKS)")
    parser.add_argument("--out", default="results/hard")
    parser.add_argument("--work", default="runs/hard", help="checkpoints while training")
    add_sweep_arguments(parser)  # --workers, --scheduler, --threads
    args = parser.parse_args(argv)
    options = sweep_options(parser, args)
    torch.set_num_threads(args.threads)
    command = "python -m neural_memory.experiments.hard " + " ".join(
        sys.argv[1:] if argv is None else argv)
    run_all(args.task, args.seeds, args.out, args.work, command.strip(), args.variants, args.budget,
            **options)


if __name__ == "__main__":
    main()
