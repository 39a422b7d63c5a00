r"""An ablation of the NTM's training tricks on a reduced copy task.

The tricks (Graves et al., 2014; Collier & Beel, 2018; the seed article of Part II):

* **Mealy output path** -- ``output_from_reads``: the output reads the current read vectors,
  :math:`\mathbf{y}_t = W_o[\mathbf{h}_t; \mathbf{r}_t] + \mathbf{b}_o`, instead of
  :math:`W_o \mathbf{h}_t + \mathbf{b}_o`.
* **Split head layers** -- ``split_head_layers``: one linear layer per head parameter kind
  (each with its own initialisation) instead of one sliced layer.
* **Clipping** -- the head parameters and output logits clamped to :math:`[-c, c]`
  (``clip_controller``), and every gradient component clipped to :math:`[-10, 10]`
  (``TrainConfig.clip_value``, Graves et al., 2014, Section 4).
* **Initialisation** -- memory :math:`\mathbf{M}_0` constant :math:`10^{-6}` (Collier & Beel's
  best) vs learned vs random; learned initial read vectors :math:`\mathbf{r}_0` vs zeros;
  learned initial weightings :math:`\mathbf{w}_0` vs all weight on row 0.

The baseline has every trick on; each other variant changes exactly one setting, except the
last, ``all_off``, which switches every trick off at once (:data:`VARIANTS`). Every (variant,
seed) run trains with the package's one loop (:func:`~neural_memory.training.train`) on the
same budget of training sequences and is then
scored by :func:`~neural_memory.training.evaluate_model` on fresh sequences. A run *converged*
when its final bit errors per sequence are below :data:`CONVERGED_BELOW`.

Each run writes ``<out>/<variant>-seed<k>.csv`` (its learning curve, one row every
``log_every`` sequences: ``sequences, cost_bits, bit_errors, wall_seconds``, per sequence,
averaged since the previous row), then records its final metrics in ``<out>/summary.json``
(with the command, code version, recipe, budget, seeds and machine). Both are written
atomically; runs already in the summary are skipped, so an interrupted command resumes.

Reproduce the stored logs (10 variants x 8 seeds; chapter 27 says how long they took)::

    python -m neural_memory.experiments.ablation --seeds 0 1 2 3 4 5 6 7 --out results/ablation
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

import neural_memory
from neural_memory.experiments.common import (
    STORED_RESULTS,
    code_version,
    load_summary,
    machine_description,
    run_missing,
)
from neural_memory.experiments.sweep import add_sweep_arguments, sweep_options
from neural_memory.ntm import NTM, NTMConfig
from neural_memory.tasks import get_task
from neural_memory.training import CurveLog, TrainConfig, TrainLoop, evaluate_model

__all__ = [
    "STORED",
    "BASE_MODEL",
    "BASE_RECIPE",
    "CONVERGED_BELOW",
    "TASK_SIZE",
    "VARIANTS",
    "Variant",
    "load_results",
    "main",
    "run_one",
    "summarise",
    "variant_names",
]

#: Where the book's runs of this experiment are stored (inside the package).
STORED = STORED_RESULTS / "ablation"

#: The reduced copy task: lengths 1..6 (the paper trains on 1..20).
TASK_SIZE: dict[str, int] = {"min_length": 1, "max_length": 6}

#: The machine of the baseline: the ``tiny`` preset (LSTM controller C = 32, N = 16, M = 8,
#: one read and one write head) with every trick on, outputs and head parameters clipped to 10
#: as in the article.
BASE_MODEL: NTMConfig = NTMConfig.preset("tiny", clip_controller=10.0)

#: The recipe: Adam, lr 1e-2, batches of 16, a budget of 24,000 training sequences, gradients
#: clipped element-wise to [-10, 10], 256 fresh sequences for the final metrics.
BASE_RECIPE: TrainConfig = TrainConfig(
    optimizer="adam", lr=1e-2, batch_size=16, sequences=24_000, clip_value=10.0,
    log_every=500, checkpoint_every=24_000, eval_sequences=256,
)

#: A run converged when its final bit errors per sequence (on fresh sequences) are below this.
CONVERGED_BELOW = 0.1


@dataclass(frozen=True)
class Variant:
    """One arm of the ablation: changes to the baseline model config and/or recipe."""

    name: str
    description: str
    model: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)

    def model_config(self) -> NTMConfig:
        return dataclasses.replace(BASE_MODEL, **self.model)

    def train_config(self, sequences: int | None = None) -> TrainConfig:
        extra = {} if sequences is None else {"sequences": sequences}
        return dataclasses.replace(BASE_RECIPE, **{**self.recipe, **extra})


#: The baseline (every trick on) and one variant per trick switched off or changed.
VARIANTS: tuple[Variant, ...] = (
    Variant("baseline", "every trick on"),
    Variant("no_mealy_output", "output from the controller only", {"output_from_reads": False}),
    Variant("one_head_layer", "one sliced layer for all head parameters", {"split_head_layers": False}),
    Variant("no_output_clip", "head parameters and logits not clipped", {"clip_controller": None}),
    Variant("no_grad_clip", "gradients not clipped", recipe={"clip_value": None}),
    Variant("memory_learned", "M_0 learned", {"memory_init": "learned"}),
    Variant("memory_random", "M_0 random (fixed)", {"memory_init": "random"}),
    Variant("zero_initial_reads", "r_0 = 0, not learned", {"learn_initial_reads": False}),
    Variant("fixed_initial_weights", "w_0 on row 0, not learned", {"learn_initial_weights": False}),
    Variant(
        "all_off",
        "every trick off at once (M_0 random)",
        {"output_from_reads": False, "split_head_layers": False, "clip_controller": None,
         "memory_init": "random", "learn_initial_reads": False, "learn_initial_weights": False},
        {"clip_value": None},
    ),
)


def variant_names() -> list[str]:
    return [v.name for v in VARIANTS]


def get_variant(name: str) -> Variant:
    for v in VARIANTS:
        if v.name == name:
            return v
    raise ValueError(f"unknown ablation variant {name!r}; choose one of {variant_names()}")


def run_name(variant: str, seed: int) -> str:
    return f"{variant}-seed{seed}"


def run_one(
    variant: Variant | str,
    seed: int,
    out_dir: str | Path | None = None,
    sequences: int | None = None,
    log_every: int | None = None,
) -> dict[str, Any]:
    """Train one (variant, seed) and return its learning curve and final metrics.

    Seeding follows :func:`~neural_memory.training.run_training`: ``torch.manual_seed(seed)``
    before the model is built, training batches from ``Generator().manual_seed(seed)``, the final
    metrics on fresh sequences from ``Generator().manual_seed(seed + 1_000_003)``. With
    ``out_dir`` the curve is rewritten there (atomically) at every log row.
    """
    v = get_variant(variant) if isinstance(variant, str) else variant
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0; got {seed!r}")
    recipe = v.train_config(sequences)
    if log_every is not None:
        recipe = dataclasses.replace(recipe, log_every=log_every)
    task = get_task("copy", **TASK_SIZE)
    log_path = None if out_dir is None else Path(out_dir) / f"{run_name(v.name, seed)}.csv"

    torch.manual_seed(seed)
    model = NTM(v.model_config())
    loop = TrainLoop(model, task, recipe, seed=seed,
                     callbacks=[] if log_path is None else [CurveLog(log_path)])
    diverged = False
    try:
        loop.run()
    except FloatingPointError:  # a non-finite loss: the run failed, record it as such
        diverged = True
    seen, wall, rows = loop.seen, loop.wall, loop.rows
    if diverged:
        metrics = {"cost_bits": math.inf, "bit_errors": math.inf, "bit_error_rate": math.inf}
    else:
        eval_gen = torch.Generator().manual_seed(seed + 1_000_003)
        metrics = evaluate_model(model, task, recipe.eval_sequences, eval_gen)
    return {
        "variant": v.name,
        "seed": seed,
        "sequences": seen,
        "diverged": diverged,
        "eval_cost_bits": metrics["cost_bits"],
        "eval_bit_errors": metrics["bit_errors"],
        "eval_bit_error_rate": metrics["bit_error_rate"],
        "converged": bool(metrics["bit_errors"] < CONVERGED_BELOW),
        "wall_seconds": round(wall, 3),
        "rows": rows,
    }


def _header(seeds: list[int], budget: int, command: str) -> dict[str, Any]:
    return {
        "command": command,
        "package_version": neural_memory.__version__,
        "code_version": code_version(),
        "torch_version": torch.__version__,
        "machine": machine_description(),
        "task": {"name": "copy", **TASK_SIZE},
        "model": dataclasses.asdict(BASE_MODEL),
        "recipe": dataclasses.asdict(dataclasses.replace(BASE_RECIPE, sequences=budget)),
        "budget_sequences": budget,
        "converged_below": CONVERGED_BELOW,
        "seeds": seeds,
        "variants": [dataclasses.asdict(v) for v in VARIANTS],
    }


def run_all(seeds: list[int], budget: int, out_dir: str | Path, command: str,
            variants: list[str] | None = None, *, workers: int | None = 0,
            scheduler: Any = None, threads: int = 1) -> dict[str, Any]:
    """Run every (seed, variant) not yet in ``out_dir/summary.json``, seeds outermost.

    By default one after another in this process (with its torch threads); ``workers=N``
    (``None``: one per core) runs them on a local Dask cluster, ``scheduler`` (an address, or a
    ``distributed.Client``) on an existing one whose workers see ``out_dir``, each run with
    ``threads`` torch threads: the same numbers as in this process with that many threads (see
    :mod:`neural_memory.experiments.sweep`)."""
    out_dir = Path(out_dir).absolute()  # the same folder for workers started elsewhere

    def job(v: Variant, seed: int) -> dict[str, Any]:
        result = run_one(v, seed, out_dir, sequences=budget)
        return {k: val for k, val in result.items() if k != "rows"}

    jobs = ((run_name(v.name, seed), lambda v=v, seed=seed: job(v, seed))
            for seed in seeds for v in VARIANTS if variants is None or v.name in variants)
    return run_missing(
        out_dir, budget, seeds, lambda all_seeds: _header(all_seeds, budget, command), jobs,
        lambda key, r: f"{key:32s} cost {r['eval_cost_bits']:8.3f}  errors "
                       f"{r['eval_bit_errors']:7.3f}  {r['wall_seconds']:6.1f}s",
        workers=workers, scheduler=scheduler, threads=threads,
    )


def load_results(out_dir: str | Path | None = None) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """An ablation's runs: ``(summary, curves)`` where ``curves[run]`` is the run's log rows;
    by default the book's stored runs (:data:`STORED`, shipped with the package)."""
    return load_summary(STORED if out_dir is None else out_dir,
                        "python -m neural_memory.experiments.ablation")


