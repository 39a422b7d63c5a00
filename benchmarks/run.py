"""NTM benchmarks: training and evaluation throughput, time to converge on copy, peak memory.

    python benchmarks/run.py --fused --preset copy-row0-gamma2 --recipe fast-adam-settle10  # make bench
    python benchmarks/run.py --quick         # a reduced run (about 3 minutes)
    python benchmarks/run.py --only throughput --fused
    python benchmarks/run.py --only convergence --fused --preset copy-row0 --seed-list 2 3
    python benchmarks/run.py --device cuda --compiled --preset copy-row0 --recipe fast-adam-settle  # GPU

One thread per run (``--threads``). The convergence seeds run in parallel on a local Dask cluster
with one single-threaded worker per core (``--workers N``; ``--workers 0``: one after another in
this process; ``--scheduler ADDRESS``: an existing cluster). Prints the tables and writes them, with
the machine (CPU model, cores, load average, torch version; the GPU and its CUDA version with
``--device cuda``), to ``--out`` as JSON. See
``benchmarks/README.md`` and the book's "Performance and stability" appendix.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path

import cloudpickle
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import convergence  # noqa: E402
from convergence import ConvergenceSettings, copy_model_config, run_seed, summarise  # noqa: E402
from throughput import eval_throughput, rate_range, train_throughput  # noqa: E402

from neural_memory.checkpoint import atomic_write_text  # noqa: E402
from neural_memory.experiments.sweep import (  # noqa: E402
    add_sweep_arguments,
    run_jobs,
    sweep_options,
)
from neural_memory.ntm import NTMConfig  # noqa: E402
from neural_memory.train import parse_overrides  # noqa: E402
from neural_memory.training import TrainConfig  # noqa: E402

#: The recipe the benchmarks train with by default: Part III's "fast-adam" (Adam 1e-3, batches of
#: 32, the paper's element-wise gradient clipping at 10).
RECIPE = "fast-adam"


def get_recipe(name: str, recipe_set: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The recipe ``name`` with the ``--recipe-set FIELD=VALUE`` overrides ``recipe_set``."""
    recipe = TrainConfig.preset(name)  # ValueError for an unknown name
    return replace(recipe, **parse_overrides(recipe_set, recipe, flag="--recipe-set"))


def model_overrides(model_set: list[str]) -> dict:
    """The ``--model-set FIELD=VALUE`` items as overrides of the copy NTMConfig."""
    return parse_overrides(model_set, NTMConfig(input_size=1, output_size=1), flag="--model-set")


def machine() -> dict:
    info = {"torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "logical_cpus": os.cpu_count(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(cuda=torch.version.cuda, gpu_memory_mib=props.total_memory // 2**20,
                    gpu_multiprocessors=props.multi_processor_count)
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in lscpu.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket"):
                info[key.strip()] = value.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return info


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def write_json(path: Path | None, result: dict) -> None:
    """Write ``result`` to ``path`` atomically (nothing when ``path`` is None)."""
    if path is not None:
        atomic_write_text(path, json.dumps(result, indent=1))


def peak_memory_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # Linux: KiB


def peak_gpu_memory_mib(device: str) -> float | None:
    """The most GPU memory torch's allocator held for tensors at once (None on the CPU)."""
    if torch.device(device).type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20, 1)


def throughput_rows(batches: list[int], seconds: float, modes: list[str], recipe: TrainConfig,
                    repeats: int = 1, device: str = "cpu", on_row=None) -> list[dict]:
    """Each (batch, mode) measured ``repeats`` times, interleaved -- repeat, batch, then mode
    innermost -- so that the modes compared at a batch are measured minutes, not tens of
    minutes, apart on a machine whose speed drifts. ``on_row(rows)`` is called after each row
    (to keep what was measured if the run is stopped)."""
    rows = []
    for repeat in range(repeats):
        for b in batches:
            for mode in modes:
                row = {"batch": b, "mode": mode, "compiled_step": mode == "compiled",
                       "repeat": repeat, "load_before": load()}
                row["train"] = train_throughput(b, seconds, recipe, mode, device)
                row["eval"] = eval_throughput(b, seconds, mode, device)
                row["load_after"] = load()
                rows.append(row)
                if on_row is not None:
                    on_row(rows)
                print(f"{b:>6} {mode:>9} "
                      f"{row['train']['sequences_per_second']:>12.1f} "
                      f"{row['eval']['sequences_per_second']:>12.1f}"
                      f"   load {row['load_before'][0]:.2f} -> {row['load_after'][0]:.2f}"
                      + (f"   (repeat {repeat + 1} of {repeats})" if repeats > 1 else ""), flush=True)
    return rows


