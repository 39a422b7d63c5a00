"""What the experiments share: where they ran (code version, machine), and their stored runs
(``summary.json`` plus one learning curve per run) with resumption of an interrupted command."""

from __future__ import annotations

import json
import platform
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

from neural_memory.checkpoint import atomic_write_text, read_csv
from neural_memory.experiments.sweep import describe_runner, run_jobs
from neural_memory.training import LOG_COLUMNS

__all__ = ["STORED_RESULTS", "code_version", "load_summary", "machine_description", "run_missing"]

#: The book's stored experiment runs, shipped inside the package so that a plain install (as on
#: Colab) has them: ``ablation/`` (chapter 27) and ``hard/<task>/`` (Part IV).
STORED_RESULTS = Path(__file__).resolve().parents[1] / "data" / "results"


def code_version() -> str:
    """The short git commit of the checkout the code runs from, with ``+uncommitted`` when the
    package's source differs from it, or ``"unknown"`` outside a git checkout."""
    here = Path(__file__).parent
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=here)
        dirty = subprocess.run(["git", "status", "--porcelain", "--", str(here.parent)],
                               capture_output=True, text=True, check=True, cwd=here)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip() + ("+uncommitted" if dirty.stdout.strip() else "")


def machine_description() -> str:
    """CPU architecture, torch threads and Python version, in one line."""
    return (f"{platform.machine()} {platform.processor() or platform.system()}, "
            f"{torch.get_num_threads()} torch thread(s), python {platform.python_version()}")


def run_missing(
    out_dir: str | Path,
    budget: int,
    seeds: Iterable[int],
    header: Callable[[list[int]], dict[str, Any]],
    jobs: Iterable[tuple[str, Callable[[], dict[str, Any]]]],
    describe: Callable[[str, dict[str, Any]], str],
    *,
    workers: int | None = 0,
    scheduler: Any = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Run the ``(key, run)`` jobs whose key is not yet stored in ``out_dir/summary.json``.

    The summary is ``header(all seeds) + {"runs": {key: result}}``; it is rewritten atomically
    after every run (each run writes its own curve ``out_dir/<key>.csv``), so an interrupted
    command resumes where it stopped. A summary made with another budget is refused.
    ``describe(key, result)`` is the line printed after each run.

    The runs go through :func:`~neural_memory.experiments.sweep.run_jobs`: by default
    (``workers=0``) one after another in this process; ``workers=N`` (``None``: one per core) on
    a local Dask cluster, ``scheduler`` (an address or a ``distributed.Client``) on an existing
    one, each run with ``threads`` torch threads; the summary is then rewritten as each run
    completes, in whatever order. A run that raises ends the command with a
    :class:`~neural_memory.experiments.sweep.SweepError` naming it; the runs finished by then
    stay in the summary.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    runs = summary.get("runs", {})
    if runs and summary.get("budget_sequences") != budget:
        raise ValueError(f"{summary_path} holds runs with a budget of "
                         f"{summary.get('budget_sequences')} sequences, not {budget}; use another --out")
    all_seeds = sorted(set(summary.get("seeds", [])) | set(seeds))
    summary = {**header(all_seeds), "runs": runs}
    todo = [(key, run) for key, run in jobs
            if not (key in runs and (out / f"{key}.csv").exists())]

    def record(key: str, result: dict[str, Any]) -> None:
        runs[key] = result
        summary["runs"] = dict(sorted(runs.items()))
        atomic_write_text(summary_path, json.dumps(summary, indent=1) + "\n")
        print(describe(key, result), flush=True)

    if todo and (workers != 0 or scheduler is not None):
        print(f"{len(todo)} run(s) {describe_runner(workers, scheduler, threads)}", flush=True)
    run_jobs(todo, workers=workers, scheduler=scheduler, threads=threads, on_result=record)
    return summary


def load_summary(out_dir: str | Path, command: str) -> tuple[dict[str, Any], dict[str, list[dict[str, float]]]]:
    """A stored experiment: ``(summary, curves)``, ``curves[key]`` the rows of ``<key>.csv``.
    ``command`` (the one that makes the results) goes into the error when there are none."""
    out = Path(out_dir)
    summary_path = out / "summary.json"
    if not summary_path.exists():
        raise FileNotFoundError(f"no results in {out} (expected {summary_path}); run {command}")
    summary = json.loads(summary_path.read_text())
    curves = {}
    for key in summary["runs"]:
        rows = read_csv(out / f"{key}.csv")
        curves[key] = [{c: float(r[c]) for c in LOG_COLUMNS} for r in rows]
    return summary, curves
