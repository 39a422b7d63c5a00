"""Markdown tables from results JSON written by ``run.py`` (pasted into book/performance.md).

    python benchmarks/report.py benchmarks/results/cpu.json
    python benchmarks/report.py --merge A.json B.json          # one table from split seed lists
    python benchmarks/report.py --relapse A.json B.json ...    # one row per file: how it relapsed
    python benchmarks/report.py --anatomy A.json B.json ...    # error_anatomy.py's seeds, by seed
    python benchmarks/report.py --replay R.json ... BASE.json ...  # replay_trial.py's seeds against
                                                               # the same seeds of run.py's files
"""

from __future__ import annotations

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


def relapse_row(path: Path, result: dict) -> str:
    """One line: the recipe change, how many seeds converged and relapsed, the worst means."""
    c = result["convergence"]
    recipe = result["recipe"]
    change = []
    if recipe.get("batch_size", 32) != 32:
        change.append(f"batch {recipe['batch_size']}")
    if recipe.get("lr", 1e-3) != 1e-3:
        change.append(f"lr {recipe['lr']:g}")
    if recipe.get("lr_drop_below") is not None:
        below = recipe["lr_drop_below"]  # 0.1 is the convergence threshold itself
        change.append(f"lr x{recipe['lr_drop_factor']:g} "
                      + ("at convergence" if below == 0.1 else f"once below {below:g} bit errors/seq")
                      + (f", {recipe['lr_drop_delay']:,} sequences later"
                         if recipe.get("lr_drop_delay") else ""))
    if recipe.get("lr_follow_errors") is not None:
        power = recipe["lr_follow_power"]
        change.append(f"lr x clamp((mean errors / {recipe['lr_follow_errors']:g})"
                      + (f"^{power:g}" if power != 1 else "")
                      + f", {recipe['lr_follow_floor']:g}, 1), decay {recipe['lr_follow_beta']:g}"
                      + (", never rising" if recipe.get("lr_follow_down_only") else ""))
    if recipe.get("focus_errors"):
        change.append(f"lengths drawn {recipe['focus_errors']:g} by their errors "
                      f"(decay {recipe['focus_beta']:g})")
    if recipe.get("amsgrad_after_drop"):
        change.append("AMSGrad from the drop")
    if recipe.get("lr_half_life_after_drop"):
        change.append(f"then halved every {recipe['lr_half_life_after_drop']:,} sequences")
    if recipe.get("mixed_lengths", "never") != "never":
        change.append("mixed-length batches" + (" from the drop" if recipe["mixed_lengths"] == "after-drop" else ""))
    if recipe.get("spike_clip") is not None:
        change.append(f"spike clipping at {recipe['spike_clip']:g}x the mean gradient norm")
    if recipe.get("weight_noise") is not None:
        change.append(f"weight noise {recipe['weight_noise']:g}"
                      + (" from the drop" if recipe.get("weight_noise_from_drop") else ""))
    if recipe.get("amsgrad"):
        change.append("AMSGrad")
    if recipe.get("eps", 1e-8) != 1e-8:
        change.append(f"Adam eps {recipe['eps']:g}")
    if recipe.get("beta2", 0.999) != 0.999:
        change.append(f"beta2 {recipe['beta2']:g}")
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


def anatomy_table(results: list[dict]) -> str:
    """One row per seed of ``error_anatomy.py`` files: the bit errors per sequence at the drop and
    at the end, split into near misses / answers read out of step / other, and how many of the
    fresh sequences were read out of step."""
    def cell(found: dict) -> str:
        kinds = found["kinds"]
        parts = " / ".join(f"{kinds[k]['bit_errors']:.3f}" for k in ("near_miss", "shifted", "other"))
        return f"{found['bit_errors']:.3f} ({parts}) | {kinds['shifted']['sequences']}"

    scored = {r["seeds"][0]["converged"]["sequences_scored"] for r in results if r["seeds"]}
    lines = ["| seed | relapsed | at the drop: bit errors/seq (near miss / out of step / other) | "
             f"out of step, of {'/'.join(map(str, sorted(scored)))} | at the end of the 3x run | "
             "out of step |", "|---:|---|---|---:|---|---:|"]
    seeds = sorted((s for r in results for s in r["seeds"]), key=lambda s: s["seed"])
    lines += [f"| {s['seed']} | {'yes' if s['relapsed'] else 'no'} | {cell(s['converged'])} | "
              f"{cell(s['end'])} |" for s in seeds if "converged" in s and "end" in s]
    return "\n".join(lines)


def replay_rows(results: list[dict]) -> str:
    """Rows for ``replay_trial.py`` files (those with a ``mode``), each seed next to the same seed
    in the ``run.py`` files among ``results`` (worst running mean after converging, length 20)."""
    base = {r["seed"]: r for res in results if "convergence" in res
            for r in res["convergence"]["seeds"] if r["converged"]}
    lines = []
    for res in (r for r in results if "mode" in r):
        for r in res["seeds"]:
            b = base.get(r["seed"])
            without = (f"{b['worst_running_mean_after_converging']:.2f}, "
                       f"{b['eval_length_20']['bit_errors']:.3f}" if b else "--")
            lines.append(
                f"| {res['mode']} | {r['seed']} | {r['sequences_to_converge']:,} "
                f"({r['seconds_to_converge']:.0f} s) | {r['worst_running_mean_after_converging']:.2f} | "
                f"{'yes' if r['relapsed'] else 'no'} | {r['eval_length_20']['bit_errors']:.3f} | "
                f"{without} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    args = sys.argv[1:]
    if args and args[0] == "--relapse":
        print(relapse_table([Path(a) for a in args[1:]]))
    elif args and args[0] == "--replay":
        print(replay_rows([json.loads(Path(a).read_text()) for a in args[1:]]))
    elif args and args[0] == "--anatomy":
        print(anatomy_table([json.loads(Path(a).read_text()) for a in args[1:]]))
    elif args and args[0] == "--merge":
        print(tables(merged([json.loads(Path(a).read_text()) for a in args[1:]])))
    else:
        print(tables(json.loads(Path(args[0]).read_text())))
