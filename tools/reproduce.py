"""Train every shipped model of Part III again from its manifest and check it on fresh data.

    python tools/reproduce.py                  # all shipped models, two processes, one core each
    python tools/reproduce.py --only copy-ntm repeat_copy-ntm --workers 1
    python tools/reproduce.py --check-only     # measure the shipped models, train nothing

Each model is trained by :func:`neural_memory.training.retrain_model` (the manifest's model
config, recipe, seed, number of sequences, fused unroll and thread count) into
``--out/<task>-<model>``: the NTMs first, then the LSTM baselines, the longest runs of each
first (their lengths are read from the shipped learning curves). One progress bar per model shows the sequences trained and the last logged
bit errors. At the end a table gives each model's wall time and its bit errors on ``--episodes``
fresh episodes, next to the criteria of :data:`neural_memory.experiments.comparison.CRITERIA`.
``--export DIR`` also exports every finished run to ``DIR`` (float16, as shipped).

This is a script, not a test: the full run takes about an hour of wall time on a two-core CPU.
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

TASKS = ("copy", "repeat_copy", "associative_recall", "priority_sort")
KINDS = ("ntm", "lstm")


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


def report(runs, models_dir: Path, seconds: dict[str, float], episodes: int, nested: bool) -> str:
    """The table: each model's wall time, sequences and fresh-data figures against the criteria.
    The models are ``models_dir/<name>.pt``, or with ``nested`` ``models_dir/<name>/<name>.pt``
    (the runs' folders)."""
    lines = [f"{'model':>24} {'minutes':>8} {'sequences':>10}  {'criterion':<24} {'value':>9} "
             f"{'at most':>8}  met"]
    for task, kind, sequences, _ in runs:
        name = run_name(task, kind)
        model = load_checkpoint((models_dir / name if nested else models_dir) / f"{name}.pt").model
        minutes = f"{seconds[name] / 60:.1f}" if name in seconds else "-"
        for row in check_criteria(model, task, episodes):
            lines.append(f"{name:>24} {minutes:>8} {sequences:>10}  {row['label'] + ' ' + row['metric']:<24.24} "
                         f"{row['value']:>9.4f} {row['at_most']:>8}  {'yes' if row['met'] else 'NO'}")
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
    args = p.parse_args(argv)
    if args.workers < 0 or args.episodes < 1:
        p.error("--workers must be >= 0 and --episodes >= 1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # each spawned process: one core
    torch.set_num_threads(1)
    runs = shipped_runs(args.directory, args.only)
    seconds: dict[str, float] = {}
    if not args.check_only:
        seconds, done = train_all(runs, args.directory, args.out, args.workers, args.export)
        for kind in KINDS:
            finished = [t for name, t in done.items() if name.endswith(f"-{kind}")]
            if finished:
                print(f"every {kind.upper()} trained after {max(finished) / 60:.1f} minutes of wall time")
    models = args.directory if args.check_only else args.out
    print(report(runs, models, seconds, args.episodes, nested=not args.check_only))
    return 0


if __name__ == "__main__":
    sys.exit(main())
