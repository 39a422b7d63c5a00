"""The fused C++ unroll (neural_memory.ntm.fused) against the plain PyTorch path.

The plain path is itself tested against a naive per-sequence, per-head formulation
(test_ntm_model.py); here the fused forward pass and its hand-written backward must give the
same logits and the same gradient of every parameter, and the backward must pass a numerical
gradient check.
"""

from __future__ import annotations

import dataclasses
import re

import pytest
import torch

from neural_memory.ntm import NTM, NTMConfig
from neural_memory.ntm.fused import (
    ANY_VALUE,
    SUPPORTED_VALUES,
    FusedUnsupported,
    _FusedUnroll,
    _Meta,
    check_supported,
    fused_available,
    load_extension,
)

pytestmark = pytest.mark.skipif(
    not fused_available(), reason="the fused extension needs a C++ compiler and ninja"
)

CONFIGS = {
    "tiny": {},
    "feedforward-2": {"controller": "feedforward", "controller_layers": 2},
    "lstm-2-heads-2r3w-k5": {"controller_layers": 2, "read_heads": 2, "write_heads": 3,
                             "num_shifts": 5},
    "small-clip": {"clip_controller": 0.05},
    "no-clip-row0": {"clip_controller": None, "learn_initial_weights": False},
    "learned-memory": {"memory_init": "learned", "learn_initial_reads": False},
    "random-memory-k1": {"memory_init": "random", "num_shifts": 1},
    "controller-output-only": {"output_from_reads": False},
    "one-linear-layer": {"split_head_layers": False},
    # more rows than the kernel's 32-row blocks, and a remainder (70 = 2 * 32 + 6)
    "rows-70-2r": {"memory_rows": 70, "read_heads": 2},
    "gamma-cap": {"gamma_max": 1.6, "read_heads": 2},
    # the widest shift NTMConfig allows (K = N: the circular pad wraps the whole memory), several
    # heads of each kind under a feedforward controller, and M_0 = 0 (zero row norms at step 0)
    "feedforward-3r2w-k7-rows7-zero-memory": {"controller": "feedforward", "memory_rows": 7,
                                              "num_shifts": 7, "read_heads": 3, "write_heads": 2,
                                              "memory_init_value": 0.0},
}


def _model(overrides: dict, seed: int = 0, dtype=torch.float64) -> NTM:
    torch.manual_seed(seed)
    return NTM(NTMConfig.preset("tiny", **overrides)).to(dtype)


def _logits_and_grads(model: NTM, x: torch.Tensor, fused: bool):
    model.use_fused(fused)
    logits = model(x)
    weights = torch.linspace(-1, 1, logits.numel(), dtype=logits.dtype).view_as(logits)
    grads = torch.autograd.grad((logits * weights).sum() + logits.pow(2).sum(),
                                [p for p in model.parameters()], allow_unused=True)
    return logits.detach(), grads


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fused_matches_plain_path_float64(name: str) -> None:
    model = _model(CONFIGS[name])
    x = torch.rand(3, 9, model.config.input_size, generator=torch.Generator().manual_seed(1),
                   dtype=torch.float64).round()
    plain, plain_grads = _logits_and_grads(model, x, fused=False)
    fused, fused_grads = _logits_and_grads(model, x, fused=True)
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-12)
    names = [n for n, _ in model.named_parameters()]
    for n, a, b in zip(names, fused_grads, plain_grads, strict=True):
        assert (a is None) == (b is None), n
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11, msg=f"gradient of {n}")


def test_clip_is_exercised_by_the_small_clip_config() -> None:
    # Otherwise "small-clip" would not test the clip's gradient mask.
    model = _model(CONFIGS["small-clip"])
    x = torch.rand(3, 9, model.config.input_size, dtype=torch.float64)
    _, trace = model(x, return_trace=True)
    weight, bias = model.heads.fused_weight()
    raw = torch.addmm(bias, trace.controller_output.reshape(-1, model.config.controller_size),
                      weight.t())
    clipped = (raw.abs() > 0.05).float().mean()
    assert 0.2 < clipped < 0.8  # both sides of the clip occur


