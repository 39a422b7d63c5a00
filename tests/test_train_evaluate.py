"""The training loop, the `train` and `evaluate` commands, and exact resume."""

import copy
import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import neural_memory.ntm
from neural_memory.baselines import LSTMConfig
from neural_memory.checkpoint import (
    CheckpointError,
    load_checkpoint,
    manifest_path,
    read_csv,
    save_checkpoint,
)
from neural_memory.evaluate import main as evaluate_main
from neural_memory.registry import build_model
from neural_memory.tasks import get_task
from neural_memory.train import main as train_main
from neural_memory.training import (
    LOG_COLUMNS,
    REMOVED_OPTIONS,
    Callback,
    LearningRateDrop,
    TrainConfig,
    clip_gradients,
    difficulty_at,
    evaluate_model,
    load_or_train,
    make_optimizer,
    model_config_for,
    retrain_model,
    run_training,
    size_sweep,
    train,
)

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--preset", "tiny", "--no-progress"]


def test_train_main_writes_a_loadable_checkpoint_and_log(tmp_path, capsys):
    out = tmp_path / "run"
    assert train_main(["--task", "repeat_copy", "--model", "lstm", "--out", str(out), "--seed", "3", *TINY]) == 0
    stdout = capsys.readouterr().out
    assert "checkpoint: " in stdout and "final (8 fresh sequences): cost " in stdout
    ckpt = load_checkpoint(out / "repeat_copy-lstm.pt", task="repeat_copy", model_kind="lstm")
    assert ckpt.config == LSTMConfig.preset("tiny", input_size=10, output_size=9)
    m = ckpt.manifest
    assert m["seed"] == 3 and m["sequences_seen"] == 32 and m["resumable"]
    assert m["command"].startswith("python -m neural_memory.train --task repeat_copy")
    assert m["train_config"] == {**m["train_config"], "lr": 1e-3, "batch_size": 4, "sequences": 32}
    assert {"eval_cost_bits", "eval_bit_errors", "eval_bit_error_rate", "train_cost_bits"} <= set(m["metrics"])
    rows = read_csv(out / "repeat_copy-lstm.csv")
    assert list(rows[0]) == list(LOG_COLUMNS)
    assert [int(r["sequences"]) for r in rows] == [8, 16, 24, 32]
    assert all(float(r["cost_bits"]) > 0 and float(r["bit_errors"]) >= 0 for r in rows)


def test_recipe_flags_override_the_preset(tmp_path):
    out = tmp_path / "run"
    train_main(["--task", "copy", "--model", "lstm", "--out", str(out), *TINY, "--sequences", "8",
                "--lr", "0.01", "--optimizer", "adam", "--clip-value", "none", "--clip-norm", "1.0"])
    tc = load_checkpoint(out / "copy-lstm.pt").manifest["train_config"]
    assert (tc["sequences"], tc["lr"], tc["optimizer"], tc["clip_value"], tc["clip_norm"]) == (8, 0.01, "adam", None, 1.0)


