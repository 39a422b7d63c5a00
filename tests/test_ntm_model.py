"""The NTM: against the naive per-sequence, per-head formulation, by hand, shapes, options, errors."""

from __future__ import annotations

import math
import os

import ntm_naive as naive
import pytest
import torch

from neural_memory.ntm import (
    NTM,
    PAPER_LEARNING_RATES,
    FeedforwardController,
    LSTMController,
    NTMConfig,
    NTMHeads,
    NTMTrace,
    shift_index,
)

F64 = torch.float64
SMALL = {"input_size": 3, "output_size": 2, "controller_size": 6, "memory_rows": 7, "memory_width": 4}


def _model(seed: int = 0, **overrides) -> NTM:
    torch.manual_seed(seed)
    return NTM(NTMConfig(**{**SMALL, **overrides})).double()


def _x(batch: int, steps: int, width: int = 3, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, steps, width, generator=gen, dtype=F64)


# ----------------------------------------------------------------------------- vs naive

NAIVE_CASES = {
    "paper-like": {},
    "2 layers, 2R 1W, K=5": {
        "controller_layers": 2, "read_heads": 2, "write_heads": 1, "num_shifts": 5,
    },
    "feedforward 3R 2W, all options flipped": {
        "controller": "feedforward", "read_heads": 3, "write_heads": 2,
        "split_head_layers": False, "output_from_reads": False, "clip_controller": None,
        "memory_init": "learned", "learn_initial_reads": False, "learn_initial_weights": False,
    },
    "random memory, tight clip": {"memory_init": "random", "clip_controller": 0.5},
}  # fmt: skip


