"""Train a model on one of the tasks (``neural_memory.tasks``): ``python -m neural_memory.train``.

Example (the tiny preset trains in seconds)::

    python -m neural_memory.train --task copy --model lstm --preset tiny --out runs/demo

writes ``runs/demo/copy-lstm.pt`` (weights and resume state), ``copy-lstm.json`` (the manifest)
and ``copy-lstm.csv`` (the learning curve: sequences, cost_bits, bit_errors, wall_seconds).
A progress bar goes to stderr; stdout gets a few plain ``key: value`` lines (the run, the files
and the final metrics on fresh sequences). ``--resume`` continues an interrupted run from its
last checkpoint and ends with exactly the weights an uninterrupted run would have.

Defaults: the model preset is the one named after the task for the NTM (the paper's, or for
``multi_copy`` the copy NTM with 16 rows), ``multi_copy`` for the DNC on that task, and
otherwise ``small`` (see ``neural_memory.training.default_preset``); the recipe is
``<task>-<model>`` (the paper's learning rate -- for ``multi_copy``, copy's -- RMSProp with
momentum 0.9, gradients clipped to [-10, 10]) or ``tiny`` with the tiny preset. Every
field of the recipe can be overridden by a flag. The model's input and output sizes always come
from the task.

A bad argument or configuration (an unknown preset or recipe, a value a config refuses, a
``--set`` that does not parse, a device torch cannot use here, a ``--resume`` that finds no
matching run in ``--out``) is answered with one ``error: ...`` line on stderr and exit status 2,
before any training. Argument syntax errors (an unknown flag, a number that does not parse) are
argparse's: the usage, then ``python -m neural_memory.train: error: ...``, status 2. A run that
diverges (a non-finite loss) ends with one ``error: training diverged: ...`` line, status 1.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import torch

from neural_memory.checkpoint import CheckpointError
from neural_memory.ntm.fused import check_device, check_supported
from neural_memory.registry import MODEL_KINDS
from neural_memory.tasks import TASKS, get_task
from neural_memory.training import (
    TrainConfig,
    default_preset,
    default_recipe,
    model_config_for,
    run_name,
    run_training,
)

#: ``--seed`` seeds torch's generators, which take at most 64 bits; the evaluation data use
#: ``seed + 1_000_003``, so the seed is kept to 63 bits.
MAX_SEED = 2**63 - 1


def _optional_float(text: str) -> float | None:
    """A number, or ``none``/``off``/``0`` for None (an option switched off)."""
    if text.lower() in ("none", "off", "0"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'none', got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m neural_memory.train",
        description="Train an NTM, a DNC or the LSTM baseline on a task of neural_memory.tasks.",
    )
    p.add_argument("--task", required=True, choices=sorted(TASKS))
    p.add_argument("--model", required=True, choices=MODEL_KINDS)
    p.add_argument("--preset", help="model preset (default: the task's for ntm, and for dnc on "
                                     "multi_copy; else 'small')")
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
                   help="NTM: run the fused C++ unroll (several times as fast to train on a CPU; "
                        "compiled on first use)")
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
    g.add_argument("--curriculum-sequences", type=int, help="length of the curriculum (0: none)")
    g.add_argument("--curriculum-start", type=float)
    g.add_argument("--log-every", type=int, help="sequences between learning-curve rows")
    g.add_argument("--checkpoint-every", type=int, help="sequences between checkpoints")
    g.add_argument("--eval-sequences", type=int, help="fresh sequences for the final metrics")
    g.add_argument("--lr-drop-below", type=_optional_float,
                   help="multiply the learning rate by --lr-drop-factor once, when the running mean "
                        "of the training bit errors per sequence over the last --lr-drop-window "
                        "sequences first falls below this ('none': never)")
    g.add_argument("--lr-drop-factor", type=float)
    g.add_argument("--lr-drop-window", type=int, help="sequences in the drop's running mean")
    g.add_argument("--fused-optimizer", action=argparse.BooleanOptionalAction,
                   help="Adam: PyTorch's fused implementation (the same update, faster per step)")
    g.add_argument("--hard-tau-start", type=float, help="hard heads: first temperature")
    g.add_argument("--hard-tau-end", type=float, help="hard heads: final temperature")
    g.add_argument("--hard-mix-start", type=float,
                   help="hard heads: first hard/soft mix (1: hard from the start, 0: start soft)")
    g.add_argument("--hard-anneal-sequences", type=int,
                   help="hard heads: sequences over which temperature and mix are annealed")
    return p


def override_values(items: Sequence[str], config: Any, flag: str = "--set") -> dict:
    """``["field=value", ...]`` as typed overrides of a config dataclass's fields, each value
    read by its field's annotation: ``true``/``false`` for a bool, an integer, a number (``none``
    too where the field may be None) or a string. Raises ValueError naming the option
    (``flag``), what it expected and what it got. The values themselves are checked by the
    config class when the overrides are applied."""
    kinds = {f.name: set(re.findall(r"\w+", str(f.type))) for f in fields(config)}
    cls = type(config).__name__
    out: dict[str, Any] = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep:
            raise ValueError(f"{flag} expects FIELD=VALUE, got {item!r}")
        if name not in kinds:
            raise ValueError(
                f"{flag} expects a field of {cls} (one of {', '.join(sorted(kinds))}), got {name!r}"
            )
        words = kinds[name]
        optional = "None" in words and "str" not in words  # "none" is a value of some strings
        if optional and text.lower() == "none":
            out[name] = None
        elif "bool" in words:
            if text.lower() not in ("true", "false"):
                raise ValueError(f"{flag} {name} expects true or false, got {text!r}")
            out[name] = text.lower() == "true"
        elif "int" in words:
            try:
                out[name] = int(text)
            except ValueError:
                raise ValueError(f"{flag} {name} expects an integer, got {text!r}") from None
        elif "float" in words:
            try:
                out[name] = float(text)
            except ValueError:
                what = "a number or none" if optional else "a number"
                raise ValueError(f"{flag} {name} expects {what}, got {text!r}") from None
        else:
            out[name] = text
    return out


def parse_overrides(items: Sequence[str], config: Any, flag: str = "--set") -> dict:
    """:func:`override_values` for scripts that stop at a bad override: the ValueError becomes
    ``SystemExit("error: <message>")`` (the message on stderr, exit status 1)."""
    try:
        return override_values(items, config, flag)
    except ValueError as err:
        raise SystemExit(f"error: {err}") from None


def recipe_from_args(args: argparse.Namespace, preset: str) -> TrainConfig:
    """The recipe (``--recipe``, or the default for the task, model and preset) with the recipe
    flags given on the command line; ValueError for an unknown recipe or a refused value."""
    recipe = TrainConfig.preset(args.recipe or default_recipe(args.task, args.model, preset))
    overrides = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if f.name in vars(args)}
    return replace(recipe, **overrides)


def check_device_arg(text: str) -> None:
    """Raise ValueError unless ``text`` names a torch device that can hold a tensor here."""
    try:
        device = torch.device(text)
    except RuntimeError:
        raise ValueError(
            f"--device expects a torch device such as cpu, cuda or cuda:1, got {text!r}"
        ) from None
    if device.type == "meta":
        raise ValueError(
            f"--device expects a device that holds data (cpu, cuda, ...), got {text!r}"
        )
    try:
        torch.zeros(1, device=device)
    except Exception as err:  # each backend has its own error for a device it lacks
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if len(reason) > 100:
            reason = reason[:100] + "..."
        raise ValueError(
            f"--device expects a device available to this torch, got {text!r} ({reason})"
        ) from None


def configure(args: argparse.Namespace) -> tuple[str, Any, TrainConfig, Path]:
    """Check the parsed arguments and build the run from them: ``(preset, model config,
    recipe, output directory)``. Every refusal is a ValueError whose message names what was
    expected and what was given."""
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads expects a positive integer, got {args.threads}")
    if not 0 <= args.seed <= MAX_SEED:
        raise ValueError(f"--seed expects an integer from 0 to 2**63 - 1, got {args.seed}")
    check_device_arg(args.device)
    task = get_task(args.task)
    preset = args.preset or default_preset(args.task, args.model)
    model_config = model_config_for(task, args.model, preset)  # ValueError: unknown preset
    if args.set:
        overrides = override_values(args.set, model_config)
        for name in ("input_size", "output_size"):
            if name in overrides and overrides[name] != getattr(model_config, name):
                raise ValueError(
                    f"--set {name}: the task {args.task} fixes it; expected "
                    f"{getattr(model_config, name)}, got {overrides[name]}"
                )
        try:
            model_config = replace(model_config, **overrides)
        except ValueError as err:
            raise ValueError(f"--set: {err}") from None
    recipe = recipe_from_args(args, preset)
    if args.fused:
        if args.model != "ntm":
            raise ValueError(f"--fused applies to the NTM only; expected --model ntm, got "
                             f"--model {args.model}")
        check_device(args.device)  # the fused unroll is CPU code
        check_supported(model_config)  # what the fused unroll implements
    out = Path(args.out or f"runs/{run_name(args.task, args.model)}")
    for flag, path in (("--out", out), ("--export", args.export)):
        if path is not None and Path(path).exists() and not Path(path).is_dir():
            raise ValueError(f"{flag} expects a directory, got the file {path}")
    return preset, model_config, recipe, out


def _error(err: BaseException | str, status: int = 2) -> int:
    """Print ``error: <message>`` on stderr as one line (a message of several lines is joined)
    and return ``status``."""
    message = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
    print(f"error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)  # syntax errors: argparse's message, exit status 2
    try:
        preset, model_config, recipe, out = configure(args)
    except ValueError as err:
        return _error(err)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    command = shlex.join(["python", "-m", "neural_memory.train", *argv])
    try:
        result = run_training(
            args.task, args.model, model_config, recipe, out, seed=args.seed,
            resume=args.resume, command=command, progress=not args.no_progress,
            device=args.device, export_dir=args.export, fused=args.fused,
            preset=preset, recipe=args.recipe or default_recipe(args.task, args.model, preset),
        )
    except CheckpointError as err:
        # --resume found no checkpoint in --out, or one of another config, recipe or seed, or
        # one without resume state, or a file that cannot be read (all refused before any
        # training); or, at the end, --export could not read the finished run back.
        return _error(err)
    except FloatingPointError as err:
        # The run diverged (a non-finite loss or gradient norm): not a bad command, so exit
        # status 1, not 2; one error line all the same, and the last checkpoint stays in --out.
        return _error(f"training diverged: {err}", status=1)
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
