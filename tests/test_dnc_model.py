"""The DNC model: against the naive formulation, one step by hand, its trace against the pure
functions, every task, training and resuming through the command line, checkpoints, errors."""

from __future__ import annotations

import json
import math

import dnc_naive as naive
import pytest
import torch

import neural_memory
from neural_memory.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from neural_memory.dnc import (
    DNC,
    DNCConfig,
    DNCInterface,
    DNCTrace,
    allocation_weights,
    directional_weights,
    interface_size,
    link_matrix,
    precedence,
    read_weights,
    retention,
    usage,
    write_weights,
)
from neural_memory.evaluate import main as evaluate_main
from neural_memory.ntm import NTMConfig
from neural_memory.registry import MODEL_KINDS, build_model
from neural_memory.tasks import TASKS, get_task
from neural_memory.train import build_parser, configure
from neural_memory.train import main as train_main
from neural_memory.training import TrainConfig, model_config_for, run_training, train

F64 = torch.float64
SMALL = {"input_size": 3, "output_size": 2, "controller_size": 5, "memory_rows": 5,
         "memory_width": 3, "read_heads": 2}  # fmt: skip


def _model(seed: int = 0, **overrides) -> DNC:
    torch.manual_seed(seed)
    return DNC(DNCConfig(**{**SMALL, **overrides})).double()


def _x(batch: int, steps: int, width: int = 3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, steps, width, generator=gen, dtype=F64)


# ----------------------------------------------------------------------------- vs naive

NAIVE_CASES = {
    "defaults": {},
    "2 layers, 3 read heads, no clipping": {
        "controller_layers": 2, "read_heads": 3, "clip_controller": None,
    },
    "one read head, tight clip, memory starting at 0.1": {
        "read_heads": 1, "clip_controller": 0.5, "memory_init_value": 0.1,
    },
}  # fmt: skip


@pytest.mark.parametrize("case", list(NAIVE_CASES))
def test_forward_matches_naive_formulation(case: str) -> None:
    model = _model(1, **NAIVE_CASES[case])
    x = _x(2, 4)
    logits, trace = model(x, return_trace=True)
    want_logits, want = naive.dnc_forward(model, x)
    torch.testing.assert_close(logits, want_logits, rtol=1e-12, atol=1e-12)
    for name, value in want.items():
        torch.testing.assert_close(getattr(trace, name), value, rtol=1e-12, atol=1e-12, msg=name)


def test_gradients_match_naive_formulation() -> None:
    model = _model(2, controller_layers=2)
    x = _x(2, 4)
    target = torch.rand(2, 4, 2, dtype=F64)

    def grads(run) -> list[torch.Tensor]:
        model.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(run(x), target).backward()
        return [p.grad.clone() for p in model.parameters()]

    fast = grads(model)
    slow = grads(lambda inp: naive.dnc_forward(model, inp)[0])
    for (name, _), a, b in zip(model.named_parameters(), fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=name)


def test_gradcheck_through_the_machine() -> None:
    model = _model(3, memory_rows=4, controller_size=3)
    x = _x(2, 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda inp: model(inp), (x,))


def test_batch_elements_are_independent() -> None:
    model = _model(4)
    x = _x(3, 6)
    together = model(x)
    for b in range(3):
        torch.testing.assert_close(model(x[b : b + 1])[0], together[b])


# ----------------------------------------------------------------------------- by hand