@pytest.mark.parametrize("case", list(NAIVE_CASES))
def test_forward_matches_naive_formulation(case: str) -> None:
    """The vectorised NTM gives the results of the straightforward formulation."""
    model = _model(1, **NAIVE_CASES[case])
    x = _x(3, 5)
    logits, trace = model(x, return_trace=True)
    want_logits, want = naive.ntm_forward(model, x)
    torch.testing.assert_close(logits, want_logits, rtol=1e-12, atol=1e-12)
    for name in ("read_weights", "write_weights", "memory"):
        torch.testing.assert_close(getattr(trace, name), want[name], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("writes", [1, 2])
def test_gradients_match_naive_formulation(writes: int) -> None:
    model = _model(2, read_heads=2, write_heads=writes)
    x = _x(2, 4)
    target = torch.rand(2, 4, 2, dtype=F64)

    def grads(run) -> list[torch.Tensor]:
        model.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(run(x), target)
        loss.backward()
        return [p.grad.clone() for p in model.parameters()]

    fast = grads(model)
    slow = grads(lambda inp: naive.ntm_forward(model, inp)[0])
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_gradcheck_through_the_machine() -> None:
    model = _model(3, read_heads=2, write_heads=2, memory_rows=5, memory_width=3)
    x = _x(2, 3).requires_grad_()
    assert torch.autograd.gradcheck(lambda inp: model(inp), (x,))


def test_batch_elements_are_independent() -> None:
    model = _model(4, read_heads=2)
    x = _x(4, 6)
    together = model(x)
    for b in range(4):
        torch.testing.assert_close(model(x[b : b + 1])[0], together[b])


# ----------------------------------------------------------------------------- by hand


def _atanh(v: float) -> float:
    return 0.5 * math.log((1 + v) / (1 - v))


def _softplus_inverse(v: float) -> float:
    return math.log(math.expm1(v))


def test_one_step_by_hand() -> None:
    """Head parameters set through the biases (every weight 0); check r_1, M_1, y_1 by hand.

    Memory rows (1, 0), (0, 1), (-1, 0). The read head's key points along (1, 0) with beta = 2,
    the write head's along (0, 1) with beta = 3; gates ~1, no shift (K = 1), gamma ~1.
    """
    cfg = NTMConfig(
        input_size=1, output_size=1, controller="feedforward", controller_size=2,
        memory_rows=3, memory_width=2, num_shifts=1, clip_controller=None,
        learn_initial_reads=False, learn_initial_weights=False, split_head_layers=False,
    )  # fmt: skip
    model = NTM(cfg).double()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.memory_init.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
        bias = {
            "key": torch.tensor([30.0, 0.0, 0.0, 30.0]),  # read (1, 0); write (0, 1) after tanh
            "beta": torch.tensor([_softplus_inverse(2.0), _softplus_inverse(3.0)]),
            "gamma": torch.tensor([-40.0, -40.0]),  # gamma = 1 + softplus(-40) ~ 1
            "gate": torch.tensor([40.0, 40.0]),  # g ~ 1: content only
            "shift": torch.tensor([0.0, 0.0]),  # K = 1: the only shift is 0
            "erase": torch.tensor([40.0, -40.0]),  # erase column 0 fully, column 1 not at all
            "add": torch.tensor([_atanh(0.5), _atanh(-0.25)]),
        }
        model.heads.linear.bias.copy_(model.heads._interleave(bias))
        model.output.weight.copy_(torch.tensor([[0.0, 0.0, 1.0, 0.0]]))  # y = r(0)
    logits, trace = model(torch.zeros(1, 1, 1, dtype=F64), return_trace=True)

    e2 = [math.exp(2 * c) for c in (1.0, 0.0, -1.0)]  # read head: cosines 1, 0, -1
    w_read = [v / sum(e2) for v in e2]
    e3 = [math.exp(3 * c) for c in (0.0, 1.0, 0.0)]  # write head: cosines 0, 1, 0
    w_write = [v / sum(e3) for v in e3]
    rows = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]
    read = [sum(w_read[i] * rows[i][j] for i in range(3)) for j in range(2)]
    written = [
        [rows[i][0] * (1 - w_write[i]) + w_write[i] * 0.5, rows[i][1] + w_write[i] * -0.25]
        for i in range(3)
    ]

    tol = {"rtol": 0, "atol": 1e-7}  # the eps = 1e-8 in the cosine's denominator
    torch.testing.assert_close(trace.read_weights[0, 0, 0], torch.tensor(w_read, dtype=F64), **tol)
    torch.testing.assert_close(trace.write_weights[0, 0, 0], torch.tensor(w_write, dtype=F64), **tol)
    torch.testing.assert_close(trace.read_vectors[0, 0, 0], torch.tensor(read, dtype=F64), **tol)
    torch.testing.assert_close(trace.memory[0, 1], torch.tensor(written, dtype=F64), **tol)
    torch.testing.assert_close(logits[0, 0, 0], torch.tensor(read[0], dtype=F64), **tol)


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize(("reads", "writes"), [(1, 1), (2, 1), (3, 2)])
def test_shapes_and_trace(reads: int, writes: int) -> None:
    model = _model(5, read_heads=reads, write_heads=writes, controller_layers=2)
    batch, steps = 4, 6
    logits, trace = model(_x(batch, steps), return_trace=True)
    n, m, h = 7, 4, reads + writes
    assert logits.shape == (batch, steps, 2)
    assert isinstance(trace, NTMTrace)
    assert trace.read_weights.shape == (batch, steps, reads, n)
    assert trace.write_weights.shape == (batch, steps, writes, n)
    assert trace.memory.shape == (batch, steps + 1, n, m)
    assert trace.read_vectors.shape == (batch, steps, reads, m)
    assert trace.controller_output.shape == (batch, steps, 6)
    for stage in trace.stages:
        assert stage.shape == (batch, steps, h, n)
        assert (stage >= 0).all()
        torch.testing.assert_close(stage.sum(-1), torch.ones(batch, steps, h, dtype=F64))
    assert trace.heads.key.shape == (batch, steps, h, m)
    assert trace.heads.shift.shape == (batch, steps, h, 3)
    assert trace.heads.erase.shape == (batch, steps, writes, m)
    torch.testing.assert_close(trace.memory[:, 0], model.initial_memory().expand(batch, n, m))
    torch.testing.assert_close(model(_x(batch, steps)), logits)  # trace does not change it


# ----------------------------------------------------------------------------- options

