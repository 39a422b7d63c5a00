"""The trained models shipped with the package: they load, and they do what the book says.

Fresh random sequences, a few hundred per check (``python -m neural_memory.evaluate`` measures
the same quantities on more). The copy, repeat copy and associative recall NTMs are held to
Part III's in-range targets, the priority sort NTM to its criterion and to the paper's program
(write rows that follow the priority). The DNCs of Part V were trained like their task's NTM;
the copy DNC is held to both of the copy NTM's targets (lengths 20 and 40), the associative
recall DNC to its in-range target, and the multi-copy DNC to its target and against its NTM.
"""

from __future__ import annotations

import json

import pytest
import torch

from neural_memory.checkpoint import SHIPPED_DIR, load_checkpoint
from neural_memory.tasks import get_task
from neural_memory.training import evaluate_model

TASKS = ("copy", "repeat_copy", "associative_recall", "priority_sort")


def shipped(task: str, kind: str):
    path = SHIPPED_DIR / f"{task}-{kind}.pt"
    if not path.exists():
        pytest.skip(f"no shipped checkpoint {path.name}")
    return load_checkpoint(path, task=task, model_kind=kind)


SHIPPED = ([(t, k) for t in TASKS for k in ("ntm", "lstm")]
           + [(t, "dnc") for t in (*TASKS, "multi_copy")] + [("multi_copy", "ntm")])


@pytest.mark.parametrize(("task", "kind"), SHIPPED)
def test_shipped_files_load_and_are_consistent(task: str, kind: str) -> None:
    ck = shipped(task, kind)
    manifest = json.loads((SHIPPED_DIR / f"{task}-{kind}.json").read_text())
    assert manifest["task"] == task and manifest["model_kind"] == kind
    assert manifest["command"].startswith("python -m neural_memory.train")
    log = (SHIPPED_DIR / f"{task}-{kind}.csv").read_text().splitlines()
    assert log[0] == "sequences,cost_bits,bit_errors,wall_seconds"
    assert int(float(log[-1].split(",")[0])) == manifest["sequences_seen"]
    t = get_task(task)
    x, _, _ = t.sample(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = ck.model(x)
    assert out.shape == (2, x.shape[1], t.output_size) and torch.isfinite(out).all()


def errors(task: str, kind: str, sequences: int, **size) -> dict:
    # in the training range one size is drawn per batch: batches of 8 give a mix of sizes
    ck = shipped(task, kind)
    return evaluate_model(ck.model, get_task(task), sequences, torch.Generator().manual_seed(2024),
                          batch_size=50 if size else 8, **size)


def test_copy_ntm_meets_its_targets() -> None:
    # Part III's targets: <= 0.05 bit errors per sequence at length 20, BER <= 1% at length 40
    assert errors("copy", "ntm", 300, length=20)["bit_errors"] <= 0.05
    assert errors("copy", "ntm", 200, length=40)["bit_error_rate"] <= 0.01


def test_copy_ntm_beats_lstm_at_the_longest_trained_length() -> None:
    assert errors("copy", "ntm", 200, length=20)["bit_errors"] < errors("copy", "lstm", 200, length=20)["bit_errors"]


@pytest.mark.parametrize("task", TASKS)
def test_ntm_beats_lstm_trained_on_as_many_sequences(task: str) -> None:
    ntm, lstm = errors(task, "ntm", 200), errors(task, "lstm", 200)
    assert shipped(task, "ntm").manifest["sequences_seen"] == shipped(task, "lstm").manifest["sequences_seen"]
    assert ntm["bit_error_rate"] < lstm["bit_error_rate"]


def test_repeat_copy_ntm_meets_its_target() -> None:
    # Part III's target: <= 0.1 bit errors per sequence in the training range (lengths and
    # repeat counts 1-10)
    assert errors("repeat_copy", "ntm", 200)["bit_errors"] <= 0.1


def test_associative_recall_ntm_meets_its_target() -> None:
    # Part III's target: <= 0.1 bit errors per sequence with 2-6 items (the training range)
    assert errors("associative_recall", "ntm", 300)["bit_errors"] <= 0.1


def test_priority_sort_ntm_sorts() -> None:
    # the criterion on 1,000 fresh episodes, and the paper's program: write rows follow the priority
    from neural_memory.experiments.comparison import check_criteria
    from neural_memory.experiments.programs import sort_statistics

    model = shipped("priority_sort", "ntm").model
    assert all(row["met"] for row in check_criteria(model, "priority_sort", episodes=1000))
    stats = sort_statistics(model, episodes=50, seed=3)
    assert abs(stats.fits[stats.best].spearman) >= 0.9


@pytest.mark.parametrize("task", (*TASKS, "multi_copy"))
def test_dnc_trained_like_its_ntm(task: str) -> None:
    # the same recipe, number of sequences and seed as the task's shipped NTM
    from neural_memory.experiments.comparison import training_differences

    assert training_differences(shipped(task, "ntm").manifest, shipped(task, "dnc").manifest) == []


def test_copy_dnc_meets_the_copy_ntms_targets() -> None:
    # <= 0.05 bit errors per sequence at length 20 and a bit error rate <= 0.01 at length 40
    assert errors("copy", "dnc", 300, length=20)["bit_errors"] <= 0.05
    assert errors("copy", "dnc", 300, length=40)["bit_error_rate"] <= 0.01


def test_associative_recall_dnc_meets_its_target() -> None:
    assert errors("associative_recall", "dnc", 300)["bit_errors"] <= 0.1


def test_multi_copy_dnc_meets_the_target_and_beats_the_ntm() -> None:
    # <= 0.1 bit errors per sequence in the training range (1-6 episodes of length 1-8 through a
    # memory of 16 rows); the NTM trained with the same recipe makes more
    dnc, ntm = errors("multi_copy", "dnc", 400), errors("multi_copy", "ntm", 400)
    assert dnc["bit_errors"] <= 0.1 < ntm["bit_errors"]
