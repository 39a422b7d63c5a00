"""The convergence benchmark's bookkeeping on a run far too short to converge (no timings)."""

import sys
from pathlib import Path

import pytest

from neural_memory.training import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from convergence import ConvergenceSettings, run_seed, summarise  # noqa: E402


@pytest.mark.parametrize("mixed", ["never", "after-drop"])
def test_an_unconverged_seed_is_reported_as_such_with_its_final_profile(mixed):
    settings = ConvergenceSettings(max_seconds=0.2, eval_sequences=4, by_length_sequences=2)
    config = TrainConfig.preset("fast-adam-settle", batch_size=4, mixed_lengths=mixed)
    lines = []
    record = run_seed(0, config, settings, {"learn_initial_weights": False}, log=lines.append)
    assert not record["converged"] and record["relapsed"] is None
    assert record["sequences_to_converge"] is None and record["lr_dropped_at"] is None
    assert record["sequences_run"] % 4 == 0 and record["sequences_run"] >= 4
    assert any("not converged within" in line for line in lines)
    profile = record["bit_errors_by_training_length"]
    assert list(profile) == list(range(1, 21))  # the copy task's training lengths
    assert all(0 <= v <= 8 * length for length, v in profile.items())  # at most every bit wrong
    assert set(record["eval_length_20"]) >= {"bit_errors", "bit_error_rate"}
    summary = summarise([record], settings)
    assert summary["fraction_converged"] == 0 and summary["median_seconds"] is None
    assert summary["any_relapse"] is False
