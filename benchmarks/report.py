"""Markdown tables from a results JSON written by ``run.py`` (pasted into book/performance.md).

    python benchmarks/report.py benchmarks/results/cpu.json
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


if __name__ == "__main__":
    print(tables(json.loads(Path(sys.argv[1]).read_text())))