def test_train_runs_as_a_module(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "neural_memory.train", "--task", "associative_recall", "--model", "lstm",
         "--out", str(out), *TINY, "--sequences", "8"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "final (8 fresh sequences)" in proc.stdout
    load_checkpoint(out / "associative_recall-lstm.pt", task="associative_recall")


def _tiny_run(tmp_path, name, kind="lstm", recipe_overrides=None, **kw):
    task = get_task("copy")
    config = model_config_for(task, kind, "tiny")
    recipe = TrainConfig.preset("tiny", sequences=48, checkpoint_every=16, log_every=8,
                                **(recipe_overrides or {}))
    return run_training("copy", kind, config, recipe, tmp_path / name, seed=7, progress=False, **kw)


def _same_weights(run_a, run_b) -> bool:
    """Whether two training runs ended with bit-identical weights."""
    a, b = run_a.model.state_dict(), run_b.model.state_dict()
    return all(torch.equal(a[k], b[k]) for k in a)


def _resume_matches_full(tmp_path, kind="lstm", recipe_overrides=None):
    """Train the tiny run in full, and again stopped after 16 sequences and resumed (with the
    global RNG disturbed in between: resume must restore it); assert both end with bit-identical
    weights, and return the full run."""
    full = _tiny_run(tmp_path, "full", kind, recipe_overrides=recipe_overrides)
    _tiny_run(tmp_path, "part", kind, recipe_overrides=recipe_overrides, stop_after=16)
    torch.manual_seed(12345)
    resumed = _tiny_run(tmp_path, "part", kind, recipe_overrides=recipe_overrides, resume=True)
    assert _same_weights(full, resumed)
    return full


@pytest.mark.parametrize("kind", ["lstm", "ntm"])
def test_resume_reaches_bit_identical_weights(tmp_path, kind):
    full = _tiny_run(tmp_path, "full", kind)
    part = _tiny_run(tmp_path, "part", kind, stop_after=16)
    assert load_checkpoint(part.checkpoint).manifest["sequences_seen"] == 16
    torch.manual_seed(12345)  # disturb the global RNG: resume must restore it
    resumed = _tiny_run(tmp_path, "part", kind, resume=True)
    assert _same_weights(full, resumed)
    assert [r[:3] for r in full.rows] == [r[:3] for r in resumed.rows]
    assert full.metrics["eval_cost_bits"] == resumed.metrics["eval_cost_bits"]
    rows = read_csv(resumed.log)
    assert [int(r["sequences"]) for r in rows] == [8, 16, 24, 32, 40, 48]


def test_resume_drops_log_rows_after_the_checkpoint(tmp_path):
    part = _tiny_run(tmp_path, "part", stop_after=16)
    with open(part.log, "a") as f:  # rows written after the last checkpoint, then a crash
        f.write("24,1.0,1.0,0.1\n32,1.0,1.0,0.2\n")
    resumed = _tiny_run(tmp_path, "part", resume=True)
    assert [int(r["sequences"]) for r in read_csv(resumed.log)] == [8, 16, 24, 32, 40, 48]


def test_resume_refuses_a_different_recipe_or_missing_checkpoint(tmp_path):
    _tiny_run(tmp_path, "part", stop_after=16)
    task = get_task("copy")
    config = model_config_for(task, "lstm", "tiny")
    other = TrainConfig.preset("tiny", sequences=48, checkpoint_every=16, log_every=8, lr=0.5)
    with pytest.raises(CheckpointError, match="lr: checkpoint=0.001, now=0.5"):
        run_training("copy", "lstm", config, other, tmp_path / "part", seed=7, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        run_training("copy", "lstm", config, other, tmp_path / "empty", seed=7, resume=True, progress=False)
    bigger = LSTMConfig.preset("tiny", hidden_size=32)
    with pytest.raises(CheckpointError, match="hidden_size: checkpoint=16, expected=32"):
        run_training("copy", "lstm", bigger, other, tmp_path / "part", seed=7, resume=True, progress=False)


def test_sequences_is_exact_when_not_a_multiple_of_the_batch(tmp_path):
    out = tmp_path / "run"
    train_main(["--task", "copy", "--model", "lstm", "--out", str(out), *TINY, "--sequences", "10"])
    assert load_checkpoint(out / "copy-lstm.pt").manifest["sequences_seen"] == 10
    assert [int(r["sequences"]) for r in read_csv(out / "copy-lstm.csv")] == [8, 10]


def test_model_config_must_match_the_task(tmp_path):
    with pytest.raises(ValueError, match="task 'priority_sort' has 10 inputs"):
        run_training("priority_sort", "lstm", LSTMConfig.preset("tiny"), TrainConfig.preset("tiny"), tmp_path)


def test_curriculum_and_clipping():
    cfg = TrainConfig(curriculum_sequences=100, curriculum_start=0.2)
    assert difficulty_at(0, cfg) == pytest.approx(0.2)
    assert difficulty_at(50, cfg) == pytest.approx(0.6)
    assert difficulty_at(500, cfg) == 1.0 and difficulty_at(0, TrainConfig()) == 1.0
    p = torch.nn.Parameter(torch.zeros(3))
    p.grad = torch.tensor([30.0, -40.0, 1.0])
    clip_gradients([p], TrainConfig(clip_value=10.0))
    assert p.grad.tolist() == [10.0, -10.0, 1.0]
    clip_gradients([p], TrainConfig(clip_value=None, clip_norm=1.0))
    assert p.grad.norm().item() == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="optimizer must be"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="unknown training recipe"):
        TrainConfig.preset("copy")
    assert set(TrainConfig.preset_names()) >= {"copy-ntm", "copy-lstm", "priority_sort-lstm", "tiny"}


def test_evaluate_model_on_a_perfect_model():
    class Oracle(torch.nn.Module):  # reads the answer from the input: a perfect copier
        def forward(self, x):
            L = (x.shape[1] - 1) // 2
            logits = torch.full((x.shape[0], x.shape[1], 8), -30.0)
            logits[:, L + 1 :] = x[:, :L, :8] * 60 - 30
            return logits

    m = evaluate_model(Oracle(), get_task("copy"), 10, torch.Generator().manual_seed(0), batch_size=4, length=5)
    assert m["bit_errors"] == 0 and m["bit_error_rate"] == 0 and m["cost_bits"] < 1e-9
    with pytest.raises(ValueError, match="takes the size parameters"):
        evaluate_model(Oracle(), get_task("copy"), 1, torch.Generator(), items=3)
    rows = size_sweep(Oracle(), get_task("copy"), "length", [2, 30], sequences=3)
    assert [r["length"] for r in rows] == [2, 30] and all(r["bit_errors"] == 0 for r in rows)


@pytest.fixture
def trained(tmp_path):
    out = tmp_path / "run"
    train_main(["--task", "copy", "--model", "lstm", "--out", str(out), *TINY, "--sequences", "8"])
    return out / "copy-lstm.pt"


def test_evaluate_json_is_one_object_with_the_schema(trained, capsys):
    code = evaluate_main(["--task", "copy", "--model", "lstm", "--checkpoint", str(trained),
                              "--length", "12", "--sequences", "5", "--json"])
    out = capsys.readouterr().out
    assert code == 0 and out.count("\n") == 1
    result = json.loads(out)
    assert set(result) == {"task", "model", "checkpoint", "sequences_seen", "seed", "sequences", "size",
                           "bit_errors", "bit_error_rate", "cost_bits"}
    assert result["size"] == {"length": 12} and result["sequences"] == 5 and result["sequences_seen"] == 8
    assert 0 <= result["bit_error_rate"] <= 1 and result["bit_errors"] <= 12 * 8
    # the same seed gives the same numbers; plain output prints them rounded
    evaluate_main(["--task", "copy", "--model", "lstm", "--checkpoint", str(trained),
                       "--length", "12", "--sequences", "5"])
    plain = capsys.readouterr().out
    assert f"bit errors per sequence: {result['bit_errors']:.4f}" in plain
    assert f"cross-entropy: {result['cost_bits']:.4f} bits/sequence" in plain


def test_evaluate_errors_are_clear(trained, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(importlib.import_module("neural_memory.evaluate"), "SHIPPED_DIR", tmp_path / "none")
    assert evaluate_main(["--task", "copy", "--model", "lstm"]) == 2
    err = capsys.readouterr().err
    assert "no shipped checkpoint for task 'copy' and model 'lstm'" in err
    assert "python -m neural_memory.train --task copy --model lstm" in err
    assert evaluate_main(["--task", "priority_sort", "--model", "lstm", "--checkpoint", str(trained)]) == 2
    assert "task='copy', expected 'priority_sort'" in capsys.readouterr().err
    assert evaluate_main(["--task", "copy", "--model", "lstm", "--checkpoint", str(trained), "--items", "3"]) == 2
    assert "takes ['--length'], not ['--items']" in capsys.readouterr().err
    data = trained.read_bytes()
    trained.write_bytes(data[:-100])
    assert evaluate_main(["--task", "copy", "--model", "lstm", "--checkpoint", str(trained)]) == 2
    assert "copy-lstm.pt is corrupt or truncated" in capsys.readouterr().err


def test_evaluate_reads_the_shipped_directory(trained, tmp_path, capsys, monkeypatch):
    ship = tmp_path / "ship"
    ckpt = load_checkpoint(trained)
    save_checkpoint(ship / "copy-lstm.pt", ckpt.model, ckpt.config, task="copy", model_kind="lstm",
                    seed=0, sequences_seen=8, weights_dtype=torch.float16)
    assert json.loads(manifest_path(ship / "copy-lstm.pt").read_text())["weights_dtype"] == "float16"
    monkeypatch.setattr(importlib.import_module("neural_memory.evaluate"), "SHIPPED_DIR", ship)
    assert evaluate_main(["--task", "copy", "--model", "lstm", "--sequences", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checkpoint"] == str(ship / "copy-lstm.pt")


def test_load_or_train_loads_shipped_else_trains(tmp_path):
    trained = load_or_train("copy", "lstm", directory=tmp_path / "ship", out_dir=tmp_path / "run",
                            preset="tiny", progress=False, sequences=8)
    assert trained.manifest["sequences_seen"] == 8 and trained.manifest["resumable"]
    (tmp_path / "ship").mkdir()
    for suffix in (".pt", ".json"):
        (tmp_path / "ship" / f"copy-lstm{suffix}").write_bytes((tmp_path / "run" / f"copy-lstm{suffix}").read_bytes())
    shipped = load_or_train("copy", "lstm", directory=tmp_path / "ship", out_dir=tmp_path / "other")
    assert shipped.manifest["sha256"] == trained.manifest["sha256"] and not (tmp_path / "other").exists()


def test_ntm_trains_resumes_and_evaluates(tmp_path, capsys):
    out = tmp_path / "ntm"
    assert train_main(["--task", "copy", "--model", "ntm", "--out", str(out), *TINY, "--sequences", "8",
                       "--checkpoint-every", "4", "--log-every", "4"]) == 0
    ckpt = load_checkpoint(out / "copy-ntm.pt", task="copy", model_kind="ntm")
    assert ckpt.config == neural_memory.ntm.NTMConfig.preset("tiny", input_size=9, output_size=8)
    logits, trace = ckpt.model(torch.zeros(1, 5, 9), return_trace=True)
    assert logits.shape == (1, 5, 8) and trace.read_weights.shape[:2] == (1, 5)
    capsys.readouterr()
    assert evaluate_main(["--task", "copy", "--model", "ntm", "--checkpoint", str(out / "copy-ntm.pt"),
                              "--length", "4", "--sequences", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "ntm"


def test_learning_rate_drops_once_and_survives_resume(tmp_path):
    # batches of 4 and a window of 24 sequences: the first full window ends at 24, after the
    # interruption at 16, so the resumed run must have kept the window's first four batches
    recipe = dict(lr_drop_below=1e9, lr_drop_factor=0.25, lr_drop_window=24)
    full = _resume_matches_full(tmp_path, recipe_overrides=recipe)
    ckpt = load_checkpoint(full.checkpoint)
    assert [g["lr"] for g in ckpt.state["optimizer"]["param_groups"]] == [0.25e-3]  # once, not 0.25^6
    assert ckpt.state["train_state"]["callbacks"]["LearningRateDrop"]["dropped_at"] == 24
    never = _tiny_run(tmp_path, "never", recipe_overrides=dict(lr_drop_below=1e-12, lr_drop_window=8))
    assert load_checkpoint(never.checkpoint).state["optimizer"]["param_groups"][0]["lr"] == 1e-3
    for bad in ({"lr_drop_below": 0.0}, {"lr_drop_factor": 0.0}, {"lr_drop_factor": 2.0},
                {"lr_drop_window": 0}):
        with pytest.raises(ValueError):
            TrainConfig.preset("tiny", **bad)


def test_the_drop_watches_a_running_mean_over_its_window_after_every_batch():
    from types import SimpleNamespace

    recipe = TrainConfig.preset("fast-adam-settle", lr_drop_window=10)
    params = [torch.nn.Parameter(torch.zeros(2))]
    loop = SimpleNamespace(optimizer=make_optimizer(params, recipe), seen=0)
    drop = LearningRateDrop(recipe)
    # (summed bit errors, sequences) of successive batches of 4: the window is the fewest last
    # batches that cover 10 sequences (three batches, 12 sequences)
    for errors, mean_after in ((0.0, None), (0.0, None), (12.0, 1.0), (0.0, 1.0), (0.4, 12.4 / 12),
                               (0.0, 0.4 / 12)):
        loop.seen += 4
        drop.on_batch_end(loop, 0.0, errors, 4)
        assert drop.dropped(loop.optimizer) == (mean_after is not None and mean_after < 0.1)
    assert drop.dropped_at == 24 and loop.optimizer.param_groups[0]["lr"] == pytest.approx(3e-5)
    drop.on_batch_end(loop, 0.0, 0.0, 4)  # once only
    assert loop.optimizer.param_groups[0]["lr"] == pytest.approx(3e-5) and drop.dropped_at == 24


class _Counter(Callback):
    """Counts batches and sequences, and remembers both across a resume."""

    def __init__(self) -> None:
        self.batches = self.sequences = 0
        self.starts = 0

    def on_start(self, loop) -> None:
        self.starts += 1

    def on_batch_end(self, loop, cost, errors, size) -> None:
        self.batches, self.sequences = self.batches + 1, self.sequences + size

    def state_dict(self):
        return {"batches": self.batches, "sequences": self.sequences}

    def load_state_dict(self, state):
        self.batches, self.sequences = state.get("batches", 0), state.get("sequences", 0)


def test_the_loop_calls_callbacks_and_resumes_their_state():
    task = get_task("copy")
    recipe = TrainConfig.preset("tiny", sequences=30, lr_drop_below=1e9, lr_drop_factor=0.5,
                                lr_drop_window=8)
    config = model_config_for(task, "ntm", "tiny")

    def fresh():
        torch.manual_seed(3)
        return build_model("ntm", config)

    counter = _Counter()
    full = train(fresh(), task, recipe, seed=5, callbacks=[counter])
    assert (counter.batches, counter.sequences, full.seen) == (8, 30, 30)  # the last batch: 2
    assert [r[0] for r in full.rows] == [8, 16, 24, 30]
    drop = full.callback(LearningRateDrop)
    assert drop.dropped_at == 8 and full.optimizer.param_groups[0]["lr"] == 0.5e-3
    # stop half-way from a callback, save the loop's state, resume into a new model and loop
    class StopAt(Callback):
        def on_batch_end(self, loop, cost, errors, size):
            loop.stop = loop.seen >= 16

    part_counter = _Counter()
    part = train(fresh(), task, recipe, seed=5, callbacks=[part_counter, StopAt()])
    assert part.seen == 16
    state, rows = copy.deepcopy(part.state_dict()), [list(r) for r in part.rows]
    assert state["train_state"]["callbacks"]["_Counter"] == {"batches": 4, "sequences": 16}
    model = fresh()
    model.load_state_dict(part.model.state_dict())
    torch.manual_seed(999)  # resume restores the global RNG
    resumed_counter = _Counter()
    resumed = train(model, task, recipe, seed=5, callbacks=[resumed_counter], state=state, rows=rows)
    assert (resumed_counter.batches, resumed_counter.sequences) == (8, 30)
    assert resumed.callback(LearningRateDrop).dropped_at == 8
    assert all(torch.equal(a, b) for a, b in zip(full.model.state_dict().values(),
                                                  resumed.model.state_dict().values(), strict=True))
    assert resumed.rows == full.rows or [r[:3] for r in resumed.rows] == [r[:3] for r in full.rows]
    with pytest.raises(ValueError, match="distinct keys"):
        train(fresh(), task, recipe, callbacks=[_Counter(), _Counter()])


def test_train_config_keeps_only_what_is_used_and_removed_options_block_resume(tmp_path):
    assert len(dataclasses.fields(TrainConfig)) <= 22
    assert not set(REMOVED_OPTIONS) & {f.name for f in dataclasses.fields(TrainConfig)}
    part = _tiny_run(tmp_path, "part", stop_after=16)
    manifest = json.loads(manifest_path(part.checkpoint).read_text())
    # a manifest of an earlier version records the removed options; at their "off" values the
    # run resumes, at any other value it is refused with a message naming the option
    manifest["train_config"].update(REMOVED_OPTIONS)
    manifest_path(part.checkpoint).write_text(json.dumps(manifest))
    assert _tiny_run(tmp_path, "part", resume=True).rows[-1][0] == 48
    _tiny_run(tmp_path, "again", stop_after=16)
    path = tmp_path / "again" / "copy-lstm.json"
    manifest = json.loads(path.read_text())
    manifest["train_config"]["spike_clip"] = 3.0
    path.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match=r"spike_clip=3\.0.*no longer has"):
        _tiny_run(tmp_path, "again", resume=True)


def test_fused_optimizer_is_adam_rounded_differently_and_resumes(tmp_path):
    from neural_memory.training import make_optimizer

    assert TrainConfig.preset("fast-adam-settle").fused_optimizer
    # the benchmark's and the shipped copy NTM's recipe: the same with a tenfold drop
    assert TrainConfig.preset("fast-adam-settle10") == TrainConfig.preset(
        "fast-adam-settle", lr_drop_factor=0.1)
    assert not TrainConfig.preset("fast-adam").fused_optimizer  # the other shipped models' recipe
    torch.manual_seed(0)
    start = [torch.randn(40, 30), torch.randn(30)]
    runs = {}
    for fused in (False, True):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        optimizer = make_optimizer(params, TrainConfig.preset("fast-adam", fused_optimizer=fused))
        assert optimizer.param_groups[0]["fused"] is (True if fused else None)
        gen = torch.Generator().manual_seed(1)
        for _ in range(20):
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen)
            optimizer.step()
        runs[fused] = params
    for a, b in zip(runs[False], runs[True], strict=True):
        assert not torch.equal(a, start[0]) and not torch.equal(b, start[0])
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)  # the same update
    with pytest.raises(ValueError, match="needs optimizer='adam'"):
        TrainConfig(optimizer="rmsprop", fused_optimizer=True)
    with pytest.raises(ValueError, match="must be a bool"):
        TrainConfig.preset("fast-adam", fused_optimizer="yes")
    # an interrupted run resumes bit-identically, across the drop
    tiny = dict(optimizer="adam", fused_optimizer=True, lr_drop_below=1e9, lr_drop_factor=0.25,
                lr_drop_window=8)
    full = _resume_matches_full(tmp_path, "ntm", recipe_overrides=tiny)
    group = load_checkpoint(full.checkpoint).state["optimizer"]["param_groups"][0]
    assert group["fused"] and group["lr"] == pytest.approx(0.25e-3)


@pytest.mark.parametrize("flag, expected", [("--fused-optimizer", True),
                                            ("--no-fused-optimizer", False)])
def test_fused_optimizer_flag(tmp_path, flag, expected):
    out = tmp_path / "run"
    train_main(["--task", "copy", "--model", "lstm", "--out", str(out), *TINY, "--sequences", "8",
                "--optimizer", "adam", flag])
    assert load_checkpoint(out / "copy-lstm.pt").manifest["train_config"]["fused_optimizer"] is expected


# --------------------------------------------------------------------------- train's bad input

# (arguments after --task copy, a fragment the message must contain). "{run}" is a directory
# holding a finished tiny LSTM run (seed 0, the tiny recipe, 8 sequences), "{export}" its
# float16 export (weights only, no resume state), "{file}" a plain file; "{out}" is fresh.
LSTM, NTM = ["--model", "lstm", "--preset", "tiny"], ["--model", "ntm", "--preset", "tiny"]
BAD_TRAIN_INPUT = [
    (["--model", "lstm", "--preset", "nosuch"], "'nosuch'"),
    (["--model", "ntm", "--preset", "nosuch"], "'nosuch'"),
    ([*LSTM, "--recipe", "nosuch"], "'nosuch'"),
    ([*LSTM, "--sequences", "-3"], "got -3"),
    ([*LSTM, "--sequences", "0"], "got 0"),
    ([*LSTM, "--batch-size", "0"], "batch_size must be a positive integer, got 0"),
    ([*LSTM, "--batch-size", "-4"], "got -4"),
    ([*LSTM, "--lr", "0"], "lr must be a finite number > 0, got 0.0"),
    ([*LSTM, "--lr", "-1"], "got -1.0"),
    ([*LSTM, "--lr", "nan"], "got nan"),
    ([*LSTM, "--lr", "inf"], "got inf"),
    ([*LSTM, "--eps", "0"], "eps must be a finite number > 0, got 0.0"),
    ([*LSTM, "--alpha", "0"], "alpha must be in (0, 1], got 0.0"),
    ([*LSTM, "--momentum", "-1"], "momentum must be in [0, 1), got -1.0"),
    ([*LSTM, "--momentum", "1.5"], "got 1.5"),
    ([*LSTM, "--clip-value", "-1"], "clip_value must be > 0 or None, got -1.0"),
    ([*LSTM, "--clip-norm", "-2"], "clip_norm must be > 0 or None, got -2.0"),
    ([*LSTM, "--curriculum-sequences", "-1"], "got -1"),
    ([*LSTM, "--curriculum-start", "2"], "got 2.0"),
    ([*LSTM, "--log-every", "0"], "log_every must be a positive integer, got 0"),
    ([*LSTM, "--checkpoint-every", "0"], "got 0"),
    ([*LSTM, "--eval-sequences", "0"], "got 0"),
    ([*LSTM, "--lr-drop-below", "-1"], "got -1.0"),
    ([*LSTM, "--lr-drop-factor", "0"], "got 0.0"),
    ([*LSTM, "--hard-tau-start", "0"], "got 0.0"),
    ([*LSTM, "--hard-mix-start", "2"], "got 2.0"),
    ([*LSTM, "--hard-anneal-sequences", "-1"], "got -1"),
    ([*LSTM, "--fused-optimizer"], "got optimizer='rmsprop'"),
    ([*NTM, "--set", "memory_rows=abc"], "memory_rows expects an integer, got 'abc'"),
    ([*NTM, "--set", "learn_initial_weights=maybe"], "got 'maybe'"),
    ([*NTM, "--set", "gamma_max=big"], "expects a number or none, got 'big'"),
    ([*NTM, "--set", "memory_init_value=x"], "expects a number, got 'x'"),
    ([*NTM, "--set", "nosuch=1"], "got 'nosuch'"),
    ([*NTM, "--set", "memory_rows"], "expects FIELD=VALUE, got 'memory_rows'"),
    ([*NTM, "--set", "memory_rows=0"], "memory_rows must be an integer >= 1; got 0"),
    ([*NTM, "--set", "controller=gru"], "got 'gru'"),
    ([*NTM, "--set", "gamma_max=0.5"], "got 0.5"),
    ([*NTM, "--set", "input_size=5"], "expected 9, got 5"),
    ([*LSTM, "--set", "hidden_size=-4"], "got -4"),
    ([*LSTM, "--set", "memory_rows=8"], "got 'memory_rows'"),
    ([*LSTM, "--threads", "0"], "--threads expects a positive integer, got 0"),
    ([*LSTM, "--threads", "-2"], "got -2"),
    ([*LSTM, "--seed", "-1"], "got -1"),
    ([*LSTM, "--device", "nosuchdevice"], "got 'nosuchdevice'"),
    ([*LSTM, "--device", "meta"], "got 'meta'"),
    ([*LSTM, "--fused"], "expected --model ntm, got --model lstm"),
    ([*NTM, "--set", "hard_addressing=read", "--fused"], "hard_addressing='read'"),
    ([*LSTM, "--out", "{file}"], "--out expects a directory, got the file"),
    ([*LSTM, "--export", "{file}"], "--export expects a directory, got the file"),
    ([*LSTM, "--resume"], "got no checkpoint there"),
    ([*NTM, "--resume", "--out", "{run}"], "got no checkpoint there"),
    ([*LSTM, "--resume", "--out", "{run}", "--set", "hidden_size=32"],
     "hidden_size: checkpoint=16, expected=32"),
    (["--model", "lstm", "--preset", "small", "--recipe", "tiny", "--resume", "--out", "{run}"],
     "hidden_size: checkpoint=16, expected=128"),
    ([*LSTM, "--resume", "--out", "{run}", "--lr", "0.5"], "lr: checkpoint=0.001, now=0.5"),
    ([*LSTM, "--resume", "--out", "{run}", "--seed", "3"], "seed 0; expected the same seed, got 3"),
    ([*LSTM, "--resume", "--out", "{export}"], "without optimizer"),
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A directory with a finished tiny LSTM run on copy, and one with its float16 export."""
    root = tmp_path_factory.mktemp("finished")
    code = train_main(["--task", "copy", "--model", "lstm", "--out", str(root / "run"), *TINY,
                       "--sequences", "8", "--export", str(root / "export")])
    assert code == 0
    return root


def _case_id(value) -> str:
    return " ".join(value) if isinstance(value, list) else ""


@pytest.mark.parametrize("args, fragment", BAD_TRAIN_INPUT, ids=_case_id)
def test_train_answers_bad_input_with_one_error_line(args, fragment, finished_run, tmp_path,
                                                     capsys):
    plain_file = tmp_path / "a-file"
    plain_file.write_text("not a directory\n")
    places = {"{run}": finished_run / "run", "{export}": finished_run / "export",
              "{file}": plain_file}
    args = [str(places.get(a, a)) for a in args]
    out = tmp_path / "out"
    argv = ["--task", "copy", "--no-progress", "--out", str(out), *args]
    before = {p: p.stat().st_mtime_ns for p in (finished_run / "run").iterdir()}
    capsys.readouterr()
    assert train_main(argv) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[-1].startswith("error: "), captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert fragment in lines[-1]
    assert not out.exists()  # refused before anything was written
    assert {p: p.stat().st_mtime_ns for p in (finished_run / "run").iterdir()} == before


@pytest.mark.parametrize("args, fragment", [
    (["--model", "lstm", "--clip-value", "abc"],
     "argument --clip-value: expected a number or 'none', got 'abc'"),
    (["--model", "lstm", "--sequences", "many"], "argument --sequences: invalid int value: 'many'"),
    (["--model", "gru"], "argument --model: invalid choice: 'gru'"),
])
def test_train_argument_syntax_errors_are_argparse_errors(args, fragment, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_main(["--task", "copy", "--out", str(tmp_path / "out"), *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    last = [line for line in err.splitlines() if line.strip()][-1]
    assert last.startswith("python -m neural_memory.train: error: ") and fragment in last
    assert "Traceback" not in err


def test_train_reports_a_diverging_run_as_one_error_line(tmp_path, capsys, monkeypatch):
    train_cli = importlib.import_module("neural_memory.train")  # the module, not the function

    def diverge(*args, **kwargs):
        raise FloatingPointError("the training loss became nan; lower the learning rate")

    monkeypatch.setattr(train_cli, "run_training", diverge)
    argv = ["--task", "copy", "--model", "lstm", "--out", str(tmp_path / "out"), *TINY]
    assert train_main(argv) == 1
    assert capsys.readouterr().err == (
        "error: training diverged: the training loss became nan; lower the learning rate\n"
    )


@pytest.mark.parametrize("model", ["ntm", "lstm"])
def test_retrain_model_replays_the_manifest_to_the_same_weights(tmp_path, model):
    # an exported tiny model (with a non-default recipe and seed, and the fused unroll for the
    # NTM) trained again from its manifest alone has the same weights
    fused = ["--fused"] if model == "ntm" else []
    assert train_main(["--task", "copy", "--model", model, "--out", str(tmp_path / "run"), *TINY,
                       "--seed", "5", "--sequences", "24", "--lr", "0.003", *fused,
                       "--export", str(tmp_path / "ship")]) == 0
    shipped = load_checkpoint(tmp_path / "ship" / f"copy-{model}.pt")
    m = shipped.manifest
    assert (m["preset"], m["recipe"], m["fused"]) == ("tiny", "tiny", model == "ntm")
    again = retrain_model("copy", model, directory=tmp_path / "ship", out_dir=tmp_path / "again",
                          progress=False, export_dir=tmp_path / "ship2")
    assert again.manifest["seed"] == 5 and again.manifest["sequences_seen"] == 24
    replayed = load_checkpoint(tmp_path / "ship2" / f"copy-{model}.pt")
    assert replayed.manifest["sha256"] == m["sha256"]
    for a, b in zip(shipped.model.state_dict().values(), replayed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # load_or_train(retrain=True) replays the same manifest
    ck = load_or_train("copy", model, retrain=True, directory=tmp_path / "ship",
                       out_dir=tmp_path / "third", progress=False)
    for a, b in zip(again.model.state_dict().values(), ck.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_retrain_model_refuses_a_manifest_without_a_recipe(tmp_path):
    assert train_main(["--task", "copy", "--model", "lstm", "--out", str(tmp_path / "run"), *TINY,
                       "--sequences", "8"]) == 0
    manifest = json.loads((tmp_path / "run" / "copy-lstm.json").read_text())
    (tmp_path / "run" / "copy-lstm.json").write_text(json.dumps({**manifest, "train_config": None}))
    with pytest.raises(CheckpointError, match="records no recipe"):
        retrain_model("copy", "lstm", directory=tmp_path / "run", out_dir=tmp_path / "x", progress=False)