def summarise(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per variant (in :data:`VARIANTS` order): seeds, fraction converged, and the
    mean, standard deviation, min and max over seeds of the final cost and bit errors."""
    table = []
    for v in VARIANTS:
        runs = [r for r in summary["runs"].values() if r["variant"] == v.name]
        if not runs:
            continue
        row: dict[str, Any] = {"variant": v.name, "seeds": len(runs),
                               "converged": sum(r["converged"] for r in runs) / len(runs)}
        for metric in ("eval_cost_bits", "eval_bit_errors"):
            xs = torch.tensor([r[metric] for r in runs], dtype=torch.float64)
            row[f"{metric}_mean"] = float(xs.mean())
            row[f"{metric}_std"] = float(xs.std()) if len(runs) > 1 else 0.0
            row[f"{metric}_min"], row[f"{metric}_max"] = float(xs.min()), float(xs.max())
        table.append(row)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m neural_memory.experiments.ablation",
        description="Re-run the NTM training-tricks ablation on the reduced copy task.")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    parser.add_argument("--budget", type=int, default=BASE_RECIPE.sequences,
                        help="training sequences per run")
    parser.add_argument("--variants", nargs="+", choices=variant_names(), default=None)
    parser.add_argument("--out", default="results/ablation")
    add_sweep_arguments(parser)  # --workers, --scheduler, --threads
    args = parser.parse_args(argv)
    options = sweep_options(parser, args)
    torch.set_num_threads(args.threads)
    command = "python -m neural_memory.experiments.ablation " + " ".join(
        sys.argv[1:] if argv is None else argv)
    run_all(args.seeds, args.budget, args.out, command.strip(), args.variants, **options)


if __name__ == "__main__":
    main()
