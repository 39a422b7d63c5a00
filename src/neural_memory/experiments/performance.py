"""The stored benchmark results that the "Performance and stability" appendix draws, and the
numbers it prints from them.

The files in :data:`STORED` are copies of a few of ``benchmarks/results/`` (written by
``benchmarks/run.py``; ``benchmarks/README.md`` lists every file and the command that made
it), shipped with the package so that the appendix runs from a plain install:

* :data:`THROUGHPUT` -- training and evaluation sequences per second of the paper's copy NTM on
  one CPU core, plain path and fused unroll, batch 1, 8, 32 and 128, five interleaved repeats;
  :data:`GPU_THROUGHPUT` -- the plain path on an H100 GPU, as written and with the time step
  compiled, one measurement per row;
* :data:`FORTY_SEEDS` -- time to converge on copy for seeds 0-39 of the shipped copy NTM's model
  and recipe (``copy-row0-gamma2``, ``fast-adam-settle10``): per seed, when the running mean of
  the training bit errors over the last 500 sequences first fell below 0.1, the worst running
  mean over three times that many sequences, a learning curve, and the final scores;
* :data:`UNBOUNDED` -- the same for seeds 0-19 with the sharpening exponent left unbounded (the
  paper's), everything else equal;
* :data:`HOLD` -- the read head's hold margins of six unbounded models and two with the
  exponent bounded at 2.5, at the learning-rate drop and at the end of the run.

Everything here is plain ``dict``/``list`` data; nothing is measured.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from neural_memory.experiments.common import STORED_RESULTS
from neural_memory.experiments.comparison import CRITERIA

__all__ = [
    "COPY_TARGETS", "FORTY_SEEDS", "GPU_THROUGHPUT", "HOLD", "STORED", "THROUGHPUT", "UNBOUNDED",
    "convergence_summary", "convergence_table", "hold_margins", "hold_table", "load", "load_seeds",
    "throughput_rows", "throughput_table", "within_targets",
]

#: The copies of ``benchmarks/results/`` files that ship with the package.
STORED = STORED_RESULTS / "benchmarks"
THROUGHPUT = "cpu-throughput-fused-v3.json"
GPU_THROUGHPUT = "gpu-throughput-v2.json"
FORTY_SEEDS = "cpu-convergence-gamma2-x01-one-loop.json"
UNBOUNDED = ("cpu-convergence-x01-relapsers.json", "cpu-convergence-x01-others-a.json",
             "cpu-convergence-x01-others-b.json")
HOLD = ("anatomy-hold-v3.json", "anatomy-hold-v3-b.json", "anatomy-hold-v3-c.json",
        "anatomy-hold-gamma25.json", "anatomy-hold-gamma25-b.json")

#: Part III's copy criteria (:data:`~neural_memory.experiments.comparison.CRITERIA`: at most 0.05
#: bit errors per sequence at length 20, a bit error rate of at most 1% at length 40), keyed as
#: the benchmark's records name the measurements (each on 256 fresh sequences there).
COPY_TARGETS = {f"{c.metric}_length_{c.size['length']}": c.at_most for c in CRITERIA if c.task == "copy"}


def load(name: str, folder: str | Path | None = None) -> dict[str, Any]:
    """One results file by name (``.json`` optional), from :data:`STORED` by default."""
    base = STORED if folder is None else Path(folder)
    path = base / (name if name.endswith(".json") else f"{name}.json")
    if not path.is_file():
        known = sorted(p.name for p in base.glob("*.json")) if base.is_dir() else []
        raise FileNotFoundError(f"no results file {path}; {base} holds {known or 'no JSON files'} "
                                "(benchmarks/README.md lists the commands that make them)")
    return json.loads(path.read_text())


def _model_and_recipe(result: Mapping[str, Any]) -> tuple[Any, Any]:
    model = {k: v for k, v in result.get("model", result.get("model_overrides", {})).items()
             if k in ("learn_initial_weights", "gamma_max")}
    recipe = {k: v for k, v in result["recipe"].items() if k in ("lr", "lr_drop_factor", "batch_size")}
    return model, recipe


def load_seeds(names: str | Iterable[str], folder: str | Path | None = None) -> list[dict[str, Any]]:
    """The seeds of one or more convergence results files (one run split over several files),
    sorted by seed. The files must hold the same model and recipe, and no seed twice."""
    names = [names] if isinstance(names, str) else list(names)
    results = [load(n, folder) for n in names]
    for name, result in zip(names, results, strict=True):
        if "convergence" not in result:
            raise ValueError(f"{name} holds no convergence results (keys: {sorted(result)})")
    first = _model_and_recipe(results[0])
    for name, result in zip(names[1:], results[1:], strict=True):
        if _model_and_recipe(result) != first:
            raise ValueError(f"{name} was made with {_model_and_recipe(result)}, "
                             f"{names[0]} with {first}: not one run")
    seeds = sorted((s for r in results for s in r["convergence"]["seeds"]), key=lambda s: s["seed"])
    numbers = [s["seed"] for s in seeds]
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"a seed appears twice in {names}: {numbers}")
    return seeds


def _spread(values: Mapping[str, float]) -> dict[str, float]:
    return {"median": values["median"], "min": values["min"], "max": values["max"]}


def throughput_rows(result: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (batch, mode): ``train`` and ``eval`` sequences per second as ``median``,
    ``min`` and ``max`` over the repeats (a single measurement: all three the same),
    ``repeats``, and ``vs_plain``: the median over the repeats of the training rate divided by
    the plain path's in the same repeat (``None`` for the plain path and single measurements).
    Modes: ``eager`` (the plain path), ``fused``, ``compiled``."""
    if "throughput_summary" in result:
        return [{"batch": e["batch"], "mode": e["mode"], "repeats": e["repeats"],
                 "train": _spread(e["train"]), "eval": _spread(e["eval"]),
                 "vs_plain": e.get("train_vs_eager_median")}
                for e in result["throughput_summary"]]
    rows = []
    for r in result["throughput"]:
        mode = r.get("mode", "compiled" if r.get("compiled_step") else "eager")
        one = {k: {"median": r[k]["sequences_per_second"], "min": r[k]["sequences_per_second"],
                   "max": r[k]["sequences_per_second"]} for k in ("train", "eval")}
        rows.append({"batch": r["batch"], "mode": mode, "repeats": 1, **one, "vs_plain": None})
    return rows


