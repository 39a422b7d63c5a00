"""Gradient norms around relapses on copy: do collapses follow outsized gradients?

Trains seeds exactly as the convergence benchmark does (``convergence.run_seed``: the row-0 copy
NTM, the fused unroll, run on to three times the sequences at convergence) while recording every
batch's gradient norm as the optimiser receives it. Each norm is compared with the running mean of
the norms before it (decay 0.99 per batch; its *ratio*). After convergence, it reports how often
a batch's ratio exceeds 5 and 10, and for every *collapse* -- the running mean of bit errors
rising above ``--collapse`` bits per sequence -- the largest ratio from 16 batches before the rise
began (the last batch with a running mean of at most 1) to the collapse. Prints a table and writes
the per-batch records and the table as JSON::

    python benchmarks/gradient_norms.py --recipe fast-adam --seeds 0 1 \\
        --out benchmarks/results/gradient-norms.json
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convergence import ConvergenceSettings, run_seed  # noqa: E402
from run import get_recipe, load, machine  # noqa: E402

from neural_memory.checkpoint import atomic_write_text  # noqa: E402

DECAY = 0.99  # of the running mean of gradient norms the ratios are taken against
BEFORE = 16  # batches before a rise that count towards it (a 500-sequence window at batch 32)


def ratios(norms: list[float]) -> list[float]:
    """Each norm over the running mean of the norms before it (the first: 1)."""
    out, mean = [], None
    for norm in norms:
        out.append(1.0 if mean is None else norm / mean)
        mean = norm if mean is None else DECAY * mean + (1 - DECAY) * norm
    return out


def analyse(record: dict, collapse: float) -> dict:
    """Outsized gradients after convergence, and the largest one before each collapse."""
    rows = record["batches"]
    r = ratios([row[2] for row in rows])
    if not record["converged"]:
        return {"seed": record["seed"], "converged": False}
    start = next(i for i, row in enumerate(rows) if row[0] == record["sequences_to_converge"]) + 1
    after = r[start:]
    collapses, inside = [], False
    for i in range(start, len(rows)):
        mean = rows[i][4]
        if mean > collapse and not inside:
            rise = i
            while rise > start and rows[rise - 1][4] > 1.0:
                rise -= 1
            collapses.append({
                "sequences": rows[i][0],
                "rise_began": rows[rise][0],
                "largest_ratio": round(max(r[max(0, rise - BEFORE): i + 1]), 1),
            })
            inside = True
        elif mean < 0.5:
            inside = False
    return {
        "seed": record["seed"],
        "converged": True,
        "batches_after": len(after),
        "fraction_ratio_above_5": round(sum(x > 5 for x in after) / max(1, len(after)), 4),
        "fraction_ratio_above_10": round(sum(x > 10 for x in after) / max(1, len(after)), 4),
        "worst_running_mean_after_converging": record["worst_running_mean_after_converging"],
        "collapses": collapses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="fast-adam")
    parser.add_argument("--recipe-set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--collapse", type=float, default=5.0,
                        help="running mean (bit errors/seq) counted as a collapse")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    recipe = get_recipe(args.recipe, args.recipe_set)
    settings = ConvergenceSettings()
    result = {"machine": machine(), "load_at_start": load(), "recipe_name": args.recipe,
              "recipe_set": args.recipe_set, "recipe": asdict(recipe),
              "settings": {"decay": DECAY, "before": BEFORE, "collapse": args.collapse},
              "seeds": [], "records": []}
    for seed in args.seeds:
        record = run_seed(seed, recipe, settings, {"learn_initial_weights": False}, fused=True,
                          record_batches=True)
        result["records"].append(record)
        result["seeds"].append(analyse(record, args.collapse))
        if args.out:  # after every seed, so a stopped run keeps the seeds it finished
            atomic_write_text(args.out, json.dumps(result))
    print(f"\nafter convergence, recipe {args.recipe!r} {' '.join(args.recipe_set)}")
    print(" seed  batches  ratio>5  ratio>10  worst mean  collapses (sequences: largest ratio)")
    for s in result["seeds"]:
        if not s["converged"]:
            print(f" {s['seed']:>4}  not converged")
            continue
        found = ", ".join(f"{c['sequences']}: {c['largest_ratio']}" for c in s["collapses"]) or "-"
        print(f" {s['seed']:>4}  {s['batches_after']:>7}  {s['fraction_ratio_above_5']:>7.2%}"
              f"  {s['fraction_ratio_above_10']:>8.2%}  {s['worst_running_mean_after_converging']:>10}"
              f"  {found}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
