"""Train a model on one of the paper's tasks: ``python -m neural_memory.train``.

Example (the tiny preset trains in seconds)::

    python -m neural_memory.train --task copy --model lstm --preset tiny --out runs/demo

writes ``runs/demo/copy-lstm.pt`` (weights and resume state), ``copy-lstm.json`` (the manifest)
and ``copy-lstm.csv`` (the learning curve: sequences, cost_bits, bit_errors, wall_seconds).
A progress bar goes to stderr; stdout gets a few plain ``key: value`` lines (the run, the files
and the final metrics on fresh sequences). ``--resume`` continues an interrupted run from its
last checkpoint and ends with exactly the weights an uninterrupted run would have.

Defaults: the model preset is the paper's for the NTM and ``small`` for the LSTM (see
``neural_memory.baselines``); the recipe is ``<task>-<model>`` (the paper's learning rate, RMSProp
with momentum 0.9, gradients clipped to [-10, 10]) or ``tiny`` with the tiny preset. Every
field of the recipe can be overridden by a flag. The model's input and output sizes always come
from the task.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from dataclasses import fields, replace

import torch

from neural_memory.checkpoint import MODEL_KINDS
from neural_memory.tasks import TASKS, get_task
from neural_memory.training import (
    TrainConfig,
    default_preset,
    default_recipe,
    model_config_for,
    run_training,
)


def _optional_float(text: str) -> float | None:
    return None if text.lower() in ("none", "off", "0") else float(text)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m neural_memory.train",
        description="Train an NTM or the LSTM baseline on a task of Graves et al. (2014).",
    )
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--model", required=True, choices=MODEL_KINDS)
    p.add_argument("--preset", help="model preset (default: the task's for ntm, 'small' for lstm)")
    p.add_argument("--recipe", help="training recipe preset (default: '<task>-<model>', or 'tiny')")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override one field of the model preset, e.g. --set learn_initial_weights=false")
    p.add_argument("--out", help="output directory (default: runs/<task>-<model>)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument("--export", metavar="DIR",
                   help="also export the final model in float16 to DIR (e.g. src/neural_memory/data/checkpoints)")
    p.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads(N) (default: torch's own)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--fused", action="store_true",
                   help="NTM: run the fused C++ unroll (3.4 to 4.5 times as fast to train on a CPU at "
                        "batch 32; compiled on first use)")
    g = p.add_argument_group("recipe overrides (default: the recipe's value)")
    g.argument_default = argparse.SUPPRESS  # a flag that is not given leaves the recipe alone
    g.add_argument("--sequences", type=int, help="training sequences in total")
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--optimizer", choices=("rmsprop", "adam"))
    g.add_argument("--momentum", type=float)
    g.add_argument("--alpha", type=float, help="RMSProp decay")
    g.add_argument("--eps", type=float)
    g.add_argument("--clip-value", type=_optional_float, help="element-wise clip ('none' to disable)")
    g.add_argument("--clip-norm", type=_optional_float, help="norm clip ('none' to disable)")
    g.add_argument("--spike-clip", type=_optional_float,
                   help="rescale the gradient to at most this multiple of the running mean of "
                        "recent gradient norms ('none' to disable)")
    g.add_argument("--weight-noise", type=_optional_float,
                   help="train through weights with Gaussian noise of this standard deviation "
                        "added afresh for every batch ('none' to disable)")
    g.add_argument("--curriculum-sequences", type=int, help="length of the curriculum (0: none)")
    g.add_argument("--curriculum-start", type=float)
    g.add_argument("--log-every", type=int, help="sequences between learning-curve rows")
    g.add_argument("--checkpoint-every", type=int, help="sequences between checkpoints")
    g.add_argument("--eval-sequences", type=int, help="fresh sequences for the final metrics")
    g.add_argument("--lr-drop-below", type=_optional_float,
                   help="multiply the learning rate by --lr-drop-factor once, when the training bit "
                        "errors per sequence first fall below this ('none': never)")
    g.add_argument("--lr-drop-factor", type=float)
    g.add_argument("--fused-optimizer", action=argparse.BooleanOptionalAction,
                   help="Adam: PyTorch's fused implementation (the same update, faster per step)")
    g.add_argument("--hard-tau-start", type=float, help="hard heads: first temperature")
    g.add_argument("--hard-tau-end", type=float, help="hard heads: final temperature")
    g.add_argument("--hard-mix-start", type=float,
                   help="hard heads: first hard/soft mix (1: hard from the start, 0: start soft)")
    g.add_argument("--hard-anneal-sequences", type=int,
                   help="hard heads: sequences over which temperature and mix are annealed")
    return p


def parse_overrides(items: Sequence[str], config, flag: str = "--set") -> dict:
    """``["field=value", ...]`` as typed overrides of a config dataclass's fields (``flag``
    names the command-line option in the errors)."""
    kinds = {f.name: f.type for f in fields(config)}
    out = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or name not in kinds:
            raise SystemExit(f"{flag} expects FIELD=VALUE with FIELD one of {sorted(kinds)}, got {item!r}")
        current = getattr(config, name)
        if isinstance(current, bool):
            if text.lower() not in ("true", "false"):
                raise SystemExit(f"{flag} {name} expects true or false, got {text!r}")
            out[name] = text.lower() == "true"
        elif isinstance(current, int):
            out[name] = int(text)
        elif isinstance(current, float) or current is None:
            out[name] = None if text.lower() == "none" else float(text)
        else:
            out[name] = text
    return out


def recipe_from_args(args: argparse.Namespace, preset: str) -> TrainConfig:
    recipe = TrainConfig.preset(args.recipe or default_recipe(args.task, args.model, preset))
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name in vars(args)}
    return replace(recipe, **overrides)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    task = get_task(args.task)
    preset = args.preset or default_preset(args.task, args.model)
    model_config = model_config_for(task, args.model, preset)
    if args.set:
        model_config = replace(model_config, **parse_overrides(args.set, model_config))
    recipe = recipe_from_args(args, preset)
    out = args.out or f"runs/{args.task}-{args.model}"
    command = shlex.join(["python", "-m", "neural_memory.train", *argv])
    result = run_training(
        args.task, args.model, model_config, recipe, out, seed=args.seed, resume=args.resume,
        command=command, progress=not args.no_progress, device=args.device, export_dir=args.export,
        fused=args.fused,
    )
    params = sum(p.numel() for p in result.model.parameters())
    print(f"run: task={args.task} model={args.model} preset={preset} parameters={params} seed={args.seed}")
    print(f"recipe: {recipe}")
    print(f"checkpoint: {result.checkpoint}")
    print(f"log: {result.log}")
    m = result.metrics
    print(
        f"final ({m['eval_sequences']} fresh sequences): cost {m['eval_cost_bits']:.4f} bits/sequence, "
        f"bit errors {m['eval_bit_errors']:.4f}/sequence, bit error rate {m['eval_bit_error_rate']:.6f}"
    )
    if result.exported is not None:
        print(f"exported: {result.exported}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
