"""Running a sweep's jobs: one after another in this process, or in parallel on Dask.

A *job* is a pair ``(key, run)``: a unique name and a function of no arguments that does one
run (trains one model, say) and returns its result. :func:`run_jobs` runs a list of jobs

* in this process, one after another (``workers=0``): the reference, and what needs no Dask;
* on a local Dask cluster started for the sweep (``workers=N``, by default one per core): ``N``
  worker processes, each running one job at a time;
* on an existing Dask cluster (``scheduler="tcp://host:8786"``, or a connected
  ``distributed.Client``), whose workers must have this package installed and see the folders
  the jobs write to at the same paths.

Each job given to Dask runs with ``threads`` torch threads (one by default, with
``OMP_NUM_THREADS`` set to match in the workers of a local cluster), and one job at a time in a
worker process even when the worker has more threads, so a run gives the same numbers as the
same run done one after another in a process with that many threads. Results are handed to
``on_result(key, result)`` in this process as they complete, in whatever order they finish.
A job that raises stops the sweep with a :class:`SweepError` naming its key, after the results
of every other job that had finished by then have been handed over.

Dask pickles each job with cloudpickle, so a job may be a closure or a lambda; the functions it
calls must be importable in the workers (the package's own functions are). A local cluster's
workers are new processes (``spawn``) that import the main module: a script that starts one
needs the ``if __name__ == "__main__":`` guard. Several sweeps can share one cluster::

    with dask_client(workers=4) as client:
        for task in tasks:
            run_jobs(jobs_of(task), scheduler=client, on_result=store)

The experiment commands take ``--workers``, ``--scheduler`` and ``--threads``
(:func:`add_sweep_arguments`, :func:`sweep_options`), and so can any other script::

    parser = argparse.ArgumentParser()
    add_sweep_arguments(parser)
    args = parser.parse_args()
    results = run_jobs(jobs, **sweep_options(parser, args), on_result=print)
"""

from __future__ import annotations

import argparse
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

__all__ = [
    "SweepError",
    "add_sweep_arguments",
    "dask_client",
    "default_workers",
    "describe_runner",
    "run_jobs",
    "sweep_options",
]

T = TypeVar("T")

#: Held while a job runs in a Dask worker: a worker with several threads still runs one job at a
#: time, since a run sets process-wide state (the torch seed, the number of torch threads).
_RUN_LOCK = threading.Lock()


class SweepError(RuntimeError):
    """A job of a sweep raised; ``key`` names it, and the job's exception is the ``__cause__``."""

    def __init__(self, key: str, cause: BaseException):
        self.key = key
        super().__init__(f"run {key!r} failed: {type(cause).__name__}: {cause}")


def default_workers(threads: int = 1) -> int:
    """The default size of a local cluster: one worker per core, ``cores // threads`` when each
    run uses ``threads`` torch threads (at least one)."""
    return max(1, (os.cpu_count() or 1) // threads)


def describe_runner(workers: int | None = None, scheduler: Any = None, threads: int = 1) -> str:
    """Where :func:`run_jobs` with these arguments runs the jobs, in words."""
    if scheduler is not None:
        address = scheduler if isinstance(scheduler, str) else scheduler.scheduler.address
        return f"on the Dask cluster at {address}, {threads} torch thread(s) per run"
    if workers == 0:
        return "one after another in this process"
    n = default_workers(threads) if workers is None else workers
    return f"on a local Dask cluster of {n} worker process(es), {threads} torch thread(s) each"


def _run_in_worker(run: Callable[[], T], threads: int) -> T:
    """What a Dask worker calls: the job with ``threads`` torch threads, one job at a time."""
    import torch

    with _RUN_LOCK:
        torch.set_num_threads(threads)
        return run()


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None,
                threads: int = 1) -> Iterator[Any]:
    """A ``distributed.Client`` for the duration of the ``with`` block: connected to the cluster
    at ``scheduler``, or else to a local cluster started here and closed at the end, of
    ``workers`` single-threaded worker processes (``None``: one per core,
    :func:`default_workers`) with ``OMP_NUM_THREADS=threads``."""
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler is not None:
        with Client(scheduler) as client:
            yield client
        return
    n = default_workers(threads) if workers is None else workers
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"a local cluster needs workers >= 1; got {workers!r}")
    # OMP_NUM_THREADS must be set before a worker process starts (and imports torch).
    with dask.config.set({"distributed.nanny.pre-spawn-environ.OMP_NUM_THREADS": str(threads)}):
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=None, env={"OMP_NUM_THREADS": str(threads)})
    with cluster, Client(cluster) as client:
        yield client