def test_gamma_cap_is_exercised_by_the_gamma_cap_config() -> None:
    # Otherwise "gamma-cap" would not test the cap's gradient mask.
    model = _model(CONFIGS["gamma-cap"])
    x = torch.rand(3, 9, model.config.input_size, dtype=torch.float64)
    _, trace = model(x, return_trace=True)
    gamma = trace.heads.gamma
    assert gamma.max() == 1.6
    capped = (gamma == 1.6).double().mean()
    assert 0.2 < capped < 0.8  # both sides of the cap occur


def test_fused_float32_close_to_plain() -> None:
    torch.manual_seed(0)
    model = NTM(NTMConfig.preset("copy"))
    x = torch.rand(4, 21, 9).round()
    plain, plain_grads = _logits_and_grads(model, x, fused=False)
    fused, fused_grads = _logits_and_grads(model, x, fused=True)
    torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)
    for a, b in zip(fused_grads, plain_grads, strict=True):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_kernel_float32_exp_log_tanh_are_accurate() -> None:
    # The kernel's own vectorisable float32 exp, log and tanh (float64 uses the C library).
    ext = load_extension()
    x = torch.cat([torch.linspace(-100, 100, 200_001), torch.tensor([0.0, -0.0, 1e-30, 88.5])])
    e, _, t = ext.vector_math(x.contiguous())
    exact_e, exact_t = x.double().exp(), x.double().tanh()
    normal = (exact_e > torch.finfo(torch.float32).tiny) & (exact_e < torch.finfo(torch.float32).max)
    rel_e = ((e.double() - exact_e).abs() / exact_e)[normal]
    assert rel_e.max() < 3e-7  # about 2 units in the last place
    assert (e[exact_e < torch.finfo(torch.float32).tiny] == 0).all()  # underflow: exactly 0
    assert torch.isfinite(e).all()  # overflow: clamped, never inf or NaN
    assert (t.double() - exact_t).abs().max() < 2e-7
    nonzero = exact_t.abs() > 1e-30
    assert ((t.double() - exact_t).abs() / exact_t.abs())[nonzero].max() < 3e-7
    assert t[x == 0].eq(0).all() and t.abs().max() <= 1
    positive = torch.cat([torch.logspace(-37.9, 38.5, 200_001), torch.tensor([1.0, 2.0, 0.5])])
    _, lg, _ = ext.vector_math(positive.contiguous())
    exact_l = positive.double().log()
    assert ((lg.double() - exact_l).abs() / exact_l.abs().clamp_min(1e-3)).max() < 3e-7
    assert lg[positive == 1].eq(0).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fused_float32_with_saturated_heads_close_to_float64(seed: int) -> None:
    # With head weights scaled up, the activations saturate (tanh's large-argument branch) and
    # the weightings are sharp: the fused float32 unroll stays close to the float64 result.
    torch.manual_seed(seed)
    config = NTMConfig.preset("copy", clip_controller=None, memory_init="random",
                              learn_initial_weights=False)  # weightings start on row 0
    model = NTM(config)
    with torch.no_grad():
        for p in model.heads.parameters():
            p.mul_(20.0)
    reference = NTM(config).double()
    reference.load_state_dict(model.state_dict())
    x = torch.rand(4, 21, 9, generator=torch.Generator().manual_seed(seed)).round()
    _, trace = model(x, return_trace=True)
    assert trace.read_weights.amax(-1).mean() > 0.5  # sharp: much of a weighting on one row
    exact, exact_grads = _logits_and_grads(reference, x.double(), fused=False)
    fused, fused_grads = _logits_and_grads(model, x, fused=True)
    torch.testing.assert_close(fused.double(), exact, rtol=1e-5, atol=1e-5)
    for a, c in zip(fused_grads, exact_grads, strict=True):
        if c is not None:
            torch.testing.assert_close(a.double(), c, rtol=1e-3, atol=1e-4 * c.abs().max().item())


def test_fused_backward_passes_gradcheck() -> None:
    gen = torch.Generator().manual_seed(3)
    t, b, n, m, c, r, w, k = 3, 2, 5, 3, 4, 1, 2, 3
    h = r + w
    p = h * (m + 3 + k) + w * 2 * m
    meta = _Meta(read_heads=r, write_heads=w, num_shifts=k, lstm=True, clip=2.0, layers=1)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, generator=gen, dtype=torch.float64) * scale).requires_grad_()

    x_proj = rand(t, b, 4 * c)
    head_wt, head_b = rand(c, p), rand(p, scale=0.5)
    mem0 = rand(b, n, m)
    reads0 = rand(b, r * m)
    w0 = torch.softmax(torch.randn(b, h, n, generator=gen, dtype=torch.float64), -1).requires_grad_()
    weight = rand(r * m + c, 4 * c, scale=0.5)

    def f(*args):
        return _FusedUnroll.apply(meta, *args)

    assert torch.autograd.gradcheck(f, (x_proj, head_wt, head_b, mem0, reads0, w0, weight),
                                    eps=1e-6, atol=1e-6, rtol=1e-4)