def throughput_summary(rows: list[dict]) -> list[dict]:
    """Per (batch, mode): median, lowest and highest rate over the repeats; per batch, the median
    over repeats of each mode's training rate divided by the plain (eager) path's in the same
    repeat."""
    summary = []
    for b in sorted({r["batch"] for r in rows}):
        eager = {r["repeat"]: r["train"]["sequences_per_second"]
                 for r in rows if r["batch"] == b and r["mode"] == "eager"}
        for mode in dict.fromkeys(r["mode"] for r in rows if r["batch"] == b):
            mine = [r for r in rows if r["batch"] == b and r["mode"] == mode]
            entry = {"batch": b, "mode": mode, "repeats": len(mine)}
            for part in ("train", "eval"):
                rates = [r[part]["sequences_per_second"] for r in mine]
                entry[part] = {"median": round(statistics.median(rates), 1),
                               "min": min(rates), "max": max(rates)}
            ratios = [r["train"]["sequences_per_second"] / eager[r["repeat"]]
                      for r in mine if r["repeat"] in eager]
            if mode != "eager" and ratios:
                entry["train_vs_eager_median"] = round(statistics.median(ratios), 2)
            summary.append(entry)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short timings, 2 seeds, small budget")
    parser.add_argument("--only", choices=("throughput", "convergence"), default=None)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--seconds", type=float, default=None, help="timing per measurement")
    parser.add_argument("--compiled", action="store_true",
                        help="throughput: also time NTM.compile_step(); convergence: train with it")
    parser.add_argument("--fused", action="store_true",
                        help="throughput: also time the fused C++ unroll (NTM.use_fused); "
                             "convergence: train with it")
    parser.add_argument("--no-eager", action="store_true", help="throughput: skip the plain rows")
    parser.add_argument("--repeats", type=int, default=1,
                        help="throughput: measure every row this many times, interleaved, and "
                             "report the median and range (the machine's speed drifts)")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--seed-list", type=int, nargs="+", default=None,
                        help="convergence: these seeds instead of 0 .. --seeds - 1 (to split a run)")
    parser.add_argument("--max-seconds", type=float, default=None, help="budget to converge per seed")
    parser.add_argument("--recipe", default=RECIPE, help="a TrainConfig preset name")
    parser.add_argument("--preset", default="copy",
                        help="convergence: the NTMConfig preset trained (default: the paper's copy NTM)")
    parser.add_argument("--recipe-set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a field of the recipe, e.g. lr_drop_factor=0.3")
    parser.add_argument("--model-set", action="append", default=[], metavar="FIELD=VALUE",
                        help="convergence: override a field of the model preset, e.g. gamma_max=3")
    parser.add_argument("--device", default="cpu",
                        help="where the model runs: cpu (default) or cuda (a GPU; no --fused)")
    parser.add_argument("--out", type=Path, default=None)
    add_sweep_arguments(parser)  # --workers, --scheduler, --threads (torch threads per run)
    args = parser.parse_args(argv)
    sweep = sweep_options(parser, args)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    try:
        device = torch.device(args.device)
    except RuntimeError as err:
        parser.error(f"--device {args.device!r}: {err}")
    if device.type not in ("cpu", "cuda"):
        parser.error(f"--device must be cpu or cuda, got {args.device!r}")
    if args.fused and device.type != "cpu":
        parser.error("--fused: the fused unroll runs on the CPU only; leave it out with --device cuda")
    if args.only != "throughput" and args.fused and args.compiled:
        parser.error("convergence trains one way: choose --fused or --compiled")
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no GPU here (torch.cuda.is_available() is False)")
    torch.set_num_threads(args.threads)
    seconds = args.seconds or (3.0 if args.quick else 15.0)
    seeds = args.seeds or (2 if args.quick else 5)
    out = args.out or Path(__file__).resolve().parent / "results" / (
        f"{device.type}{'-quick' if args.quick else ''}.json")
    try:
        recipe = get_recipe(args.recipe, args.recipe_set)
        overrides = model_overrides(args.model_set)
        model_config = copy_model_config(args.preset, overrides)
    except ValueError as err:
        parser.error(str(err))
    result: dict = {"machine": machine(), "device": str(device), "load_at_start": load(),
                    "recipe_name": args.recipe, "recipe": asdict(recipe), "quick": args.quick,
                    "preset": args.preset,
                    "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    print(f"machine: {result['machine'].get('Model name', '?')}, {os.cpu_count()} logical CPUs, "
          f"torch {torch.__version__}, {args.threads} thread(s); load {result['load_at_start']}")
    if device.type == "cuda":
        print(f"device: GPU {result['machine']['gpu']} (CUDA {torch.version.cuda})")
    elif not torch.cuda.is_available():
        print("no GPU here: GPU table not measured")
    if args.only in (None, "throughput"):
        print(f"\nthroughput, paper copy NTM, lengths 1-20, sequences/s ({seconds:.0f} s each)")
        print(f"{'batch':>6} {'mode':>9} {'train seq/s':>12} {'eval seq/s':>12}")
        modes = ([] if args.no_eager else ["eager"]) + (["compiled"] if args.compiled else []) \
            + (["fused"] if args.fused else [])
        rows = throughput_rows(args.batches, seconds, modes, recipe, args.repeats, str(device),
                               on_row=lambda rows: write_json(out, {**result, "throughput": rows,
                                                                    "partial": True}))
        result["throughput"] = rows
        if args.repeats > 1:
            result["throughput_summary"] = throughput_summary(rows)
            print(f"\nover {args.repeats} repeats: median [lowest, highest] sequences/s")
            print(f"{'batch':>6} {'mode':>9} {'train':>24} {'eval':>24} {'train / eager':>14}")
            for e in result["throughput_summary"]:
                ratio = e.get("train_vs_eager_median")
                print(f"{e['batch']:>6} {e['mode']:>9} {rate_range(e['train']):>24} "
                      f"{rate_range(e['eval']):>24} "
                      f"{'' if ratio is None else f'{ratio:.2f}x':>14}")
    if args.only in (None, "convergence"):
        settings = ConvergenceSettings(max_seconds=args.max_seconds or (60.0 if args.quick else 150.0))
        if args.quick:
            settings = ConvergenceSettings(max_seconds=settings.max_seconds, extend=1.5, eval_sequences=64)
        print(f"\ntime to converge on copy, recipe {args.recipe!r}: "
              f"{len(args.seed_list) if args.seed_list else seeds} seeds, budget "
              f"{settings.max_seconds:.0f} s each, run on to {settings.extend:g}x; load {load()}")
        result["model_overrides"] = overrides
        result["model"] = asdict(model_config)
        result["fused"] = args.fused
        result["compiled"] = args.compiled
        # One job per seed, on a local Dask cluster by default (one single-threaded worker per
        # core), in this process with --workers 0, or on a cluster with --scheduler; each seed
        # is deterministic, so where it runs changes only its seconds.
        cloudpickle.register_pickle_by_value(convergence)  # the workers cannot import benchmarks/
        jobs = [(f"seed{seed}", partial(run_seed, seed, recipe, settings, model_config,
                                        fused=args.fused, device=str(device),
                                        compiled=args.compiled))
                for seed in (args.seed_list or range(seeds))]
        records = []

        def store(key: str, record: dict) -> None:
            records.append(record)
            records.sort(key=lambda r: r["seed"])
            kept = {**result, "convergence": {"summary": summarise(records, settings),
                                              "seeds": records, "partial": True}}
            atomic_write_text(out, json.dumps(kept, indent=1) + "\n")  # kept if stopped early

        run_jobs(jobs, **sweep, on_result=store)
        summary = summarise(records, settings)
        result["convergence"] = {"summary": summary, "seeds": records, "load_after": load()}
        print(f"{'seed':>5} {'converged':>9} {'sequences':>10} {'seconds':>8} {'worst after':>12} "
              f"{'relapse':>8} {'len20 err/seq':>14} {'len40 BER':>10}")
        for r in records:
            print(f"{r['seed']:>5} {str(r['converged']):>9} {str(r['sequences_to_converge']):>10} "
                  f"{str(r['seconds_to_converge']):>8} {str(r['worst_running_mean_after_converging']):>12} "
                  f"{str(r['relapsed']):>8} {r['eval_length_20']['bit_errors']:>14.3f} "
                  f"{r['eval_length_40']['bit_error_rate']:>10.4f}")
        print(f"median {summary['median_seconds']} s ({summary['median_sequences']} sequences), "
              f"worst {summary['worst_seconds']} s, converged {summary['fraction_converged']:.0%}, "
              f"relapse: {summary['any_relapse']}")
    result["peak_memory_mib"] = peak_memory_mib()
    result["peak_gpu_memory_mib"] = peak_gpu_memory_mib(str(device))
    result["load_at_end"] = load()
    print(f"\npeak memory of the process (max RSS): {result['peak_memory_mib']:.0f} MiB")
    if result["peak_gpu_memory_mib"] is not None:
        print(f"peak GPU memory (torch.cuda.max_memory_allocated): "
              f"{result['peak_gpu_memory_mib']:.0f} MiB")
    atomic_write_text(out, json.dumps(result, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
