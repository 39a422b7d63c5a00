"""The convergence benchmark's bookkeeping on a run far too short to converge (no timings)."""

import dataclasses
import sys
from pathlib import Path

import pytest

from neural_memory.training import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from convergence import (  # noqa: E402
    ConvergenceMonitor,
    ConvergenceSettings,
    copy_model_config,
    run_seed,
    summarise,
)


def test_an_unconverged_seed_is_reported_as_such_with_its_final_profile():
    settings = ConvergenceSettings(max_seconds=0.2, eval_sequences=4, by_length_sequences=2)
    config = TrainConfig.preset("fast-adam-settle", batch_size=4)
    lines = []
    record = run_seed(0, config, settings, copy_model_config("copy-row0"), log=lines.append)
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


def test_the_monitor_stops_at_extend_times_the_convergence_point_and_resumes():
    import torch

    from neural_memory.ntm import NTM
    from neural_memory.tasks import get_task
    from neural_memory.training import TrainLoop

    settings = ConvergenceSettings(threshold=100.0, window=8, extend=2.0, eval_sequences=4,
                                   by_length_sequences=2)  # "converges" after the first window
    config = TrainConfig.preset("fast-adam-settle", batch_size=4, log_every=8)
    record = run_seed(1, config, settings, copy_model_config("copy-row0"), log=lambda _: None)
    assert record["converged"] and record["sequences_to_converge"] == 8
    assert record["sequences_run"] == 16 and record["worst_running_mean_after_converging"] > 0
    # the recipe's drop fires at the first learning-curve row below 0.1, never here
    assert record["lr_dropped_at"] is None
    # the monitor's state is checkpointable: a copy restored into a new monitor goes on alike
    monitor = ConvergenceMonitor(settings, log=lambda _: None)
    torch.manual_seed(1)
    loop = TrainLoop(NTM(copy_model_config("copy-row0")), get_task("copy"),
                     dataclasses.replace(config, sequences=8), seed=1, callbacks=[monitor])
    loop.run()
    twin = ConvergenceMonitor(settings, log=lambda _: None)
    twin.load_state_dict(monitor.state_dict())
    assert twin.state_dict() == monitor.state_dict() and twin.converged_at == 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--device", "cuda", "--fused"], "the fused unroll runs on the CPU only"),
        (["--device", "tpu"], "--device 'tpu'"),
        (["--device", "meta"], "--device must be cpu or cuda"),
        (["--only", "convergence", "--fused", "--compiled"], "choose --fused or --compiled"),
    ],
)
def test_the_benchmark_refuses_a_device_it_cannot_use(argv, message, capsys):
    from run import main

    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_the_benchmark_modes_refuse_the_wrong_device():
    from throughput import _model

    with pytest.raises(ValueError, match="CPU only"):
        _model("fused", "cuda")
    with pytest.raises(ValueError, match="mode must be one of"):
        _model("jit")


def test_the_benchmark_takes_preset_and_recipe_names():
    from run import get_recipe, model_overrides

    assert model_overrides([]) == {}
    assert model_overrides(["gamma_max=2.5"]) == {"gamma_max": 2.5}
    with pytest.raises(SystemExit, match="--model-set"):
        model_overrides(["no_such_field=1"])
    assert copy_model_config("copy-row0-gamma2").gamma_max == 2.0
    assert get_recipe("fast-adam-settle10", ["lr=0.002"]).lr == 0.002
    with pytest.raises(ValueError, match="unknown training recipe"):
        get_recipe("nosuch")


def test_relapse_rows_name_what_differs_from_fast_adam():
    from report import recipe_changes

    from neural_memory.training import REMOVED_OPTIONS

    recipe = dataclasses.asdict(TrainConfig.preset("fast-adam-settle10"))
    assert recipe_changes(recipe) == ["lr_drop_below=0.1", "fused_optimizer=True"]
    old = {**recipe, **REMOVED_OPTIONS, "spike_clip": 3.0}  # a file written by an earlier version
    assert recipe_changes(old)[-1] == "spike_clip=3"