def test_two_steps_by_hand() -> None:
    """Every weight 0, so the controller output is 0 and the interface is its bias, set part by
    part; check allocation, write, links and reads over two steps in plain arithmetic.

    Memory rows start at (0.5, 0.5). Allocation and write gates ~1, erase ~1, write vector
    v = (0.5, -0.25): step 1 writes v to row 0, step 2 to row 1. The read head's key is 2v
    (cosine 1 with v, 1/sqrt(10) with (0.5, 0.5)), strength 3, read modes (0, 1/2, 1/2): half
    content, half forward; free gate ~0. The output is the first entry of the read vector.
    """
    cfg = DNCConfig(input_size=1, output_size=1, controller_size=2, memory_rows=3,
                    memory_width=2, read_heads=1, clip_controller=None, memory_init_value=0.5)
    model = DNC(cfg).double()
    assert cfg.interface_size == 2 + 1 + 2 + 1 + 2 + 2 + 1 + 1 + 1 + 3
    parts = [
        [1.0, -0.5],  # read key k^r (no activation)
        [math.log(math.expm1(2.0))],  # read strength: oneplus -> 3
        [0.0, 1.0],  # write key (all rows alike: the content weighting is uniform anyway)
        [0.0],  # write strength
        [40.0, 40.0],  # erase: sigmoid -> 1
        [0.5, -0.25],  # write vector v (no activation)
        [-40.0],  # free gate: sigmoid -> ~0
        [40.0],  # allocation gate -> 1
        [40.0],  # write gate -> 1
        [-40.0, 0.0, 0.0],  # read modes (backward, content, forward) -> (0, 1/2, 1/2)
    ]  # fmt: skip
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.interface.bias.copy_(torch.tensor([v for part in parts for v in part]))
        model.read_output.weight.copy_(torch.tensor([[1.0, 0.0]]))  # y = r[0]
    logits, trace = model(torch.zeros(1, 2, 1, dtype=F64), return_trace=True)

    v, rest = [0.5, -0.25], [0.5, 0.5]
    cos_rest = 1 / math.sqrt(10)  # cosine of 2v with (0.5, 0.5)

    def softmax(xs: list[float]) -> list[float]:
        e = [math.exp(x) for x in xs]
        return [x / sum(e) for x in e]

    def read(w: list[float], rows: list[list[float]]) -> list[float]:
        return [sum(w[i] * rows[i][j] for i in range(3)) for j in range(2)]

    # step 1: empty memory, allocation -> row 0; no links yet, so only content reads
    rows1 = [v, rest, rest]
    c1 = softmax([3 * 1.0, 3 * cos_rest, 3 * cos_rest])
    w_r1 = [0.5 * c for c in c1]
    # step 2: row 0 used, allocation -> row 1; link row 1 <- row 0; forward from w_r1 is
    # w_r1[0] on row 1
    rows2 = [v, v, rest]
    c2 = softmax([3 * 1.0, 3 * 1.0, 3 * cos_rest])
    w_r2 = [0.5 * c2[0], 0.5 * c2[1] + 0.5 * w_r1[0], 0.5 * c2[2]]
    link2 = [[0.0] * 3 for _ in range(3)]
    link2[1][0] = 1.0

    def check(got: torch.Tensor, want) -> None:
        torch.testing.assert_close(got, torch.tensor(want, dtype=F64), rtol=0, atol=1e-7)

    check(trace.usage[0], [[0, 0, 0], [1, 0, 0]])
    check(trace.allocation[0], [[1, 0, 0], [0, 1, 0]])
    check(trace.write_weights[0, :, 0], [[1, 0, 0], [0, 1, 0]])
    check(trace.memory[0], [[rest] * 3, rows1, rows2])
    check(trace.precedence[0], [[1, 0, 0], [0, 1, 0]])
    check(trace.link[0], [[[0.0] * 3] * 3, link2])
    check(trace.forward[0, :, 0], [[0, 0, 0], [0, w_r1[0], 0]])
    check(trace.backward[0, :, 0], [[0, 0, 0], [w_r1[1], 0, 0]])
    check(trace.read_weights[0, :, 0], [w_r1, w_r2])
    check(trace.read_vectors[0, :, 0], [read(w_r1, rows1), read(w_r2, rows2)])
    check(logits[0, :, 0], [read(w_r1, rows1)[0], read(w_r2, rows2)[0]])


