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


def test_recording_batches_reads_the_norms_without_changing_the_run():
    settings = ConvergenceSettings(max_sequences=48, eval_sequences=4, by_length_sequences=2)
    config = TrainConfig.preset("fast-adam-settle", batch_size=4, spike_clip=3.0)
    plain = run_seed(3, config, settings, {"learn_initial_weights": False}, log=lambda _: None)
    recorded = run_seed(3, config, settings, {"learn_initial_weights": False}, log=lambda _: None,
                        record_batches=True)
    def without_seconds(curve):
        return [(seen, mean) for seen, _, mean in curve]

    assert "batches" not in plain
    assert without_seconds(plain["curve"]) == without_seconds(recorded["curve"])
    assert plain["bit_errors_by_training_length"] == recorded["bit_errors_by_training_length"]
    rows = recorded["batches"]
    assert [row[0] for row in rows] == list(range(4, 49, 4))  # one row per batch of 4
    assert all(row[2] > 0 and row[1] >= 3 for row in rows)  # a norm; time steps of a copy batch
    assert recorded["spike_clips"] == plain["spike_clips"] >= 0


def test_gradient_norm_analysis_finds_the_outsized_batch_before_a_collapse():
    from gradient_norms import analyse, ratios

    assert ratios([2.0, 2.0, 4.0]) == [1.0, 1.0, 2.0]
    # converged at the 3rd batch; a norm 50x the mean at the 5th; the mean then climbs to 8
    means = [9.0, 0.5, 0.05, 0.05, 0.05, 2.0, 8.0, 0.3, 0.2]
    norms = [1.0, 1.0, 1.0, 1.0, 50.0, 1.0, 1.0, 1.0, 1.0]
    rows = [(i + 1, 5, n, 0.0, m) for i, (n, m) in enumerate(zip(norms, means, strict=True))]
    record = {"seed": 5, "converged": True, "sequences_to_converge": 3,
              "worst_running_mean_after_converging": 8.0, "batches": rows}
    found = analyse(record, collapse=5.0)
    assert found["batches_after"] == 6 and found["fraction_ratio_above_10"] == round(1 / 6, 4)
    assert found["collapses"] == [{"sequences": 7, "rise_began": 6, "largest_ratio": 50.0}]
    assert analyse({**record, "converged": False}, 5.0) == {"seed": 5, "converged": False}


def test_snapshots_keep_the_model_at_convergence_and_at_the_end():
    settings = ConvergenceSettings(threshold=100.0, window=8, extend=2.0, eval_sequences=4,
                                   by_length_sequences=2)  # "converges" after the first window
    config = TrainConfig.preset("fast-adam-settle", batch_size=4)
    snapshots: dict = {}
    record = run_seed(1, config, settings, {"learn_initial_weights": False}, log=lambda _: None,
                      snapshots=snapshots)
    assert record["converged"] and record["sequences_to_converge"] == 8
    assert record["sequences_run"] == 16 and set(snapshots) == {"converged", "end"}
    before, after = snapshots["converged"].state_dict(), snapshots["end"].state_dict()
    changed = [not before[k].equal(v) for k, v in after.items()]
    assert any(changed)  # two more updates between the snapshots


def test_error_anatomy_sorts_near_misses_from_answers_read_out_of_step():
    import torch
    from error_anatomy import classify

    from neural_memory.tasks.copy import copy_batch

    length = 6
    _, targets, mask = copy_batch(4, length, torch.Generator().manual_seed(0))
    logits = (2 * targets - 1) * 5.0  # every bit right
    logits[0, length + 1, 0] *= -1  # one bit wrong
    answer = slice(length + 1, None)
    logits[1, answer] = torch.roll(logits[1, answer], shifts=-1, dims=0)  # position i holds i + 1
    logits[2, answer] *= -1  # every bit wrong
    found = classify(logits, targets, mask, length)
    assert [(row, kind) for row, kind, _, _ in found] == [(0, "near_miss"), (1, "shifted"),
                                                          (2, "other")]
    assert found[0][2] == 1 and found[1][3] == 1 and found[2][2] == 8 * length