OPTIONS = [
    {"controller": "feedforward"},
    {"controller_layers": 3},
    {"output_from_reads": False},
    {"split_head_layers": False},
    {"clip_controller": None},
    {"clip_controller": 1.0},
    {"memory_init": "constant"},
    {"memory_init": "learned"},
    {"memory_init": "random"},
    {"learn_initial_reads": False},
    {"learn_initial_weights": False},
    {"num_shifts": 1},
    {"num_shifts": 7},
    {"read_heads": 2, "write_heads": 3},
]


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_every_option_runs_forward_and_backward(option: dict) -> None:
    torch.manual_seed(6)
    model = NTM(NTMConfig(**{**SMALL, **option}))
    logits = model(torch.rand(3, 5, 3))
    assert logits.shape == (3, 5, 2) and torch.isfinite(logits).all()
    logits.square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    learned = dict(model.named_parameters())
    assert ("memory_init" in learned) == (option.get("memory_init") == "learned")
    assert ("read_init" in learned) == option.get("learn_initial_reads", True)
    assert ("weight_init" in learned) == option.get("learn_initial_weights", True)


def test_constant_memory_init_and_fixed_initial_state() -> None:
    model = _model(7, learn_initial_reads=False, learn_initial_weights=False)
    torch.testing.assert_close(model.initial_memory(), torch.full((7, 4), 1e-6, dtype=F64))
    torch.testing.assert_close(model.initial_reads(), torch.zeros(1, 4, dtype=F64))
    w0 = torch.zeros(2, 7, dtype=F64)
    w0[:, 0] = 1
    torch.testing.assert_close(model.initial_weights(), w0)


def test_split_and_sliced_heads_compute_the_same_function() -> None:
    split = _model(8, split_head_layers=True, read_heads=2, write_heads=2)
    sliced = NTM(NTMConfig(**{**split.config.__dict__, "split_head_layers": False})).double()
    sliced.load_state_dict(split.state_dict(), strict=False)  # everything but the head layers
    weight, bias = split.heads.fused_weight()
    with torch.no_grad():
        sliced.heads.linear.weight.copy_(weight)
        sliced.heads.linear.bias.copy_(bias)
    x = _x(2, 5)
    torch.testing.assert_close(sliced(x), split(x))
    per_kind = split.heads.parameter_weights()
    for name, layer in split.heads.layers.items():  # the fused layout round-trips
        torch.testing.assert_close(per_kind[name][0], layer.weight)
        torch.testing.assert_close(per_kind[name][1], layer.bias)


def test_split_heads_have_their_own_initialisation() -> None:
    torch.manual_seed(9)
    heads = NTMHeads(100, 20, 1, 1, split=True)
    for layer in heads.layers.values():
        assert (layer.bias == 0).all()
        bound = math.sqrt(6 / (100 + layer.out_features))  # Xavier-uniform
        assert layer.weight.abs().max() <= bound
    params = heads(torch.randn(5, 100))
    assert params.key.shape == (5, 2, 20) and params.erase.shape == (5, 1, 20)
    assert (params.beta >= 0).all() and (params.gamma >= 1).all()
    assert ((params.gate > 0) & (params.gate < 1)).all()
    torch.testing.assert_close(params.shift.sum(-1), torch.ones(5, 2))


def test_lstm_controller_matches_torch_lstm_cell() -> None:
    torch.manual_seed(10)
    ours = LSTMController(input_size=7, hidden_size=5, num_layers=1, external_size=3)
    ref = torch.nn.LSTMCell(7, 5)
    w, b = ours.weights[0], ours.biases[0]
    i, f, o, g = w[:, :7].chunk(4)  # our gate order: input, forget, output, candidate
    with torch.no_grad():
        ref.weight_ih.copy_(torch.cat([i, f, g, o]))  # torch's: input, forget, candidate, output
        i, f, o, g = w[:, 7:].chunk(4)
        ref.weight_hh.copy_(torch.cat([i, f, g, o]))
        i, f, o, g = b.chunk(4)
        ref.bias_ih.copy_(torch.cat([i, f, g, o]))
        ref.bias_hh.zero_()
    state = ours.initial_state(4)
    hx = (torch.zeros(4, 5), torch.zeros(4, 5))
    for _ in range(3):
        inp = torch.randn(4, 7)
        h, state = ours.step(inp, state)
        hx = ref(inp, hx)
        torch.testing.assert_close(h, hx[0])
        torch.testing.assert_close(state[1], hx[1])