def test_the_trace_agrees_with_the_pure_functions_step_by_step() -> None:
    """Each step's recorded weightings are what the public (checked) functions give from the
    previous step's: the model's unchecked step computes the paper's equations, and its values
    stay in the ranges the checks demand."""
    model = _model(5, read_heads=3, memory_rows=6)
    x = _x(2, 7)
    _, tr = model(x, return_trace=True)
    xi = tr.interface
    b, n, r = 2, 6, 3
    u, p = torch.zeros(b, n, dtype=F64), torch.zeros(b, n, dtype=F64)
    link, w_w, w_r = torch.zeros(b, n, n, dtype=F64), torch.zeros(b, n, dtype=F64), torch.zeros(b, r, n, dtype=F64)
    close = {"rtol": 1e-12, "atol": 1e-12}
    for t in range(7):
        u = usage(u, w_w, retention(xi.free_gates[:, t], w_r))
        torch.testing.assert_close(tr.usage[:, t], u, **close)
        torch.testing.assert_close(tr.allocation[:, t], allocation_weights(u), **close)
        w_w = write_weights(tr.write_content[:, t], tr.allocation[:, t], xi.allocation_gate[:, t],
                            xi.write_gate[:, t])  # fmt: skip
        torch.testing.assert_close(tr.write_weights[:, t, 0], w_w, **close)
        link = link_matrix(link, w_w, p)
        p = precedence(p, w_w)
        torch.testing.assert_close(tr.link[:, t], link, **close)
        torch.testing.assert_close(tr.precedence[:, t], p, **close)
        fwd, bwd = directional_weights(link, w_r)
        torch.testing.assert_close(tr.forward[:, t], fwd, **close)
        torch.testing.assert_close(tr.backward[:, t], bwd, **close)
        w_r = read_weights(tr.read_content[:, t], fwd, bwd, xi.read_modes[:, t])
        torch.testing.assert_close(tr.read_weights[:, t], w_r, **close)
        torch.testing.assert_close(tr.read_vectors[:, t], w_r @ tr.memory[:, t + 1], **close)


# ----------------------------------------------------------------------------- shapes


def test_trace_shapes() -> None:
    model = _model(6, controller_layers=2)
    batch, steps, n, m, r = 4, 6, 5, 3, 2
    logits, trace = model(_x(batch, steps), return_trace=True)
    assert logits.shape == (batch, steps, 2)
    assert isinstance(trace, DNCTrace)
    shapes = {
        "read_weights": (batch, steps, r, n), "write_weights": (batch, steps, 1, n),
        "memory": (batch, steps + 1, n, m), "read_vectors": (batch, steps, r, m),
        "usage": (batch, steps, n), "allocation": (batch, steps, n),
        "write_content": (batch, steps, n), "read_content": (batch, steps, r, n),
        "forward": (batch, steps, r, n), "backward": (batch, steps, r, n),
        "precedence": (batch, steps, n), "link": (batch, steps, n, n),
        "controller_output": (batch, steps, 2 * 5),
    }  # fmt: skip
    for name, shape in shapes.items():
        assert getattr(trace, name).shape == shape, name
    assert isinstance(trace.interface, DNCInterface)
    assert trace.interface.read_keys.shape == (batch, steps, r, m)
    assert trace.interface.read_modes.shape == (batch, steps, r, 3)
    assert trace.interface.write_gate.shape == (batch, steps, 1)
    torch.testing.assert_close(trace.memory[:, 0], torch.full((batch, n, m), 1e-6, dtype=F64))
    torch.testing.assert_close(model(_x(batch, steps)), logits)  # the trace changes nothing


@pytest.mark.parametrize("task_name", sorted(TASKS))
def test_every_task_runs_and_trains(task_name: str) -> None:
    task = get_task(task_name)
    config = model_config_for(task, "dnc", "tiny")
    assert (config.input_size, config.output_size) == (task.input_size, task.output_size)
    torch.manual_seed(0)
    model = DNC(config)
    batch = task.sample(2, torch.Generator().manual_seed(0))
    logits = model(batch.inputs)
    assert logits.shape == batch.targets.shape and torch.isfinite(logits).all()
    loop = train(model, task, TrainConfig.preset("tiny", sequences=4, batch_size=2, log_every=2))
    assert loop.seen == 4 and all(math.isfinite(row[1]) for row in loop.rows)