def test_read_hold_finds_the_head_that_moved_before_the_answer_and_its_margin():
    from types import SimpleNamespace

    import torch
    from error_anatomy import read_hold

    length, rows = 20, 8

    class Parked(torch.nn.Module):
        """Copies perfectly with a read head parked on row 0 and a hold margin of 0.7, except
        sequence 0, whose head moves on at step 5 (a margin of -0.3) and answers out of step."""

        def forward(self, x, return_trace=False):
            b, steps, _ = x.shape
            logits = torch.zeros(b, steps, 8)
            logits[:, length + 1:] = (2 * x[:, :length, :8] - 1) * 5.0
            logits[0, length + 1:] = torch.roll(logits[0, length + 1:], shifts=-1, dims=0)
            where = torch.zeros(b, steps, dtype=torch.long)
            where[0, 5:] = 1
            weights = torch.nn.functional.one_hot(where, 4).float().unsqueeze(2)  # (B, T, 1, N)
            shift = torch.tensor([0.1, 0.8, 0.1]).repeat(b, steps, 1, 1)  # (B, T, 1, 3)
            shift[0, 5, 0] = torch.tensor([0.6, 0.3, 0.1])
            trace = SimpleNamespace(read_weights=weights, heads=SimpleNamespace(shift=shift))
            return logits, trace

    hold = read_hold(Parked(), rows, seed=0, length=length)
    assert hold["parked"] == (rows - 1) / rows and hold["margin_below_0"] == 1 / rows
    assert hold["shifted"] == 1 and hold["shifted_moved_early"] == 1
    assert hold["margin_quantiles"]["50%"] == pytest.approx(0.7)
    assert hold["margin_quantiles"]["1%"] < 0


def test_anatomy_table_has_one_row_per_seed_in_seed_order():
    from report import anatomy_table

    def found(shifted: int) -> dict:
        kinds = {"near_miss": {"bit_errors": 0.1, "sequences": 5},
                 "shifted": {"bit_errors": 0.2, "sequences": shifted},
                 "other": {"bit_errors": 0.0, "sequences": 0}}
        return {"bit_errors": 0.3, "sequences_scored": 40, "kinds": kinds}

    results = [{"seeds": [{"seed": 3, "relapsed": False, "converged": found(2), "end": found(1)}]},
               {"seeds": [{"seed": 1, "relapsed": True, "converged": found(9), "end": found(7)}]}]
    rows = anatomy_table(results).splitlines()
    assert "of 40" in rows[0] and len(rows) == 4
    assert rows[2] == "| 1 | yes | 0.300 (0.100 / 0.200 / 0.000) | 9 | 0.300 (0.100 / 0.200 / 0.000) | 7 |"
    assert rows[3].startswith("| 3 | no |")


def test_replay_rows_set_each_seed_beside_the_same_seed_without_replay():
    from report import replay_rows

    def seed(n: int, worst: float, l20: float, relapsed: bool) -> dict:
        return {"seed": n, "converged": True, "sequences_to_converge": 1000 * n,
                "seconds_to_converge": 2.4 * n, "worst_running_mean_after_converging": worst,
                "relapsed": relapsed, "eval_length_20": {"bit_errors": l20}}

    trial = {"mode": "always", "seeds": [seed(2, 0.5, 0.01, False), seed(5, 3.0, 0.2, True)]}
    base = {"convergence": {"seeds": [seed(2, 1.5, 0.9, True)]}}
    rows = replay_rows([trial, base]).splitlines()
    assert rows == ["| always | 2 | 2,000 (5 s) | 0.50 | no | 0.010 | 1.50, 0.900 |",
                    "| always | 5 | 5,000 (12 s) | 3.00 | yes | 0.200 | -- |"]


def test_the_replay_step_is_train_step_when_nothing_is_replayed_and_counts_fresh_sequences():
    from replay_trial import Replay

    settings = ConvergenceSettings(max_sequences=48, eval_sequences=4, by_length_sequences=2)
    config = TrainConfig.preset("fast-adam-settle", batch_size=4)
    quiet = {"log": lambda _: None}
    plain = run_seed(2, config, settings, {"learn_initial_weights": False}, **quiet)
    idle = run_seed(2, config, settings, {"learn_initial_weights": False}, **quiet,
                    step=Replay(4, "after-drop"))  # no drop in 48 sequences: nothing replayed
    assert [c[::2] for c in idle["curve"]] == [c[::2] for c in plain["curve"]]
    assert idle["bit_errors_by_training_length"] == plain["bit_errors_by_training_length"]
    step = Replay(2, "always")
    replaying = run_seed(2, config, settings, {"learn_initial_weights": False}, **quiet, step=step)
    assert step.replayed > 0 and replaying["sequences_run"] == 48  # an untrained model fails
    assert all(len(kept) <= 8 for kept in step.buffer.values())
    assert all(e[0].shape[1] == 2 * length + 1 for length, kept in step.buffer.items() for e in kept)


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


def test_model_overrides_add_the_model_set_items_to_the_row0_start():
    from run import model_overrides

    assert model_overrides(False, []) == {}
    assert model_overrides(True, ["gamma_max=2.5"]) == {"learn_initial_weights": False,
                                                        "gamma_max": 2.5}
    with pytest.raises(SystemExit, match="--model-set"):
        model_overrides(True, ["no_such_field=1"])
