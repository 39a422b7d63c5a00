"""Tests for neural_memory.lookup: HardMemory reads and the best piecewise-constant fit."""

import itertools

import pytest
import torch

from neural_memory.lookup import HardMemory, best_piecewise_constant_fit

MEM1 = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])


def test_memory_is_a_cloned_buffer_and_never_mutates_the_input():
    values = MEM1.clone()
    mem = HardMemory(values)
    assert "memory" in dict(mem.named_buffers())
    assert list(mem.parameters()) == []
    assert mem.memory.shape == (5,)  # no unsqueeze of the caller's tensor
    mem.memory.add_(1.0)
    assert torch.equal(values, MEM1)
    mem.set_memory(values * 2)
    assert torch.equal(values, MEM1)


def test_buffer_follows_to_dtype_and_device():
    mem = HardMemory(torch.randn(5, 3)).to(torch.float64)
    assert mem.memory.dtype == torch.float64
    out = mem.eval()(torch.randn(4, 5, dtype=torch.float64))
    assert out.dtype == torch.float64
    meta = HardMemory(MEM1).to("meta")
    assert meta.memory.device.type == "meta"
    assert "memory" in meta.state_dict()


@pytest.mark.parametrize("memory", [MEM1, torch.randn(5, 3, generator=torch.Generator().manual_seed(0))])
def test_evaluation_reads_are_exact_rows_by_argmax(memory):
    mem = HardMemory(memory).eval()
    logits = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))
    out = mem(logits)
    idx = logits.argmax(1)
    assert out.shape == (64, *memory.shape[1:])
    assert torch.equal(out, memory[idx])
    assert torch.equal(mem[logits], out)
    assert torch.equal(mem.read_index(logits), idx)


def test_training_reads_are_rows_forward_and_differentiable():
    mem = HardMemory(MEM1, tau=0.5).train()
    logits = torch.randn(32, 5, generator=torch.Generator().manual_seed(2), requires_grad=True)
    out = mem(logits, generator=torch.Generator().manual_seed(3))
    assert out.shape == (32,)
    assert all(v in MEM1.tolist() for v in out.tolist())  # exactly stored values
    out.sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_training_read_is_the_onehot_weighting_times_memory():
    mem = HardMemory(torch.randn(5, 2)).train()
    logits = torch.randn(10, 5)
    w = mem.weights(logits, generator=torch.Generator().manual_seed(0))
    out = mem(logits, generator=torch.Generator().manual_seed(0))
    assert torch.equal(w.sum(1), torch.ones(10))
    assert torch.equal(out, mem.memory[w.argmax(1)])


def test_eval_sampling_mode_draws_from_softmax():
    mem = HardMemory(MEM1, eval_mode="sample").eval()
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0, 0.5]]).expand(20_000, -1)
    idx = mem.read_index(logits, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(idx, minlength=5).float() / 20_000
    torch.testing.assert_close(freq, torch.softmax(logits[0], 0), atol=0.015, rtol=0)
    out = mem(logits[:100], generator=torch.Generator().manual_seed(1))
    assert all(v in MEM1.tolist() for v in out.tolist())


def test_soft_mode_is_a_softmax_weighted_average():
    memory = torch.randn(5, 3)
    mem = HardMemory(memory, mode="soft")
    logits = torch.randn(4, 5)
    expected = torch.softmax(logits, 1) @ memory
    for m in (mem.train(), mem.eval()):
        torch.testing.assert_close(m(logits), expected)


def test_bad_arguments_raise_clear_errors():
    mem = HardMemory(MEM1)
    with pytest.raises(ValueError, match=r"\(B, 5\).*\(4, 4\)"):
        mem(torch.zeros(4, 4))
    with pytest.raises(ValueError, match=r"shape \(B, N\)"):
        mem(torch.zeros(5))
    with pytest.raises(ValueError, match="tau"):
        mem.tau = 0.0
    with pytest.raises(ValueError, match="tau"):
        HardMemory(MEM1, tau=float("nan"))
    with pytest.raises(ValueError, match="mode"):
        HardMemory(MEM1, mode="fuzzy")
    with pytest.raises(ValueError, match="eval_mode"):
        HardMemory(MEM1, eval_mode="max")
    with pytest.raises(ValueError, match=r"\(N,\) or \(N, M\)"):
        HardMemory(torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="floating point"):
        HardMemory(torch.arange(3))
    with pytest.raises(ValueError, match=r"current shape \(5,\)"):
        mem.set_memory(torch.zeros(10))
    mem.tau = 0.3
    assert mem.tau == 0.3


def test_set_memory_swaps_values_for_the_same_logits():
    mem = HardMemory(MEM1).eval()
    logits = torch.randn(16, 5)
    before = mem(logits)
    mem.set_memory(2 * MEM1)
    torch.testing.assert_close(mem(logits), 2 * before, rtol=0, atol=0)


def test_best_fit_matches_brute_force_scalar():
    gen = torch.Generator().manual_seed(0)
    targets = torch.rand(40, generator=gen) * 1.4 - 0.2
    memory = torch.tensor([0.9, 0.1, 0.45, 0.3])
    fit = best_piecewise_constant_fit(targets, memory)
    best_total = min(
        sum((t - memory[i]) ** 2 for t, i in zip(targets[:6], choice, strict=True))
        for choice in itertools.product(range(4), repeat=6)
    )
    assert ((targets[:6] - fit.predictions[:6]) ** 2).sum().item() == pytest.approx(best_total.item())
    for t, p, i in zip(targets, fit.predictions, fit.indices, strict=True):
        errors = [(t - m).item() ** 2 for m in memory]
        assert (t - p).item() ** 2 == pytest.approx(min(errors))
        assert memory[i] == p


def test_best_fit_vector_memory_and_shapes():
    memory = torch.randn(6, 3, generator=torch.Generator().manual_seed(1))
    targets = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(2))
    fit = best_piecewise_constant_fit(targets, memory)
    assert fit.predictions.shape == (2, 7, 3) and fit.indices.shape == (2, 7)
    brute = torch.stack([((targets - m) ** 2).sum(-1) for m in memory], -1).argmin(-1)
    assert torch.equal(fit.indices, brute)
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        best_piecewise_constant_fit(torch.zeros(4, 2), memory)
    with pytest.raises(ValueError, match="finite"):
        best_piecewise_constant_fit(torch.zeros(3), torch.tensor([0.0, float("nan")]))