# ----------------------------------------------------------------------------- presets


def _count(cfg: DNCConfig) -> int:
    """LSTM layers, the interface layer W_xi, the output layers W_y (with bias) and W_r."""
    c, rm = cfg.controller_size, cfg.read_heads * cfg.memory_width
    lstm = 4 * c * (cfg.input_size + rm + c) + 4 * c
    lstm += (cfg.controller_layers - 1) * (4 * c * (2 * c) + 4 * c)
    out = cfg.controller_layers * c
    return lstm + (out + 1) * cfg.interface_size + (out + 1) * cfg.output_size + rm * cfg.output_size


def test_presets() -> None:
    assert DNCConfig.preset_names() == ["small", "tiny", "multi_copy"]
    assert DNCConfig.preset("multi_copy") == DNCConfig.preset("small", memory_rows=16)
    small = DNCConfig.preset("small")
    assert (small.controller_size, small.memory_rows, small.memory_width, small.read_heads) == (
        100, 64, 20, 2,
    )  # fmt: skip
    assert (small.input_size, small.output_size) == (9, 8)  # the copy task's channels
    counts = {}
    for name in DNCConfig.preset_names():
        cfg = DNCConfig.preset(name)
        model = DNC(cfg)
        counts[name] = sum(p.numel() for p in model.parameters())
        assert counts[name] == _count(cfg)
        assert model(torch.rand(2, 3, 9)).shape == (2, 3, 8)
    assert counts == {"small": 72_541, "tiny": 8_048, "multi_copy": 72_541}  # rows hold no weights
    assert _count(DNCConfig.preset("small", controller_layers=2)) == sum(
        p.numel() for p in DNC(DNCConfig.preset("small", controller_layers=2)).parameters()
    )
    assert DNCConfig.preset("tiny", memory_rows=4).memory_rows == 4
    assert interface_size(20, 2) == DNCConfig.preset("small").interface_size == 113
    with pytest.raises(ValueError, match="unknown DNC preset 'copy'"):
        DNCConfig.preset("copy")
    with pytest.raises(ValueError, match="unknown DNCConfig field"):
        DNCConfig.preset("tiny", write_heads=2)
    with pytest.raises(AttributeError):
        DNCConfig.preset("tiny").memory_rows = 3  # type: ignore[misc]


