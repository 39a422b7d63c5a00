"""Train every shipped model (Parts III and V) again from its manifest and check it on fresh data.

    python tools/reproduce.py                  # all shipped models, two processes, one core each
    python tools/reproduce.py --only copy-ntm repeat_copy-ntm --workers 1
    python tools/reproduce.py --check-only     # measure the shipped models, train nothing
    python tools/reproduce.py --table          # the table of the runs already in --out

Each model is trained by :func:`neural_memory.training.retrain_model` (the manifest's model
config, recipe, seed, number of sequences, fused unroll and thread count) into
``--out/<task>-<model>``: the NTMs first, then the LSTM baselines, then the DNCs, the longest runs of each
first (their lengths are read from the shipped learning curves). One progress bar per model shows the sequences trained and the last logged
bit errors. At the end a table gives each model's wall time and its bit errors on ``--episodes``
fresh episodes, next to the criteria of :data:`neural_memory.experiments.comparison.CRITERIA`,
and whether the retrained weights equal the shipped ones (after the shipped float16 rounding).
``--table`` prints that table for runs already in ``--out`` (from separate invocations, say),
taking each run's training time from its learning curve.
``--export DIR`` also exports every finished run to ``DIR`` (float16, as shipped).

This is a script, not a test: Part III's models alone take about two and a quarter hours of wall
time on a two-core CPU (the book's appendix, "Performance and stability", has the measured times),
and Part V's add the training times their learning curves record.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import queue
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch
from tqdm.auto import tqdm

from neural_memory.checkpoint import SHIPPED_DIR, load_checkpoint, read_csv, read_manifest
from neural_memory.experiments.comparison import check_criteria
from neural_memory.training import Callback, TrainLoop, retrain_model, run_name

TASKS = ("copy", "repeat_copy", "associative_recall", "priority_sort", "multi_copy")
KINDS = ("ntm", "lstm", "dnc")


class _Report(Callback):
    """Sends ``(name, sequences seen, last bit errors)`` to the parent at every curve row."""

    def __init__(self, name: str, channel) -> None:
        self.name, self.channel = name, channel

    def on_log_row(self, loop: TrainLoop) -> None:
        self.channel.put((self.name, loop.seen, loop.rows[-1][2]))


def _train_one(task: str, kind: str, directory: str, out: str, export: str | None,
               channel) -> tuple[str, float]:
    name = run_name(task, kind)
    start = time.perf_counter()
    retrain_model(task, kind, directory=directory, out_dir=Path(out) / name, progress=False,
                  export_dir=export, callbacks=[_Report(name, channel)])
    return name, time.perf_counter() - start


def shipped_runs(directory: Path, only: Sequence[str] = ()) -> list[tuple[str, str, int, float]]:
    """``(task, kind, sequences, shipped wall seconds)`` of every shipped model (or ``only``
    those named ``<task>-<model>``): the NTMs first, the longest shipped run first in each kind."""
    runs = []
    for task in TASKS:
        for kind in KINDS:
            name = run_name(task, kind)
            if only and name not in only:
                continue
            path = directory / f"{name}.pt"
            if not path.exists():
                continue
            rows = read_csv(path.with_suffix(".csv")) if path.with_suffix(".csv").exists() else []
            seconds = float(rows[-1]["wall_seconds"]) if rows else 0.0
            runs.append((task, kind, read_manifest(path)["sequences_seen"], seconds))
    unknown = sorted(set(only) - {run_name(t, k) for t, k, _, _ in runs})
    if unknown:
        raise SystemExit(f"error: no shipped model named {', '.join(unknown)} in {directory}")
    return sorted(runs, key=lambda r: (KINDS.index(r[1]), -r[3]))


def train_all(runs, directory: Path, out: Path, workers: int,
              export: Path | None) -> tuple[dict[str, float], dict[str, float]]:
    """Train ``runs`` in ``workers`` processes (0: here, one after another); returns the wall
    seconds of each run and the wall seconds from the start until each run was done."""
    seconds: dict[str, float] = {}
    done: dict[str, float] = {}
    start = time.perf_counter()
    if workers == 0:
        for task, kind, _, _ in runs:
            name, s = _train_one(task, kind, str(directory), str(out), export and str(export), _Quiet())
            seconds[name], done[name] = s, time.perf_counter() - start
        return seconds, done
    bars = {run_name(t, k): tqdm(total=n, desc=f"{run_name(t, k):>24}", unit="seq", position=i,
                                 file=sys.stderr, dynamic_ncols=True, leave=True)
            for i, (t, k, n, _) in enumerate(runs)}
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager, ProcessPoolExecutor(workers, mp_context=context) as pool:
        channel = manager.Queue()
        futures = [pool.submit(_train_one, t, k, str(directory), str(out),
                               export and str(export), channel) for t, k, _, _ in runs]
        pending = set(futures)
        while pending:
            for f in [f for f in pending if f.done()]:
                pending.discard(f)
                name, s = f.result()  # a failed run raises here
                seconds[name], done[name] = s, time.perf_counter() - start
                bars[name].update(bars[name].total - bars[name].n)
            try:
                name, seen, errors = channel.get(timeout=1.0)
            except queue.Empty:
                continue
            bars[name].update(seen - bars[name].n)
            bars[name].set_postfix(errors=f"{errors:.2f}")
    for bar in bars.values():
        bar.close()
    return seconds, done


class _Quiet:
    """A channel that drops what it is sent (runs in this process need no progress relay)."""

    def put(self, item: object) -> None:
        pass


def same_as_shipped(run: torch.nn.Module, shipped: torch.nn.Module) -> bool:
    """Whether a retrained model's weights equal the shipped ones after the float16 rounding
    that exporting applies."""
    a, b = shipped.state_dict(), run.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k].half().float()) for k in a)


def curve_seconds(runs, out: Path) -> dict[str, float]:
    """Each finished run's training wall time, the last ``wall_seconds`` of its curve in
    ``out/<name>/<name>.csv``."""
    seconds = {}
    for task, kind, _, _ in runs:
        name = run_name(task, kind)
        path = out / name / f"{name}.csv"
        if not path.exists():
            raise SystemExit(f"error: no run {name} in {out} (train it first, or leave it out of --only)")
        seconds[name] = float(read_csv(path)[-1]["wall_seconds"])
    return seconds


def report(runs, models_dir: Path, seconds: dict[str, float], episodes: int, nested: bool,
           shipped_dir: Path | None = None) -> str:
    """The table: each model's wall time, sequences and fresh-data figures against the criteria.
    The models are ``models_dir/<name>.pt``, or with ``nested`` ``models_dir/<name>/<name>.pt``
    (the runs' folders). With ``shipped_dir`` a last column says whether each model's weights
    are the shipped ones (see :func:`same_as_shipped`)."""
    lines = [f"{'model':>24} {'minutes':>8} {'sequences':>10}  {'criterion':<24} {'value':>9} "
             f"{'at most':>8}  met" + ("  as shipped" if shipped_dir else "")]
    for task, kind, sequences, _ in runs:
        name = run_name(task, kind)
        model = load_checkpoint((models_dir / name if nested else models_dir) / f"{name}.pt").model
        minutes = f"{seconds[name] / 60:.1f}" if name in seconds else "-"
        same = ""
        if shipped_dir:
            shipped = load_checkpoint(shipped_dir / f"{name}.pt").model
            same = "  " + ("yes" if same_as_shipped(model, shipped) else "NO")
        for row in check_criteria(model, task, episodes):
            lines.append(f"{name:>24} {minutes:>8} {sequences:>10}  {row['label'] + ' ' + row['metric']:<24.24} "
                         f"{row['value']:>9.4f} {row['at_most']:>8}  {'yes' if row['met'] else 'NO':<3}{same}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--directory", type=Path, default=SHIPPED_DIR,
                   help="where the shipped manifests are (default: the package's)")
    p.add_argument("--out", type=Path, default=Path("runs/reproduce"), help="where the runs go")
    p.add_argument("--only", nargs="+", default=(), metavar="TASK-MODEL",
                   help="only these models, e.g. copy-ntm priority_sort-lstm")
    p.add_argument("--workers", type=int, default=2, help="training processes (0: this one)")
    p.add_argument("--episodes", type=int, default=1000, help="fresh episodes per criterion")
    p.add_argument("--export", type=Path, help="also export every finished run here")
    p.add_argument("--check-only", action="store_true", help="measure the shipped models only")
    p.add_argument("--table", action="store_true",
                   help="train nothing; the table of the runs already in --out")
    args = p.parse_args(argv)
    if args.workers < 0 or args.episodes < 1:
        p.error("--workers must be >= 0 and --episodes >= 1")
    if args.check_only and args.table:
        p.error("--check-only and --table exclude each other")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # each spawned process: one core
    torch.set_num_threads(1)
    runs = shipped_runs(args.directory, args.only)
    seconds: dict[str, float] = {}
    if args.table:
        seconds = curve_seconds(runs, args.out)
    elif not args.check_only:
        seconds, done = train_all(runs, args.directory, args.out, args.workers, args.export)
        for kind in KINDS:
            finished = [t for name, t in done.items() if name.endswith(f"-{kind}")]
            if finished:
                print(f"every {kind.upper()} trained after {max(finished) / 60:.1f} minutes of wall time")
    if args.check_only:
        print(report(runs, args.directory, seconds, args.episodes, nested=False))
    else:
        print(report(runs, args.out, seconds, args.episodes, nested=True, shipped_dir=args.directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