def test_training_steps_match_plain_path() -> None:
    from neural_memory.tasks import get_task
    from neural_memory.training import TrainConfig, make_optimizer, train_step

    task = get_task("copy")
    recipe = TrainConfig.preset("fast-adam", batch_size=4)
    runs = []
    for fused in (False, True):
        model = _model({})
        model.use_fused(fused)
        optimizer = make_optimizer(model.parameters(), recipe)
        gen = torch.Generator().manual_seed(5)
        for _ in range(3):
            batch = task.sample_train(4, gen)
            batch = type(batch)(*(v.double() if v.is_floating_point() else v for v in batch))
            train_step(model, batch, optimizer, recipe)
        runs.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_trace_takes_the_plain_path_with_the_same_logits() -> None:
    model = _model({}).use_fused()
    x = torch.rand(2, 6, 9, dtype=torch.float64)
    logits, trace = model(x, return_trace=True)
    torch.testing.assert_close(model(x), logits, rtol=0, atol=1e-12)
    assert trace.memory.shape == (2, 7, 16, 8)


def test_non_contiguous_input_and_no_grad() -> None:
    model = _model({}).use_fused()
    x = torch.rand(6, 2, 9, dtype=torch.float64).transpose(0, 1)  # (2, 6, 9), not contiguous
    with torch.no_grad():
        fused = model(x)
    model.use_fused(False)
    with torch.no_grad():
        plain = model(x)
    torch.testing.assert_close(fused, plain, rtol=0, atol=1e-12)


def test_fused_flag_is_not_part_of_the_state() -> None:
    model = _model({}).use_fused()
    assert model.fused
    other = _model({}, seed=1)
    other.load_state_dict(model.state_dict())
    assert not other.fused
    x = torch.rand(2, 5, 9, dtype=torch.float64)
    torch.testing.assert_close(other(x), model(x), rtol=0, atol=1e-12)


def test_allow_list_covers_every_config_field() -> None:
    missing = [f.name for f in dataclasses.fields(NTMConfig) if f.name not in SUPPORTED_VALUES]
    assert not missing, f"NTMConfig fields with no entry in fused.SUPPORTED_VALUES: {missing}"
    stale = sorted(set(SUPPORTED_VALUES) - {f.name for f in dataclasses.fields(NTMConfig)})
    assert not stale, f"fused.SUPPORTED_VALUES names fields NTMConfig does not have: {stale}"
    for name, allowed in SUPPORTED_VALUES.items():
        assert allowed is ANY_VALUE or (isinstance(allowed, tuple) and allowed), name


def test_every_preset_and_tested_config_is_supported() -> None:
    for name in NTMConfig.preset_names():
        check_supported(NTMConfig.preset(name))
    for overrides in CONFIGS.values():
        check_supported(NTMConfig.preset("tiny", **overrides))


RESTRICTED = sorted(name for name, allowed in SUPPORTED_VALUES.items() if allowed is not ANY_VALUE)
# Values outside each restricted field's supported set. Those NTMConfig accepts come first; the
# others are set on a config without NTMConfig's own checks (a field whose set of values grows
# later must still be refused until the fused kernel implements the new ones).
UNSUPPORTED = {"hard_addressing": "read", "controller": "gru", "memory_init": "orthogonal"}


def _with_value(name: str, value) -> NTMConfig:
    """The tiny preset with ``name`` set to ``value``, through NTMConfig's checks if it passes
    them and around them otherwise."""
    try:
        return NTMConfig.preset("tiny", **{name: value})
    except ValueError:
        config = NTMConfig.preset("tiny")
        object.__setattr__(config, name, value)
        return config