@pytest.mark.parametrize("cls", [LSTMController, FeedforwardController])
def test_controller_step_projected_equals_step(cls) -> None:
    torch.manual_seed(11)
    ctrl = cls(input_size=6, hidden_size=4, num_layers=2, external_size=2)
    inp = torch.randn(3, 6)
    state = ctrl.initial_state(3)
    out, new = ctrl.step(inp, state)
    out2, new2 = ctrl.step_projected(ctrl.project_external(inp[:, :2]), inp[:, 2:], state)
    torch.testing.assert_close(out, out2)
    assert out.shape == (3, 4) and len(new) == len(new2)


def test_shift_index() -> None:
    idx = shift_index(5, 3)
    assert idx.tolist()[0] == [1, 0, 4]  # shifts -1, 0, +1 carry rows 1, 0, 4 into row 0
    with pytest.raises(ValueError, match="odd"):
        shift_index(5, 4)


# ----------------------------------------------------------------------------- presets


def test_presets_load_and_run() -> None:
    assert set(NTMConfig.preset_names()) == {
        "copy", "repeat_copy", "associative_recall", "priority_sort", "tiny",
        "copy-row0", "repeat_copy-row0", "associative_recall-row0", "priority_sort-row0",
        "copy-row0-gamma2", "multi_copy",
    }  # fmt: skip
    channels = {
        "copy": (9, 8), "repeat_copy": (10, 9), "associative_recall": (8, 6),
        "priority_sort": (10, 8), "tiny": (9, 8), "multi_copy": (9, 8),
    }  # fmt: skip
    channels.update({f"{k}-row0": v for k, v in channels.items() if k != "tiny"})
    channels["copy-row0-gamma2"] = channels["copy"]
    for name in NTMConfig.preset_names():
        cfg = NTMConfig.preset(name)
        assert (cfg.input_size, cfg.output_size) == channels[name]
        torch.manual_seed(0)
        logits = NTM(cfg)(torch.rand(2, 3, cfg.input_size))
        assert logits.shape == (2, 3, cfg.output_size)
    for task in ("copy", "repeat_copy", "associative_recall", "priority_sort"):
        row0 = NTMConfig.preset(f"{task}-row0")
        assert row0 == NTMConfig.preset(task, learn_initial_weights=False)
    # the benchmark's and the shipped copy NTM: row 0, sharpening bounded at 2
    assert NTMConfig.preset("copy-row0-gamma2") == NTMConfig.preset("copy-row0", gamma_max=2.0)
    # the multi-copy NTM: the copy NTM with 16 rows, fewer than a sequence's vectors
    assert NTMConfig.preset("multi_copy") == NTMConfig.preset("copy", memory_rows=16)
    copy = NTMConfig.preset("copy")
    assert (copy.controller, copy.controller_size, copy.memory_rows, copy.memory_width) == (
        "lstm", 100, 128, 20,
    )  # fmt: skip
    assert (copy.read_heads, copy.write_heads) == (1, 1)
    sort = NTMConfig.preset("priority_sort")
    assert (sort.read_heads, sort.write_heads, sort.controller_layers) == (5, 5, 2)
    assert set(PAPER_LEARNING_RATES) == set(NTMConfig.preset_names()) - {"tiny", "multi_copy"} - {
        n for n in NTMConfig.preset_names() if "-row0" in n
    }
    over = NTMConfig.preset("copy", input_size=4, output_size=3, memory_rows=32)
    assert (over.input_size, over.output_size, over.memory_rows) == (4, 3, 32)


def test_preset_errors() -> None:
    with pytest.raises(ValueError, match="unknown NTM preset"):
        NTMConfig.preset("sort")
    with pytest.raises(ValueError, match="unknown NTMConfig field"):
        NTMConfig.preset("copy", memory_size=3)


def test_config_is_frozen() -> None:
    cfg = NTMConfig.preset("tiny")
    with pytest.raises(AttributeError):
        cfg.memory_rows = 3  # type: ignore[misc]


# ----------------------------------------------------------------------------- errors

