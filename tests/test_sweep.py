"""Sweeps on Dask: a local cluster gives the same runs, bit for bit, as the same sweep in this
process; an interrupted sweep runs only what is missing; a failing run names its key."""

from __future__ import annotations

import json
import time

import pytest
import torch

from neural_memory.experiments import ablation
from neural_memory.experiments.common import run_missing
from neural_memory.experiments.sweep import (
    SweepError,
    add_sweep_arguments,
    dask_client,
    run_jobs,
    sweep_options,
)

pytest.importorskip("dask.distributed")

SEEDS = [0, 1]
VARIANTS = ["baseline", "no_mealy_output"]
BUDGET = 48  # three batches of 16: the runs really train


def _header(all_seeds):
    return {"command": "test", "budget_sequences": BUDGET, "seeds": all_seeds}


def _ablation_job(out_dir, variant, seed):
    """A job of the ablation's sweep, as its ``run_all`` builds it: a closure over ``run_one``."""

    def run():
        result = ablation.run_one(variant, seed, out_dir, sequences=BUDGET)
        return {k: v for k, v in result.items() if k != "rows"}

    return ablation.run_name(variant, seed), run


def _describe(key, result):
    return f"{key} {result['eval_bit_errors']}"


def _without_wall_time(out_dir):
    """The stored summary and curves of a sweep, less the wall-clock times (which vary)."""
    summary, curves = ablation.load_results(out_dir)
    runs = {k: {f: v for f, v in r.items() if f != "wall_seconds"} for k, r in summary["runs"].items()}
    header = {k: v for k, v in summary.items() if k != "runs"}
    curves = {k: [{c: v for c, v in row.items() if c != "wall_seconds"} for row in rows]
              for k, rows in curves.items()}
    return header, runs, curves


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The sweep run one after another in this process, with one torch thread."""
    out = tmp_path_factory.mktemp("reference")
    torch.set_num_threads(1)
    ablation.run_all(SEEDS, BUDGET, out, "test", VARIANTS, workers=0)
    return _without_wall_time(out)


@pytest.fixture(scope="module")
def client():
    """A client of a two-worker local Dask cluster (one torch thread per worker process), started
    as ``run_jobs(workers=2)`` starts one, and shared by the tests (a cluster takes seconds to
    start)."""
    with dask_client(workers=2) as c:
        assert len(c.scheduler_info()["workers"]) == 2
        yield c


def test_a_local_cluster_sweep_equals_the_sequential_one(tmp_path, reference, client):
    parallel = ablation.run_all(SEEDS, BUDGET, tmp_path, "test", VARIANTS, scheduler=client)
    assert sorted(parallel["runs"]) == [f"{v}-seed{s}" for v in VARIANTS for s in SEEDS]
    assert list(json.loads((tmp_path / "summary.json").read_text())["runs"]) == sorted(parallel["runs"])
    header, runs, curves = _without_wall_time(tmp_path)
    assert (header, runs, curves) == reference  # every float of every run and curve row, exactly
    assert all(r["sequences"] == BUDGET for r in runs.values())
    assert runs["baseline-seed0"] != runs["no_mealy_output-seed0"]  # the runs differ
    assert len(curves["baseline-seed0"]) == 1


def test_an_interrupted_sweep_runs_only_the_missing_runs(tmp_path, client, reference):
    torch.set_num_threads(1)
    # An interrupted sweep: seed 0 done, seed 1 not. A stored run's job must not run again.
    out = tmp_path / "resumed"
    ablation.run_all([0], BUDGET, out, "test", VARIANTS)

    def must_not_run():
        raise AssertionError("a stored run ran again")

    jobs = [(key, must_not_run) if s == 0 else (key, run)
            for s in SEEDS for v in VARIANTS for key, run in [_ablation_job(out, v, s)]]
    summary = run_missing(out, BUDGET, SEEDS, lambda seeds: ablation._header(seeds, BUDGET, "test"),
                          jobs, _describe, scheduler=client.scheduler.address)
    assert sorted(summary["runs"]) == [f"{v}-seed{s}" for v in VARIANTS for s in SEEDS]
    assert summary["seeds"] == SEEDS
    assert _without_wall_time(out) == reference
    # Nothing missing: nothing runs, and no cluster is needed.
    again = run_missing(out, BUDGET, SEEDS, _header, [(k, must_not_run) for k, _ in jobs], _describe,
                        scheduler="tcp://127.0.0.1:1")
    assert again["runs"] == summary["runs"]


def test_a_failing_run_names_its_key_and_keeps_the_finished_ones(tmp_path, client):
    out = tmp_path / "out"

    def good():
        (out / "good-seed0.csv").write_text("sequences,cost_bits,bit_errors,wall_seconds\n")
        return {"eval_bit_errors": 0.0}

    def bad():
        time.sleep(1.0)  # let the good run finish first
        raise ValueError("the loss went to nan")

    jobs = [("good-seed0", good), ("bad-seed0", bad)]
    with pytest.raises(SweepError, match=r"'bad-seed0' failed: ValueError: the loss went to nan") as info:
        run_missing(out, BUDGET, [0], _header, jobs, _describe, scheduler=client)
    assert info.value.key == "bad-seed0" and isinstance(info.value.__cause__, ValueError)
    assert list(json.loads((out / "summary.json").read_text())["runs"]) == ["good-seed0"]
    # The same in this process, without Dask.
    with pytest.raises(SweepError, match="'bad-seed0' failed"):
        run_jobs([("bad-seed0", lambda: 1 / 0)], workers=0)


def test_jobs_run_with_one_torch_thread_in_the_workers(client):
    import os

    def threads():
        return torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")

    seen = run_jobs([(f"probe{i}", threads) for i in range(4)], scheduler=client)
    assert set(seen.values()) == {(1, "1")}
    with pytest.raises(ValueError, match="unique"):
        run_jobs([("a", threads), ("a", threads)], workers=0)


def test_sweep_arguments():
    import argparse

    def parse(*argv):
        parser = argparse.ArgumentParser()
        add_sweep_arguments(parser)
        return sweep_options(parser, parser.parse_args(list(argv)))

    assert parse("--workers", "0") == {"workers": 0, "scheduler": None, "threads": 1}
    assert parse()["workers"] >= 1
    assert parse("--scheduler", "tcp://h:8786")["scheduler"] == "tcp://h:8786"
    for bad in (["--workers", "-1"], ["--threads", "0"], ["--workers", "2", "--scheduler", "tcp://h:1"]):
        with pytest.raises(SystemExit):
            parse(*bad)


@pytest.mark.parametrize("experiment", ["ablation", "hard"])
def test_the_experiments_jobs_survive_cloudpickle(experiment, tmp_path, monkeypatch):
    """What Dask sends to a worker: each job of the experiment's ``run_all``, a closure over its
    ``run_one``, pickled by value with cloudpickle (``run_one`` itself by reference)."""
    import cloudpickle

    from neural_memory.experiments import hard

    module = ablation if experiment == "ablation" else hard
    captured = {}

    def capture(out_dir, budget, seeds, header, jobs, describe, **options):
        captured.update(jobs=list(jobs), options=options)
        return {}

    monkeypatch.setattr(module, "run_missing", capture)
    if experiment == "ablation":
        ablation.run_all([0, 1], BUDGET, tmp_path, "test", VARIANTS, workers=2, threads=1)
    else:
        hard.run_all("copy", [0, 1], tmp_path / "out", tmp_path / "work", "test", ["soft"],
                     budget=BUDGET, scheduler="tcp://127.0.0.1:8786")
    assert len(captured["jobs"]) == (4 if experiment == "ablation" else 2)
    assert captured["options"] == ({"workers": 2, "scheduler": None, "threads": 1}
                                   if experiment == "ablation" else
                                   {"workers": 0, "scheduler": "tcp://127.0.0.1:8786", "threads": 1})
    for _, run in captured["jobs"]:
        assert callable(cloudpickle.loads(cloudpickle.dumps(run)))