def within_targets(seed: Mapping[str, Any], targets: Mapping[str, float] = COPY_TARGETS) -> bool:
    """Whether a seed's final model meets Part III's copy targets (:data:`COPY_TARGETS`)."""
    return (seed["eval_length_20"]["bit_errors"] <= targets["bit_errors_length_20"]
            and seed["eval_length_40"]["bit_error_rate"] <= targets["bit_error_rate_length_40"])


def convergence_summary(seeds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """How many seeds converged and relapsed; the median and range of the sequences and seconds
    to converge and of the worst running mean after converging (over the converged seeds); and
    how many final models meet Part III's copy targets."""
    done = [s for s in seeds if s["converged"]]
    if not done:
        raise ValueError(f"none of the {len(seeds)} seeds converged")

    def spread(key: str) -> dict[str, float]:
        xs = [s[key] for s in done]
        return {"median": statistics.median(xs), "min": min(xs), "max": max(xs)}

    return {
        "seeds": len(seeds),
        "converged": len(done),
        "relapsed": sum(bool(s["relapsed"]) for s in done),
        "sequences_to_converge": spread("sequences_to_converge"),
        "seconds_to_converge": spread("seconds_to_converge"),
        "worst_after_converging": spread("worst_running_mean_after_converging"),
        "within_targets": sum(within_targets(s) for s in seeds),
    }


def hold_margins(names: Iterable[str] = HOLD, folder: str | Path | None = None) -> list[dict[str, Any]]:
    """The read head's hold margins, one row per (file, seed, moment).

    The margin of one sequence is the smallest, over the steps before the answer, of the read
    head's "stay" shift weight minus its larger "move" weight; each row gives its 1%, 5% and 50%
    quantiles (``q01``, ``q05``, ``q50``) over 1,024 fresh length-20 sequences, the fraction
    below 0, and ``shifted``: how many of them were answered out of step. ``moment`` is
    ``"drop"`` (when the learning rate dropped) or ``"end"``; ``gamma_max`` is the bound on the
    sharpening exponent (``None``: unbounded); ``relapsed`` says how the run went."""
    rows = []
    for name in names:
        result = load(name, folder)
        gamma_max = result.get("model_overrides", {}).get("gamma_max")
        for seed in result["seeds"]:
            for moment, key in (("drop", "converged"), ("end", "end")):
                hold = seed[key]["read_hold"]
                q = hold["margin_quantiles"]
                rows.append({"file": name, "seed": seed["seed"], "gamma_max": gamma_max,
                             "relapsed": seed["relapsed"], "moment": moment,
                             "q01": q["1%"], "q05": q["5%"], "q50": q["50%"],
                             "below_0": hold["margin_below_0"], "shifted": hold["shifted"],
                             "sequences": hold["sequences"]})
    return rows


# ----------------------------------------------------------------------------- tables to print


def throughput_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of :func:`throughput_rows` as a text table: median [lowest, highest] per batch and
    mode, and the fused unroll's training rate over the plain path's."""
    names = {"eager": "plain path", "fused": "fused unroll", "compiled": "compiled step"}

    def rate(x: Mapping[str, float]) -> str:
        if x["min"] == x["max"]:
            return f"{x['median']:,.0f}"
        return f"{x['median']:,.0f} [{x['min']:,.0f}, {x['max']:,.0f}]"

    lines = [f"{'batch':>5}  {'path':<13}  {'training (seq/s)':>24}  {'evaluation (seq/s)':>24}  "
             f"{'vs plain':>8}"]
    for r in rows:
        ratio = "" if r.get("vs_plain") is None else f"{r['vs_plain']:.2f}x"
        lines.append(f"{r['batch']:>5}  {names.get(r['mode'], r['mode']):<13}  {rate(r['train']):>24}  "
                     f"{rate(r['eval']):>24}  {ratio:>8}")
    return "\n".join(lines)


def convergence_table(summaries: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per labelled :func:`convergence_summary`: seeds, converged, relapsed, the
    sequences and seconds to converge, the worst running mean after converging, and the final
    models within Part III's copy targets."""
    lines = [f"{'':<22}{'seeds':>6}{'converged':>10}{'relapsed':>9}  "
             f"{'sequences to converge':>31}  {'seconds':>14}  {'worst after':>12}  {'within targets':>14}",
             f"{'':<22}{'':>6}{'':>10}{'':>9}  {'median [lowest, highest]':>31}  {'median, worst':>14}  "
             f"{'median, worst':>12}  {'':>14}"]
    for label, s in summaries.items():
        q, t, w = s["sequences_to_converge"], s["seconds_to_converge"], s["worst_after_converging"]
        lines.append(f"{label:<22}{s['seeds']:>6}{s['converged']:>10}{s['relapsed']:>9}  "
                     f"{q['median']:>11,.0f} [{q['min']:>7,}, {q['max']:>8,}]  "
                     f"{t['median']:>6.1f}, {t['max']:>5.1f} s  {w['median']:>5.2f}, {w['max']:>5.2f}  "
                     f"{s['within_targets']:>8} of {s['seeds']}")
    return "\n".join(lines)


def hold_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of :func:`hold_margins` as a text table, one line per (bound, seed, moment)."""
    lines = [f"{'sharpening':<12}{'seed':>5}  {'relapsed':<9}{'moment':<7}"
             f"{'margin quantiles: 1%, 5%, 50%':>31}  {'below 0':>8}  {'out of step':>12}"]
    for r in rows:
        bound = "unbounded" if r["gamma_max"] is None else f"γ ≤ {r['gamma_max']:g}"
        lines.append(f"{bound:<12}{r['seed']:>5}  {'yes' if r['relapsed'] else 'no':<9}{r['moment']:<7}"
                     f"{r['q01']:>13.3f}, {r['q05']:.3f}, {r['q50']:.3f}  {r['below_0']:>8.2%}  "
                     f"{r['shifted']:>6} of {r['sequences']:,}")
    return "\n".join(lines)
