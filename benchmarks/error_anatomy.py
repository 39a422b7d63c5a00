"""What the copy model's remaining errors are, at convergence and at the end of the 3x run.

Trains seeds exactly as the convergence benchmark does (``convergence.run_seed``: the row-0 copy
NTM, the fused unroll, run on to three times the sequences at convergence), keeps the model at
convergence -- the moment of the recipe's learning-rate drop -- and at the end, and sorts every
wrong sequence of fresh batches at each training length into one of three kinds:

* *near miss*: at most ``NEAR`` wrong bits -- the right vectors, a bit or two decoded wrongly;
* *shifted*: more wrong bits, but the answer is the input sequence shifted by ``k`` vectors
  (``0 < |k| <= MAX_SHIFT``) for at least half of its positions -- the read head started early
  or late, or hesitated, and read the right sequence out of step;
* *other*: everything else.

At length 20 it also looks inside (``read_hold``, a traced forward pass): the copy models we
traced park their read head on its starting row while the sequence is written and start moving
it with the answer, so a read head that leaves its row before the answer has begun reads the
answer out of step (not every model holds it this way: ``parked`` says in how many sequences
the head stayed on its row, and a model that holds it by other means can show negative margins
and answer in step). Each time step the head's shift weighting puts some weight on "stay" and
some on "move"; sharpening turns a head that prefers "stay" back into one parked on its row, so
what matters is the *hold margin* -- the smallest, over the steps before the answer, of the
"stay" weight minus the larger "move" weight. A negative margin at one step moves the head.

Prints a table (per seed and moment: bit errors per sequence over the twenty lengths, and how
much of it each kind makes) and writes it, with the counts per length and the hold margins, as
JSON::

    python benchmarks/error_anatomy.py --seeds 0 8 1 6 --out benchmarks/results/anatomy-a.json
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convergence import ConvergenceSettings, run_seed  # noqa: E402
from run import get_recipe, load, machine, model_overrides, write_json  # noqa: E402

from neural_memory.tasks import get_task  # noqa: E402
from neural_memory.tasks.metrics import sequence_bit_errors  # noqa: E402

NEAR = 3  # wrong bits: a near miss
MAX_SHIFT = 3  # offsets tried for a shifted answer
KINDS = ("near_miss", "shifted", "other")


def classify(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, length: int
) -> list[tuple[int, str, int, int]]:
    """``(row, kind, wrong bits, offset)`` for every wrong copy answer of a batch of one
    ``length``, ``row`` its index in the batch (offset 0 unless shifted). ``logits``, ``targets``: ``(B, 2L + 1, 8)``; ``mask``: ``(B, 2L + 1)``."""
    wrong = sequence_bit_errors(logits, targets, mask)  # (B,)
    predicted = (logits[:, length + 1:] > 0).to(targets.dtype)  # (B, L, 8): the answer phase
    data = targets[:, length + 1:]  # (B, L, 8)
    out = []
    for b in torch.nonzero(wrong).flatten().tolist():
        bits = int(wrong[b])
        if bits <= NEAR:
            out.append((b, "near_miss", bits, 0))
            continue
        best, offset = 0, 0
        for k in range(-MAX_SHIFT, MAX_SHIFT + 1):
            if k == 0 or abs(k) >= length:
                continue
            # answer position i holds input vector i + k
            lo, hi = max(0, -k), min(length, length - k)
            same = int((predicted[b, lo:hi] == data[b, lo + k:hi + k]).all(-1).sum())
            if same > best:
                best, offset = same, k
        out.append((b, "shifted", bits, offset) if 2 * best >= length else (b, "other", bits, 0))
    return out


def read_hold(model: torch.nn.Module, sequences: int, seed: int, length: int = 20) -> dict:
    """The read head's hold before the answer on ``sequences`` fresh sequences of ``length``
    (module docstring): the fraction parked on their first row until the answer begins, the
    quantiles of the hold margin, the fraction with a margin below 0, and how many of the
    shifted answers came with a head that had moved early."""
    task = get_task("copy")
    generator = torch.Generator().manual_seed(40_000 + seed)
    inputs, targets, mask = task.sample(sequences, generator, length=length)
    model.eval()
    with torch.no_grad():
        logits, trace = model(inputs, return_trace=True)  # the plain path, traced
    where = trace.read_weights[:, : length + 1, 0].argmax(-1)  # (B, L + 1): first read head
    parked = (where == where[:, :1]).all(1)  # (B,)
    k = trace.heads.shift.shape[-1]
    shift = trace.heads.shift[:, 1 : length + 1, 0]  # (B, L, K): the steps before the answer
    stay = shift[..., k // 2]
    move = torch.cat([shift[..., : k // 2], shift[..., k // 2 + 1 :]], -1).amax(-1)
    margin = (stay - move).amin(1)  # (B,)
    shifted = [b for b, kind, _, _ in classify(logits, targets, mask, length) if kind == "shifted"]
    q = torch.tensor([0.01, 0.05, 0.5])
    return {
        "length": length,
        "sequences": sequences,
        "parked": round(float(parked.float().mean()), 4),
        "margin_quantiles": dict(zip(("1%", "5%", "50%"),
                                     [round(v, 3) for v in margin.quantile(q).tolist()],
                                     strict=True)),
        "margin_below_0": round(float((margin < 0).float().mean()), 4),
        "shifted": len(shifted),
        "shifted_moved_early": sum(not bool(parked[b]) for b in shifted),
    }


def anatomy(model: torch.nn.Module, sequences: int, seed: int) -> dict:
    """Bit errors per sequence at every training length, split by kind (module docstring)."""
    task = get_task("copy")
    generator = torch.Generator().manual_seed(30_000 + seed)
    model.eval()
    by_length, offsets = {}, {}
    with torch.no_grad():
        for sizes in task.training_sizes():
            length = sizes["length"]
            inputs, targets, mask = task.sample(sequences, generator, length=length)
            counts = {kind: [0, 0] for kind in KINDS}  # sequences, wrong bits
            for _, kind, bits, k in classify(model(inputs), targets, mask, length):
                counts[kind][0] += 1
                counts[kind][1] += bits
                if k:
                    offsets[k] = offsets.get(k, 0) + 1
            by_length[length] = counts
    lengths = len(by_length)
    summary = {
        kind: {
            "bit_errors": sum(c[kind][1] for c in by_length.values()) / (sequences * lengths),
            "sequences": sum(c[kind][0] for c in by_length.values()),
        }
        for kind in KINDS
    }
    return {
        "bit_errors": sum(s["bit_errors"] for s in summary.values()),
        "sequences_scored": sequences * lengths,
        "kinds": summary,
        "shift_offsets": dict(sorted(offsets.items())),
        "by_length": by_length,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--recipe", default="fast-adam-settle")
    parser.add_argument("--recipe-set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--model-set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a field of the copy NTMConfig, e.g. gamma_max=2.5")
    parser.add_argument("--sequences", type=int, default=256, help="fresh sequences per length")
    parser.add_argument("--hold-sequences", type=int, default=1024,
                        help="fresh sequences of length 20 for the read head's hold")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    recipe = get_recipe(args.recipe, args.recipe_set)
    settings = ConvergenceSettings()
    result = {"machine": machine(), "load_at_start": load(), "recipe_name": args.recipe,
              "recipe": asdict(recipe), "settings": asdict(settings), "near": NEAR,
              "max_shift": MAX_SHIFT, "seeds": []}
    result["model_overrides"] = overrides = model_overrides(True, args.model_set)
    print(f"{'seed':>4} {'relapse':>7} {'moment':>9} {'bit err/seq':>11} "
          + " ".join(f"{k + ' (seqs)':>17}" for k in KINDS))
    for seed in args.seeds:
        snapshots: dict = {}
        record = run_seed(seed, recipe, settings, overrides,
                          log=lambda *_: None, fused=True, snapshots=snapshots)
        entry = {key: record[key] for key in ("seed", "converged", "sequences_to_converge",
                                              "sequences_run", "relapsed",
                                              "worst_running_mean_after_converging")}
        for moment in ("converged", "end"):
            if moment not in snapshots:
                continue
            entry[moment] = found = anatomy(snapshots[moment], args.sequences, seed)
            found["read_hold"] = hold = read_hold(snapshots[moment], args.hold_sequences, seed)
            print(f"{seed:>4} {str(record['relapsed']):>7} {moment:>9} {found['bit_errors']:>11.3f} "
                  + " ".join(f"{found['kinds'][k]['bit_errors']:>9.3f} ({found['kinds'][k]['sequences']:>4})"
                             for k in KINDS)
                  + f"  hold: parked {hold['parked']:.3f}, margin 1% {hold['margin_quantiles']['1%']:.2f}, "
                  f"shifted {hold['shifted']} (moved early {hold['shifted_moved_early']})", flush=True)
        result["seeds"].append(entry)
        write_json(args.out, result)
    result["load_at_end"] = load()
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