BAD_CONFIGS = [
    ({"input_size": 0}, "input_size must be an integer >= 1"),
    ({"memory_rows": 0}, "memory_rows must be an integer >= 1"),
    ({"memory_width": -2}, "memory_width"),
    ({"read_heads": 0}, "read_heads must be an integer >= 1"),
    ({"controller_size": True}, "controller_size"),
    ({"controller_layers": 1.5}, "controller_layers"),
    ({"clip_controller": 0.0}, "clip_controller must be None or a number > 0"),
    ({"clip_controller": "20"}, "clip_controller"),
    ({"memory_init_value": float("nan")}, "memory_init_value must be a finite number"),
    ({"memory_init_value": None}, "memory_init_value"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_bad_config_values_raise(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DNCConfig(**{**SMALL, **bad})


def test_bad_inputs_raise() -> None:
    model = _model(7)
    with pytest.raises(ValueError, match="input width 4"):
        model(torch.zeros(2, 3, 4, dtype=F64))
    with pytest.raises(ValueError, match="2 dimensions"):
        model(torch.zeros(3, 3, dtype=F64))
    with pytest.raises(ValueError, match="T >= 1"):
        model(torch.zeros(2, 0, 3, dtype=F64))
    with pytest.raises(ValueError, match="must be a tensor"):
        model([[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="DNC expects a DNCConfig"):
        DNC(NTMConfig(input_size=3, output_size=2))


# ----------------------------------------------------------------------------- registry, disk


def test_the_registry_builds_a_dnc() -> None:
    assert "dnc" in MODEL_KINDS
    assert isinstance(build_model("dnc", DNCConfig.preset("tiny")), DNC)
    with pytest.raises(ValueError, match="a 'dnc' model needs a DNCConfig"):
        build_model("dnc", NTMConfig.preset("tiny"))
    assert neural_memory.DNC is DNC and neural_memory.DNCConfig is DNCConfig


def test_checkpoint_round_trip(tmp_path) -> None:
    torch.manual_seed(8)
    cfg = DNCConfig.preset("tiny")
    model = DNC(cfg)
    path = tmp_path / "copy-dnc.pt"
    save_checkpoint(path, model, cfg, task="copy", model_kind="dnc", seed=8, sequences_seen=0)
    ckpt = load_checkpoint(path, cfg, task="copy", model_kind="dnc")
    assert isinstance(ckpt.model, DNC) and ckpt.config == cfg
    assert json.loads(path.with_suffix(".json").read_text())["config"]["read_heads"] == 1
    x = torch.rand(2, 5, 9)
    torch.testing.assert_close(ckpt.model(x), model(x), rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="read_heads: checkpoint=1, expected=2"):
        load_checkpoint(path, DNCConfig.preset("tiny", read_heads=2))


def test_the_command_line_defaults_for_the_dnc() -> None:
    args = build_parser().parse_args(["--task", "repeat_copy", "--model", "dnc"])
    preset, config, recipe, out = configure(args)
    assert preset == "small" and config == DNCConfig.preset("small", input_size=10, output_size=9)
    assert recipe == TrainConfig.preset("repeat_copy-dnc") and recipe.lr == 1e-4
    assert str(out) == "runs/repeat_copy-dnc"


TINY = ["--preset", "tiny", "--recipe", "tiny", "--no-progress"]


def test_train_resume_and_evaluate_through_the_command_line(tmp_path, capsys) -> None:
    """An uninterrupted run, and one stopped after 16 sequences (a checkpoint) then resumed with
    ``--resume``, end with bit-identical weights; the evaluation reads the checkpoint."""
    full, part = tmp_path / "full", tmp_path / "part"
    assert train_main(["--task", "copy", "--model", "dnc", "--out", str(full), "--seed", "3", *TINY]) == 0
    task = get_task("copy")
    run_training("copy", "dnc", model_config_for(task, "dnc", "tiny"), TrainConfig.preset("tiny"),
                 part, seed=3, progress=False, stop_after=16, preset="tiny", recipe="tiny")
    assert load_checkpoint(part / "copy-dnc.pt").manifest["sequences_seen"] == 16
    torch.manual_seed(12345)  # disturb the global RNG: resume must restore it
    assert train_main(["--task", "copy", "--model", "dnc", "--out", str(part), "--seed", "3",
                       *TINY, "--resume"]) == 0  # fmt: skip
    a = load_checkpoint(full / "copy-dnc.pt", task="copy", model_kind="dnc")
    b = load_checkpoint(part / "copy-dnc.pt", task="copy", model_kind="dnc")
    assert a.manifest["sequences_seen"] == b.manifest["sequences_seen"] == 32
    assert a.config == DNCConfig.preset("tiny") and a.manifest["preset"] == "tiny"
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert a.manifest["metrics"]["eval_cost_bits"] == b.manifest["metrics"]["eval_cost_bits"]
    capsys.readouterr()
    assert evaluate_main(["--task", "copy", "--model", "dnc", "--checkpoint", str(full / "copy-dnc.pt"),
                          "--length", "4", "--sequences", "2", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "dnc" and result["sequences_seen"] == 32
    assert evaluate_main(["--task", "repeat_copy", "--model", "dnc",
                          "--checkpoint", str(full / "copy-dnc.pt")]) == 2  # fmt: skip
    assert "task='copy', expected 'repeat_copy'" in capsys.readouterr().err
