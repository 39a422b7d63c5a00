"""Hard addressing (Part IV): one-hot heads inside the NTM, their schedule and training."""

import dataclasses
import json
import math

import pytest
import torch

from neural_memory.checkpoint import load_checkpoint
from neural_memory.evaluate import main as evaluate_main
from neural_memory.experiments import hard as experiment
from neural_memory.ntm import NTM, NTMConfig, entropy_bits, harden
from neural_memory.ntm.model import HARD_WRITE_MIN_MEMORY_INIT
from neural_memory.train import main as train_main
from neural_memory.training import TrainConfig, _train_config_differences, hard_schedule_at

MODES = ("read", "write", "both")


def _model(mode: str, seed: int = 0, **kw) -> NTM:
    torch.manual_seed(seed)
    return NTM(NTMConfig.preset("tiny", hard_addressing=mode, memory_init_value=0.01, **kw))


def _bits(batch: int = 3, steps: int = 9, seed: int = 1) -> torch.Tensor:
    return (torch.rand(batch, steps, 9, generator=torch.Generator().manual_seed(seed)) < 0.5).float()


def _assert_one_hot(w: torch.Tensor) -> None:
    assert set(w.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(w.sum(-1), torch.ones_like(w.sum(-1)))


# ---------------------------------------------------------------------- harden


@pytest.mark.parametrize("training", [True, False])
def test_harden_is_exactly_one_hot(training):
    w = torch.softmax(torch.randn(4, 3, 16), dim=-1)
    _assert_one_hot(harden(w, tau=0.7, training=training))


def test_harden_eval_is_the_argmax_and_deterministic():
    w = torch.softmax(torch.randn(5, 16), dim=-1)
    out = harden(w, training=False)
    assert torch.equal(out.argmax(-1), w.argmax(-1))
    assert torch.equal(out, harden(w, training=False))


def test_harden_samples_rows_with_their_weights():
    w = torch.tensor([0.1, 0.6, 0.3])
    draws = harden(w.expand(20_000, 3), generator=torch.Generator().manual_seed(0))
    freq = draws.mean(0)
    assert torch.allclose(freq, w, atol=0.015), freq  # the Gumbel-max trick


def test_harden_passes_the_soft_gradient_and_mixes():
    logits = torch.randn(2, 8, requires_grad=True)
    w = torch.softmax(logits, -1)
    out = harden(w, tau=0.5, generator=torch.Generator().manual_seed(3))
    (out * torch.arange(8.0)).sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    assert torch.equal(harden(w, mix=0.0), w)
    half = harden(w, mix=0.5, training=False)
    torch.testing.assert_close(half, 0.5 * harden(w, training=False) + 0.5 * w)


def test_harden_survives_zero_weights():
    w = torch.tensor([[0.0, 1.0, 0.0, 0.0]], requires_grad=True)
    out = harden(w, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.detach(), torch.tensor([[0.0, 1.0, 0.0, 0.0]]))
    out[0, 1].backward()
    assert torch.isfinite(w.grad).all()


@pytest.mark.parametrize("bad", [{"tau": 0.0}, {"tau": -1.0}, {"tau": math.nan}, {"mix": 1.5}, {"mix": -0.1}])
def test_harden_rejects_bad_settings(bad):
    with pytest.raises(ValueError):
        harden(torch.full((2, 4), 0.25), **bad)


def test_entropy_bits():
    assert float(entropy_bits(torch.tensor([0.0, 1.0, 0.0, 0.0]))) == 0.0
    assert float(entropy_bits(torch.full((8,), 1 / 8))) == pytest.approx(3.0)
    assert float(entropy_bits(torch.tensor([0.5, 0.5, 0.0]))) == pytest.approx(1.0)


# ---------------------------------------------------------------------- the NTM with hard heads


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("training", [True, False])
def test_hard_heads_use_one_hot_weightings(mode, training):
    model = _model(mode)
    model.train(training)
    _, trace = model(_bits(), return_trace=True)
    hard = {"read": [trace.read_weights], "write": [trace.write_weights],
            "both": [trace.read_weights, trace.write_weights]}[mode]
    for w in hard:
        _assert_one_hot(w)
    soft = {"read": trace.write_weights, "write": trace.read_weights, "both": None}[mode]
    if soft is not None:  # the other head stays soft
        assert (soft.max(-1).values < 1).all()
    # the read vectors are exactly rows of memory for hard read heads
    if mode in ("read", "both"):
        rows = trace.read_weights.argmax(-1)  # (B, T, R)
        mem = trace.memory[:, :-1]  # M_{t-1}, (B, T, N, M)
        picked = torch.gather(mem, 2, rows[..., None].expand(-1, -1, -1, mem.shape[-1]))
        assert torch.equal(trace.read_vectors, picked)


@pytest.mark.parametrize("mode", MODES)
def test_gradients_reach_every_head_parameter(mode):
    model = _model(mode)
    model.train()
    logits = model(_bits(batch=4, steps=12))
    torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        if name.startswith("heads."):
            assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("mode", MODES)
def test_evaluation_is_deterministic_and_training_samples(mode):
    model = _model(mode)
    x = _bits(batch=8, steps=12)
    model.eval()
    assert torch.equal(model(x), model(x))
    model.train()
    torch.manual_seed(0)
    a = model(x)
    torch.manual_seed(1)
    b = model(x)
    assert not torch.equal(a, b)


def test_soft_mode_is_untouched_by_the_schedule():
    soft = _model("none")
    x = _bits()
    before = soft(x)
    soft.set_hard_schedule(0.3, 0.2)
    assert torch.equal(before, soft(x))


def test_the_schedule_and_config_are_validated():
    model = _model("both")
    with pytest.raises(ValueError, match="tau"):
        model.set_hard_schedule(0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        model.set_hard_schedule(1.0, 2.0)
    with pytest.raises(ValueError, match="hard_addressing must be one of"):
        NTMConfig.preset("tiny", hard_addressing="sometimes")
    with pytest.raises(ValueError, match="memory_init_value >="):
        NTMConfig.preset("copy", hard_addressing="write")  # the paper's M_0 = 1e-6
    NTMConfig.preset("copy", hard_addressing="read")  # hard reads are fine with it
    NTMConfig.preset("copy", hard_addressing="both", memory_init_value=HARD_WRITE_MIN_MEMORY_INIT)


def test_hard_schedule_at():
    plain = TrainConfig.preset("tiny", hard_tau_end=0.5)
    assert hard_schedule_at(0, plain) == (0.5, 1.0)
    anneal = TrainConfig.preset("tiny", hard_tau_start=1.0, hard_tau_end=0.25, hard_mix_start=0.0,
                                hard_anneal_sequences=100)
    assert hard_schedule_at(0, anneal) == (1.0, 0.0)
    tau, mix = hard_schedule_at(50, anneal)
    assert tau == pytest.approx(0.5) and mix == pytest.approx(0.5)
    assert hard_schedule_at(100, anneal) == hard_schedule_at(10_000, anneal) == (0.25, 1.0)
    for bad in ({"hard_tau_start": 0.0}, {"hard_tau_end": -1.0}, {"hard_mix_start": 1.2},
                {"hard_anneal_sequences": -5}):
        with pytest.raises(ValueError):
            TrainConfig.preset("tiny", **bad)


def test_a_manifest_without_the_hard_fields_still_resumes():
    recipe = TrainConfig.preset("fast-adam")
    old = {k: v for k, v in dataclasses.asdict(recipe).items() if not k.startswith("hard_")}
    assert _train_config_differences(old, recipe) == []
    changed = dataclasses.replace(recipe, hard_mix_start=0.0)
    assert _train_config_differences(old, changed) == ["hard_mix_start: checkpoint=1.0, now=0.0"]


# ---------------------------------------------------------------------- end to end


def test_tiny_hard_read_run_trains_resumes_and_evaluates(tmp_path, capsys):
    out = tmp_path / "hard"
    args = ["--task", "copy", "--model", "ntm", "--preset", "tiny", "--no-progress", "--out", str(out),
            "--set", "hard_addressing=read", "--sequences", "16", "--checkpoint-every", "8",
            "--log-every", "8", "--hard-tau-start", "1.0", "--hard-tau-end", "0.5",
            "--hard-mix-start", "0.0", "--hard-anneal-sequences", "12"]
    assert train_main(args) == 0
    ckpt = load_checkpoint(out / "copy-ntm.pt", task="copy", model_kind="ntm")
    assert ckpt.config.hard_addressing == "read"
    assert ckpt.manifest["train_config"]["hard_anneal_sequences"] == 12
    assert math.isfinite(ckpt.manifest["metrics"]["eval_cost_bits"])
    _, trace = ckpt.model(_bits(), return_trace=True)
    _assert_one_hot(trace.read_weights)
    assert train_main([*args, "--resume"]) == 0  # a finished run resumes to the same end
    assert torch.equal(load_checkpoint(out / "copy-ntm.pt").model.output.weight, ckpt.model.output.weight)
    capsys.readouterr()
    assert evaluate_main(["--task", "copy", "--model", "ntm", "--checkpoint", str(out / "copy-ntm.pt"),
                          "--length", "5", "--sequences", "4", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    evaluate_main(["--task", "copy", "--model", "ntm", "--checkpoint", str(out / "copy-ntm.pt"),
                   "--length", "5", "--sequences", "4", "--json"])
    assert json.loads(capsys.readouterr().out) == first  # argmax in evaluation: deterministic


def test_the_experiment_runs_scores_and_reloads(tmp_path):
    summary = experiment.run_all("copy", [0], tmp_path / "out", tmp_path / "work", "test",
                                 variants=["soft", "hard_both"], budget=64, eval_sequences=8)
    assert sorted(summary["runs"]) == ["hard_both-seed0", "soft-seed0"]
    run = summary["runs"]["hard_both-seed0"]
    assert run["entropy_bits"]["read"] == 0.0 and run["entropy_bits"]["write"] == 0.0
    assert run["entropy_bits"]["read_soft"] > 0
    assert summary["runs"]["soft-seed0"]["entropy_bits"]["read"] > 0
    assert set(run["beyond"]) == {"length=20", "length=40", "length=60"}
    loaded, curves = experiment.load_results("copy", tmp_path / "out")
    assert loaded["runs"] == json.loads(json.dumps(summary["runs"]))
    assert [r["sequences"] for r in curves["soft-seed0"]] == [64.0]
    table = experiment.summarise(loaded)
    assert [r["variant"] for r in table] == ["soft", "hard_both"]
    model = experiment.load_model("copy", "hard_both", out_dir=tmp_path / "out")
    assert model.config.hard_addressing == "both"
    again = experiment.run_all("copy", [0], tmp_path / "out", tmp_path / "work", "test",
                               variants=["soft", "hard_both"], budget=64, eval_sequences=8)  # nothing left to run
    assert again["runs"] == summary["runs"]


@pytest.mark.parametrize("task_name", ["copy", "repeat_copy", "associative_recall", "priority_sort"])
def test_hard_heads_work_on_every_task(task_name):
    from neural_memory.tasks import get_task
    from neural_memory.training import model_config_for

    task = get_task(task_name)
    config = dataclasses.replace(model_config_for(task, "ntm", "tiny"), hard_addressing="both",
                                 memory_init_value=0.01)
    torch.manual_seed(0)
    model = NTM(config)
    x, y, mask = task.sample(2, torch.Generator().manual_seed(0))
    logits, trace = model(x, return_trace=True)
    _assert_one_hot(trace.read_weights)
    _assert_one_hot(trace.write_weights)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
    (loss.mean(-1) * mask).sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_an_interrupted_hard_run_resumes_to_the_same_weights(tmp_path):
    from neural_memory.tasks import get_task
    from neural_memory.training import model_config_for, run_training

    config = dataclasses.replace(model_config_for(get_task("copy"), "ntm", "tiny"),
                                 hard_addressing="both", memory_init_value=0.01)
    recipe = TrainConfig.preset("tiny", sequences=48, checkpoint_every=16, log_every=8,
                                hard_mix_start=0.0, hard_tau_end=0.5, hard_anneal_sequences=32)

    def run(name, **kw):
        return run_training("copy", "ntm", config, recipe, tmp_path / name, seed=5, progress=False, **kw)

    full = run("full")
    run("part", stop_after=16)
    torch.manual_seed(999)  # the Gumbel noise comes from the global RNG: resume must restore it
    resumed = run("part", resume=True)
    a, b = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r[:3] for r in full.rows] == [r[:3] for r in resumed.rows]