def run_jobs(
    jobs: Iterable[tuple[str, Callable[[], T]]],
    *,
    workers: int | None = None,
    scheduler: Any = None,
    threads: int = 1,
    on_result: Callable[[str, T], Any] | None = None,
) -> dict[str, T]:
    """Run every ``(key, run)`` job and return ``{key: run()}``.

    ``workers``: ``0`` runs the jobs one after another in this process, with this process's
    torch threads (Dask is not imported); ``N >= 1`` starts a local Dask cluster of ``N``
    single-threaded worker processes (no more than there are jobs) for the sweep and closes it
    afterwards; ``None`` (the default) is one worker per core (:func:`default_workers`).
    ``scheduler``: the address of an existing Dask cluster to send the jobs to instead, or a
    ``distributed.Client`` already connected to one (``workers`` is then not used).
    ``threads``: the torch threads of each run in a worker. ``on_result(key, result)`` is called
    in this process as each job finishes.

    A job that raises (or whose worker dies) raises :class:`SweepError` naming its key, once the
    results of the jobs finished by then have gone to ``on_result``; the jobs still queued are
    cancelled.
    """
    jobs = list(jobs)
    keys = [key for key, _ in jobs]
    if len(set(keys)) != len(keys):
        repeated = sorted(k for k in set(keys) if keys.count(k) > 1)
        raise ValueError(f"the jobs' keys must be unique; repeated: {repeated}")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1; got {threads!r}")
    if scheduler is None and workers is not None and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ValueError(f"workers must be an integer >= 0 or None; got {workers!r}")
    results: dict[str, T] = {}
    if not jobs:
        return results
    if scheduler is None and workers == 0:
        for key, run in jobs:
            try:
                results[key] = run()
            except Exception as exc:
                raise SweepError(key, exc) from exc
            if on_result is not None:
                on_result(key, results[key])
        return results

    if scheduler is not None and not isinstance(scheduler, str):
        return _run_on(scheduler, jobs, threads, on_result)  # a connected client
    if scheduler is None:  # no more workers than jobs
        workers = min(default_workers(threads) if workers is None else workers, len(jobs))
    with dask_client(workers, scheduler, threads) as client:
        return _run_on(client, jobs, threads, on_result)


def _run_on(client: Any, jobs: list[tuple[str, Callable[[], T]]], threads: int,
            on_result: Callable[[str, T], Any] | None) -> dict[str, T]:
    """Submit every job to ``client`` and gather the results as they complete."""
    from dask.distributed import as_completed

    futures = {}
    for key, run in jobs:
        # A fresh Dask key per submission: two sweeps on one cluster may share job keys.
        future = client.submit(_run_in_worker, run, threads, key=f"{key}-{uuid.uuid4().hex}",
                               pure=False)
        futures[future] = key
    results: dict[str, T] = {}

    def record(future: Any) -> None:
        key = futures[future]
        results[key] = future.result()
        if on_result is not None:
            on_result(key, results[key])

    for future in as_completed(futures):
        if future.status == "finished":
            record(future)
            continue
        key = futures[future]
        try:
            exc = future.exception()
        except Exception as cancelled:  # the future was cancelled (e.g. the cluster went away)
            exc = cancelled
        client.cancel([f for f in futures if f.status not in ("finished", "error")])
        for other in futures:
            if other.status == "finished" and futures[other] not in results:
                record(other)
        raise SweepError(key, exc) from exc
    return results


def add_sweep_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--workers``, ``--scheduler`` and ``--threads`` to a command's parser."""
    parser.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="runs at a time, each in its own process of a local Dask cluster (default: one "
             "per core, cores // --threads); 0 runs them one after another in this process")
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDRESS",
        help="send the runs to the existing Dask cluster whose scheduler is at ADDRESS "
             "(e.g. tcp://host:8786) instead of starting a local one")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of each run (default 1)")


def sweep_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, Any]:
    """``run_jobs``' ``workers``, ``scheduler`` and ``threads`` from the parsed arguments of
    :func:`add_sweep_arguments` (a bad combination ends the command via ``parser.error``)."""
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    if args.scheduler is not None and args.workers is not None:
        parser.error("--workers sizes a local cluster; it cannot be combined with --scheduler")
    workers = default_workers(args.threads) if args.workers is None else args.workers
    return {"workers": workers, "scheduler": args.scheduler, "threads": args.threads}
