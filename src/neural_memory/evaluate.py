"""Evaluate a trained model on fresh random sequences: ``python -m neural_memory.evaluate``.

Examples::

    python -m neural_memory.evaluate --task copy --model ntm --length 60
    python -m neural_memory.evaluate --task repeat_copy --model lstm --checkpoint runs/x/repeat_copy-lstm.pt --repeats 15 --json

Without ``--checkpoint`` the model shipped with the package is used:
``src/neural_memory/data/checkpoints/<task>-<model>.pt`` (with its ``.json`` manifest and ``.csv``
learning curve). The problem size is fixed with ``--length`` (copy, repeat copy, priority sort;
multi-copy: per episode), ``--repeats`` (repeat copy), ``--items`` (associative recall) and
``--episodes`` (multi-copy); sizes left out are drawn from the training range, one per batch.
The output is bit errors per sequence, the bit error rate and the cross-entropy in bits per
sequence -- as plain ``key: value`` lines, or with ``--json`` as exactly one JSON object on
stdout::

    {"task": ..., "model": ..., "checkpoint": ..., "sequences_seen": ..., "seed": ...,
     "sequences": K, "size": {"length": L, ...}, "bit_errors": ..., "bit_error_rate": ...,
     "cost_bits": ...}
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from neural_memory import checkpoint
from neural_memory.checkpoint import CheckpointError, load_checkpoint
from neural_memory.registry import MODEL_KINDS
from neural_memory.tasks import TASKS, get_task
from neural_memory.training import evaluate_model

SHIPPED_DIR = checkpoint.SHIPPED_DIR  # module-level so tests can point it elsewhere


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m neural_memory.evaluate",
        description="Bit errors and cross-entropy of a trained model on fresh random sequences.",
    )
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--model", required=True, choices=MODEL_KINDS)
    p.add_argument("--checkpoint", help="a .pt file (default: the shipped one)")
    p.add_argument("--length", type=int,
                   help="sequence length (copy, repeat_copy, priority_sort; multi_copy: per episode)")
    p.add_argument("--repeats", type=int, help="number of repeats (repeat_copy)")
    p.add_argument("--items", type=int, help="number of items (associative_recall)")
    p.add_argument("--episodes", type=int, help="copy episodes per sequence (multi_copy)")
    p.add_argument("--sequences", type=int, default=100, help="fresh sequences to score (default 100)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=1234, help="seed of the fresh data (default 1234)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    return p


def evaluate(args: argparse.Namespace) -> dict:
    """Run the evaluation described by parsed arguments; return the result as a dict."""
    task = get_task(args.task)
    size = {"length": args.length, "repeats": args.repeats, "items": args.items,
            "episodes": args.episodes}
    size = {k: v for k, v in size.items() if v is not None}
    bad = sorted(set(size) - set(task.size_parameters))
    if bad:
        raise ValueError(
            f"task {args.task!r} takes {['--' + s for s in task.size_parameters]}, "
            f"not {['--' + b for b in bad]}"
        )
    path = Path(args.checkpoint) if args.checkpoint else checkpoint.shipped_checkpoint(args.task, args.model, SHIPPED_DIR)
    ckpt = load_checkpoint(path, task=args.task, model_kind=args.model, map_location=args.device)
    model = ckpt.model.to(args.device)
    generator = torch.Generator().manual_seed(args.seed)
    metrics = evaluate_model(
        model, task, args.sequences, generator, batch_size=args.batch_size, device=args.device, **size
    )
    return {
        "task": args.task,
        "model": args.model,
        "checkpoint": str(path),
        "sequences_seen": ckpt.manifest.get("sequences_seen"),
        "seed": args.seed,
        "sequences": args.sequences,
        "size": size,
        "bit_errors": metrics["bit_errors"],
        "bit_error_rate": metrics["bit_error_rate"],
        "cost_bits": metrics["cost_bits"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.sequences < 1 or args.batch_size < 1:
        parser.error("--sequences and --batch-size must be positive")
    try:
        result = evaluate(args)
    except (CheckpointError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        size = ", ".join(f"{k}={v}" for k, v in result["size"].items()) or "training range"
        print(f"task: {result['task']}  model: {result['model']}  size: {size}")
        print(f"checkpoint: {result['checkpoint']} ({result['sequences_seen']} training sequences)")
        print(f"sequences: {result['sequences']} (seed {result['seed']})")
        print(f"bit errors per sequence: {result['bit_errors']:.4f}")
        print(f"bit error rate: {result['bit_error_rate']:.6f}")
        print(f"cross-entropy: {result['cost_bits']:.4f} bits/sequence")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
