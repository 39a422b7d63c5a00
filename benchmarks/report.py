"""Markdown tables from results JSON written by ``run.py`` (for benchmarks/README.md).

    python benchmarks/report.py benchmarks/results/cpu.json
    python benchmarks/report.py --merge A.json B.json          # one table from split seed lists
    python benchmarks/report.py --relapse A.json B.json ...    # one row per file: how it relapsed
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path


def tables(result: dict) -> str:
    m = result["machine"]
    lines = [f"Machine: {m.get('Model name', '?')}, {m.get('CPU(s)', m.get('logical_cpus'))} logical "
             f"CPUs, torch {m['torch']}, one thread; load average at start "
             f"{result['load_at_start'][0]:.2f}; peak memory (max RSS) {result['peak_memory_mib']:.0f} MiB.", ""]
    if "throughput" in result:
        lines += ["| batch | mode | training (seq/s) | evaluation (seq/s) | load (1 min) |",
                  "|---:|---|---:|---:|---|"]
        for r in result["throughput"]:
            lines.append(f"| {r['batch']} | {r.get('mode', 'compiled step' if r['compiled_step'] else 'eager')} | "
                         f"{r['train']['sequences_per_second']:,.0f} | {r['eval']['sequences_per_second']:,.0f} | "
                         f"{r['load_before'][0]:.1f} → {r['load_after'][0]:.1f} |")
        lines.append("")
    if "throughput_summary" in result:
        from throughput import rate_range

        lines += ["| batch | mode | repeats | training (seq/s): median [lowest, highest] "
                  "| evaluation (seq/s): median [lowest, highest] | training / plain path |",
                  "|---:|---|---:|---:|---:|---:|"]
        for e in result["throughput_summary"]:
            ratio = e.get("train_vs_eager_median")
            lines.append(f"| {e['batch']} | {e['mode']} | {e['repeats']} | {rate_range(e['train'])} | "
                         f"{rate_range(e['eval'])} | "
                         f"{'' if ratio is None else f'{ratio:.2f}x'} |")
        lines.append("")
    if "convergence" in result:
        c = result["convergence"]
        lines += ["| seed | converged | sequences | seconds | worst running mean after | relapse "
                  "| sequences run (seconds) | last logged running mean | length 20: bit errors/seq "
                  "| length 40: BER |",
                  "|---:|---|---:|---:|---:|---|---:|---:|---:|---:|"]
        for r in c["seeds"]:
            lines.append(
                f"| {r['seed']} | {'yes' if r['converged'] else 'no'} | "
                f"{r['sequences_to_converge'] or '—'} | {r['seconds_to_converge'] or '—'} | "
                f"{r['worst_running_mean_after_converging'] if r['converged'] else '—'} | "
                f"{'yes' if r['relapsed'] else ('no' if r['converged'] else '—')} | "
                f"{r['sequences_run']:,} ({r['train_seconds']:.0f}) | {r['curve'][-1][2]:.2f} | "
                f"{r['eval_length_20']['bit_errors']:.3f} | {r['eval_length_40']['bit_error_rate']:.2%} |")
        s = c["summary"]
        def fmt(x: float | None, unit: str) -> str:
            return "—" if x is None else f"{x:,.0f}{unit}"

        lines += ["", f"Median {fmt(s['median_seconds'], ' s')} ({fmt(s['median_sequences'], '')} "
                  f"sequences); worst {fmt(s['worst_seconds'], ' s')}; {s['fraction_converged']:.0%} of seeds converged within "
                  f"{s['settings']['max_seconds']:.0f} s; relapse: "
                  f"{('yes' if s['any_relapse'] else 'no') if s['fraction_converged'] else '— (none converged)'}; "
                  f"load average {result['load_at_start'][0]:.1f} at the start, "
                  f"{c['load_after'][0]:.1f} at the end."]
    return "\n".join(lines)


def merged(results: list[dict]) -> dict:
    """Convergence results of one recipe run as several processes (``--seed-list``), as one."""
    from convergence import ConvergenceSettings, summarise

    first = dict(results[0])
    seeds = sorted((r for res in results for r in res["convergence"]["seeds"]), key=lambda r: r["seed"])
    settings = ConvergenceSettings(**first["convergence"]["summary"]["settings"])
    load_after = max(res["convergence"].get("load_after", [0.0])[0] for res in results)
    first["convergence"] = {"summary": summarise(seeds, settings), "seeds": seeds,
                            "load_after": [load_after]}
    first["load_at_start"] = [max(res["load_at_start"][0] for res in results)]
    return first


def recipe_changes(recipe: dict, base: str = "fast-adam") -> list[str]:
    """How a results file's recipe differs from the recipe ``base``, as ``field=value`` items
    (fields a recipe of an earlier version had count as off when they are at their off value)."""
    from neural_memory.training import REMOVED_OPTIONS, TrainConfig

    reference = {**REMOVED_OPTIONS, **dataclasses.asdict(TrainConfig.preset(base))}
    ignore = {"sequences", "log_every", "checkpoint_every", "eval_sequences"}
    return [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in recipe.items() if k not in ignore and k in reference and reference[k] != v]


def relapse_row(path: Path, result: dict) -> str:
    """One line: the recipe and model changes, how many seeds converged and relapsed, the worst
    running means, the length-20 errors at the end."""
    c = result["convergence"]
    change = recipe_changes(result["recipe"])
    model = {k: v for k, v in result.get("model_overrides", {}).items()
             if k != "learn_initial_weights"}  # the row-0 start is every table's
    change += [f"model {k}={v:g}" if isinstance(v, float) else f"model {k}={v}"
               for k, v in model.items()]
    done = [r for r in c["seeds"] if r["converged"]]
    worst = ", ".join(f"{r['worst_running_mean_after_converging']:.2f}" for r in done)
    relapsed = sum(bool(r["relapsed"]) for r in done)
    len20 = ", ".join(f"{r['eval_length_20']['bit_errors']:.2f}" for r in c["seeds"])
    path_kind = "fused" if result.get("fused") else "plain"
    partial = " (stopped early)" if c.get("partial") else ""
    seeds = ", ".join(str(r["seed"]) for r in c["seeds"])
    return (f"| {'; '.join(change) or 'none'} | {path_kind} | {seeds}{partial} | "
            f"{len(done)} | {relapsed} | {worst} | {len20} | `{path.name}` |")


def relapse_table(paths: list[Path]) -> str:
    lines = ["| change to fast-adam | path | seeds (in order) | converged | relapsed | worst running mean "
             "after converging, per converged seed | length 20: bit errors/seq at the end, per seed | file |",
             "|---|---|---:|---:|---:|---|---|---|"]
    lines += [relapse_row(p, json.loads(p.read_text())) for p in paths]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    args = sys.argv[1:]
    if args and args[0] == "--relapse":
        print(relapse_table([Path(a) for a in args[1:]]))
    elif args and args[0] == "--merge":
        print(tables(merged([json.loads(Path(a).read_text()) for a in args[1:]])))
    else:
        print(tables(json.loads(Path(args[0]).read_text())))