@pytest.mark.parametrize("name", RESTRICTED)
def test_values_outside_the_allow_list_are_refused(name: str) -> None:
    value = UNSUPPORTED.get(name, "unsupported")
    assert value not in SUPPORTED_VALUES[name]
    config = _with_value(name, value)
    message = f"does not support {name}={value!r}; it supports {name} in ("
    with pytest.raises(FusedUnsupported, match=re.escape(message)) as err:
        check_supported(config)
    assert "\n" not in str(err.value)
    for allowed in SUPPORTED_VALUES[name]:
        assert repr(allowed) in str(err.value)
    # NTM.use_fused refuses it too (the config set after construction where NTM itself would
    # refuse the value), and stays off.
    try:
        model = NTM(config)
    except ValueError:
        model = NTM(NTMConfig.preset("tiny"))
        model.config = config
    with pytest.raises(FusedUnsupported, match=f"{name}={value!r}"):
        model.use_fused()
    assert not model.fused


@pytest.mark.parametrize("value", ["read", "write", "both"])
def test_hard_heads_are_refused(value: str) -> None:
    config = NTMConfig.preset("tiny", hard_addressing=value, memory_init_value=0.01)
    with pytest.raises(FusedUnsupported, match=f"hard_addressing='{value}'.*'none'"):
        NTM(config).use_fused()


def test_a_field_missing_from_the_allow_list_is_refused() -> None:
    @dataclasses.dataclass(frozen=True)
    class ExtendedConfig(NTMConfig):
        new_switch: bool = False

    config = ExtendedConfig(input_size=9, output_size=8)
    with pytest.raises(FusedUnsupported, match="does not support new_switch=False") as err:
        check_supported(config)
    assert "SUPPORTED_VALUES" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(FusedUnsupported, match="new_switch"):
        NTM(config).use_fused()


def test_unsupported_models_are_refused() -> None:
    model = NTM(NTMConfig.preset("tiny")).use_fused()
    with pytest.raises(ValueError, match="alternatives"):
        model.compile_step()
    with pytest.raises(ValueError, match="alternatives"):
        NTM(NTMConfig.preset("tiny")).compile_step().use_fused()
    with pytest.raises(FusedUnsupported, match="float32 or float64"):
        model.to(torch.bfloat16)(torch.rand(1, 3, 9, dtype=torch.bfloat16))


def test_run_training_fused_and_refused_for_lstm(tmp_path) -> None:
    from neural_memory.baselines import LSTMConfig
    from neural_memory.training import TrainConfig, run_training

    recipe = TrainConfig.preset("tiny")
    result = run_training("copy", "ntm", NTMConfig.preset("tiny"), recipe, tmp_path / "ntm",
                          progress=False, fused=True)
    assert result.model.fused
    assert torch.isfinite(torch.tensor(result.metrics["eval_bit_errors"]))
    with pytest.raises(ValueError, match="NTM only"):
        run_training("copy", "lstm", LSTMConfig.preset("small"), recipe, tmp_path / "lstm",
                     progress=False, fused=True)
    with pytest.raises(ValueError, match="CPU only"):  # refused before any GPU is touched
        run_training("copy", "ntm", NTMConfig.preset("tiny"), recipe, tmp_path / "gpu",
                     progress=False, fused=True, device="cuda")


def test_train_command_fused_flag(tmp_path, capsys) -> None:
    from neural_memory.checkpoint import load_checkpoint
    from neural_memory.train import main as train_main

    out = tmp_path / "run"
    args = ["--task", "copy", "--model", "ntm", "--preset", "tiny", "--recipe", "tiny",
            "--out", str(out), "--no-progress", "--fused"]
    assert train_main(args) == 0
    manifest = load_checkpoint(out / "copy-ntm.pt").manifest
    assert manifest["command"].endswith("--fused")
    capsys.readouterr()
    assert train_main(["--task", "copy", "--model", "lstm", "--preset", "tiny", "--recipe", "tiny",
                       "--out", str(tmp_path / "lstm"), "--no-progress", "--fused"]) == 2
    assert "NTM only" in capsys.readouterr().err


def test_callers_denormal_mode_is_left_alone() -> None:
    # The extension flushes subnormal numbers to zero while it runs (a speed measure); afterwards
    # the caller's arithmetic must keep them.
    model = NTM(NTMConfig.preset("tiny")).use_fused()
    model(torch.rand(2, 5, 9)).sum().backward()
    tiny = torch.tensor(1e-39, dtype=torch.float32)  # subnormal in float32
    assert (tiny * 1.0).item() != 0.0
    assert (tiny / 2).item() > 0.0