BAD_CONFIGS = [
    ({"input_size": 0}, "input_size"),
    ({"memory_rows": -1}, "memory_rows"),
    ({"read_heads": 0}, "read_heads"),
    ({"write_heads": 1.5}, "write_heads"),
    ({"controller_size": True}, "controller_size"),
    ({"controller": "gru"}, "controller"),
    ({"memory_init": "zeros"}, "memory_init"),
    ({"num_shifts": 2}, "odd"),
    ({"num_shifts": 9}, "at least K = 9"),
    ({"clip_controller": 0.0}, "clip_controller"),
    ({"output_from_reads": 1}, "output_from_reads"),
    ({"gamma_max": 1.0}, "gamma_max"),
    ({"gamma_max": float("nan")}, "gamma_max"),
    ({"gamma_max": "3"}, "gamma_max"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_CONFIGS, ids=[m for _, m in BAD_CONFIGS])
def test_bad_config_values_raise(bad: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        NTMConfig(**{**SMALL, **bad})


def test_bad_inputs_raise() -> None:
    model = _model(12)
    with pytest.raises(ValueError, match="input width 4"):
        model(torch.zeros(2, 3, 4, dtype=F64))
    with pytest.raises(ValueError, match="2 dimensions"):
        model(torch.zeros(3, 3, dtype=F64))
    with pytest.raises(ValueError, match="T >= 1"):
        model(torch.zeros(2, 0, 3, dtype=F64))
    with pytest.raises(ValueError, match="tensor"):
        model([[0.0, 0.0, 0.0]])
    with pytest.raises(ValueError, match="NTMConfig"):
        NTM({"input_size": 3})
    with pytest.raises(ValueError, match=r"\(B, 6\)"):
        model.heads(torch.zeros(2, 5, dtype=F64))


# ----------------------------------------------------------------------------- compile


def test_a_compiled_model_compiles_every_step_but_the_first_with_one_input_stride() -> None:
    """The first step (initial state: broadcast views, no gradient) runs plainly; the later ones
    go through the compiled step, and their x_proj has the same stride whatever the length is --
    so that lengths, batch sizes and grad modes do not run into dynamo's recompile limit (they
    did, on a GPU: benchmarks/results/gpu-throughput-recompile-limit.log). No real compiling
    here: a recording stand-in takes the compiled step's place."""
    torch.manual_seed(14)
    model = NTM(NTMConfig.preset("tiny"))
    seen = []

    def recording_step(x_proj, *rest):
        seen.append(x_proj.stride())
        return model._step(x_proj, *rest)

    x = torch.rand(3, 5, 9)
    plain = model(x)
    model._compiled_step = recording_step
    strides = set()
    for steps in (5, 8):
        seen.clear()
        model(torch.rand(3, steps, 9))
        assert len(seen) == steps - 1
        strides |= set(seen)
    assert len(strides) == 1 and strides.pop()[1] == 1  # one (B, G) layout for both lengths
    torch.testing.assert_close(model(x), plain)


@pytest.mark.parametrize("mode", ["reduce-overhead", "max-autotune"])
def test_compile_step_refuses_the_cuda_graph_modes(mode) -> None:
    with pytest.raises(ValueError, match="CUDA graph"):
        NTM(NTMConfig.preset("tiny")).compile_step(mode=mode)


# ----------------------------------------------------------------------------- compile (opt-in)


@pytest.mark.skipif(
    os.environ.get("NEURAL_MEMORY_TEST_COMPILE") != "1",
    reason="slow (torch.compile takes tens of seconds); set NEURAL_MEMORY_TEST_COMPILE=1",
)
def test_compiled_step_matches_the_plain_step() -> None:
    torch.manual_seed(13)
    model = NTM(NTMConfig.preset("tiny", read_heads=2))
    x = torch.rand(4, 6, 9)

    def run() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        logits = model(x)
        logits.square().mean().backward()
        return logits.detach(), [p.grad.clone() for p in model.parameters()]

    plain, plain_grads = run()
    model.compile_step()
    compiled, compiled_grads = run()
    torch.testing.assert_close(compiled, plain, rtol=1e-4, atol=1e-5)
    for a, b in zip(compiled_grads, plain_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
    _, trace = model(x, return_trace=True)
    assert trace.memory.shape == (4, 7, 16, 8)
    for b in (1, 8, 32, 128):  # new models, both grad modes: within dynamo's recompile limit
        other = NTM(NTMConfig.preset("tiny", read_heads=2)).compile_step()
        other(torch.rand(b, 3, 9)).sum().backward()
        with torch.no_grad():
            other.eval()(torch.rand(b, 4, 9))
