"""Each addressing stage (eqs. 5-9) against the naive formulation, by hand, and by gradcheck."""

from __future__ import annotations

import ntm_naive as naive
import pytest
import torch

from neural_memory.ntm import (
    AddressingStages,
    address,
    address_stages,
    content_weights,
    cosine_similarity,
    interpolate,
    sharpen,
    shift,
    shift_index,
)

F64 = torch.float64


def _inputs(seed: int, batch: int = 3, n: int = 8, m: int = 4, k: int = 3) -> dict:
    """Random, valid head parameters in float64, all with requires_grad."""
    gen = torch.Generator().manual_seed(seed)
    return {
        "memory": torch.randn(batch, n, m, generator=gen, dtype=F64),
        "w_prev": torch.softmax(torch.randn(batch, n, generator=gen, dtype=F64), -1),
        "key": torch.randn(batch, m, generator=gen, dtype=F64),
        "beta": torch.rand(batch, 1, generator=gen, dtype=F64) * 5,
        "g": torch.rand(batch, 1, generator=gen, dtype=F64),
        "s": torch.softmax(torch.randn(batch, k, generator=gen, dtype=F64), -1),
        "gamma": 1 + torch.rand(batch, 1, generator=gen, dtype=F64) * 3,
    }


def _assert_weighting(w: torch.Tensor) -> None:
    assert torch.isfinite(w).all()
    assert (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1], dtype=w.dtype))


# ----------------------------------------------------------------------------- vs naive


def test_cosine_similarity_matches_naive() -> None:
    x = _inputs(0)
    torch.testing.assert_close(
        cosine_similarity(x["memory"], x["key"]), naive.cosine_similarity(x["memory"], x["key"])
    )


def test_content_weights_matches_naive() -> None:
    x = _inputs(1)
    got = content_weights(x["memory"], x["key"], x["beta"])
    torch.testing.assert_close(got, naive.content_weights(x["memory"], x["key"], x["beta"]))
    _assert_weighting(got)


def test_interpolate_matches_naive() -> None:
    x = _inputs(2)
    w_c = content_weights(x["memory"], x["key"], x["beta"])
    got = interpolate(w_c, x["w_prev"], x["g"])
    torch.testing.assert_close(got, naive.interpolate(w_c, x["w_prev"], x["g"]))
    _assert_weighting(got)


@pytest.mark.parametrize(("n", "k"), [(8, 3), (5, 5), (9, 5), (4, 1), (6, 3), (3, 3)])
def test_shift_matches_naive(n: int, k: int) -> None:
    x = _inputs(3 + n + k, n=n, k=k)
    got = shift(x["w_prev"], x["s"])
    torch.testing.assert_close(got, naive.shift(x["w_prev"], x["s"]))
    _assert_weighting(got)


def test_sharpen_matches_naive() -> None:
    x = _inputs(4)
    got = sharpen(x["w_prev"], x["gamma"])
    torch.testing.assert_close(got, naive.sharpen(x["w_prev"], x["gamma"]))
    _assert_weighting(got)


def test_address_stages_match_naive() -> None:
    x = _inputs(5, batch=4, n=10, m=6, k=5)
    stages = address_stages(**x)
    assert isinstance(stages, AddressingStages)
    for got, want in zip(stages, naive.address(**x), strict=True):
        torch.testing.assert_close(got, want)
        _assert_weighting(got)
    torch.testing.assert_close(address(**x), stages.sharpened)


def test_address_broadcasts_over_heads() -> None:
    """Memory (B, 1, N, M) with per-head parameters (B, H, ...) equals addressing each head."""
    heads = [_inputs(10 + h, batch=2) for h in range(3)]
    memory = heads[0]["memory"]
    stacked = {k: torch.stack([h[k] for h in heads], dim=1) for k in heads[0] if k != "memory"}
    got = address(memory.unsqueeze(1), **stacked)  # (B, H, N)
    for h, x in enumerate(heads):
        torch.testing.assert_close(got[:, h], address(**{**x, "memory": memory}))


def test_shift_equals_gather_with_shift_index() -> None:
    """Eq. (8) as a gather: row i of w[..., shift_index] dotted with s."""
    x = _inputs(12, n=9, k=5)
    gathered = x["w_prev"][:, shift_index(9, 5)]  # (B, N, K)
    want = (gathered * x["s"].unsqueeze(1)).sum(-1)
    torch.testing.assert_close(shift(x["w_prev"], x["s"]), want)


# ----------------------------------------------------------------------------- by hand


def test_shift_direction_convention() -> None:
    w = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0, 1.0]])
    plus_one = torch.tensor([[0.0, 0.0, 1.0]] * 2)  # shifts -1, 0, +1
    minus_one = torch.tensor([[1.0, 0.0, 0.0]] * 2)
    stay = torch.tensor([[0.0, 1.0, 0.0]] * 2)
    torch.testing.assert_close(
        shift(w, plus_one), torch.tensor([[0.0, 0, 1, 0, 0], [1.0, 0, 0, 0, 0]])
    )  # row 4 wraps around to row 0
    torch.testing.assert_close(
        shift(w, minus_one), torch.tensor([[1.0, 0, 0, 0, 0], [0.0, 0, 0, 1, 0]])
    )
    torch.testing.assert_close(shift(w, stay), w)
    plus_two = torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]] * 2)  # K = 5: shifts -2 .. +2
    torch.testing.assert_close(
        shift(w, plus_two), torch.tensor([[0.0, 0, 0, 1, 0], [0.0, 1, 0, 0, 0]])
    )


def test_content_weights_by_hand() -> None:
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    key = torch.tensor([[2.0, 0.0]])
    beta = torch.tensor([[1.0]])
    sims = torch.tensor([1.0, 0.0, -1.0])
    want = torch.exp(sims) / torch.exp(sims).sum()
    torch.testing.assert_close(content_weights(memory, key, beta)[0], want)
    torch.testing.assert_close(cosine_similarity(memory, key)[0], sims)


def test_interpolate_gate_extremes() -> None:
    w_c = torch.tensor([[1.0, 0.0, 0.0]])
    w_prev = torch.tensor([[0.0, 0.0, 1.0]])
    torch.testing.assert_close(interpolate(w_c, w_prev, torch.tensor([[1.0]])), w_c)
    torch.testing.assert_close(interpolate(w_c, w_prev, torch.tensor([[0.0]])), w_prev)


def test_sharpen_by_hand() -> None:
    w = torch.tensor([[0.5, 0.25, 0.25, 0.0]])
    got = sharpen(w, torch.tensor([[2.0]]))
    torch.testing.assert_close(got, torch.tensor([[0.25, 0.0625, 0.0625, 0.0]]) / 0.375)
    torch.testing.assert_close(sharpen(w, torch.tensor([[1.0]])), w)


# ----------------------------------------------------------------------------- gradients


def test_gradcheck_every_stage() -> None:
    x = {k: v.requires_grad_() for k, v in _inputs(6, batch=2, n=6, m=3, k=3).items()}
    assert torch.autograd.gradcheck(cosine_similarity, (x["memory"], x["key"]))
    assert torch.autograd.gradcheck(content_weights, (x["memory"], x["key"], x["beta"]))
    w_c = content_weights(x["memory"], x["key"], x["beta"]).detach().requires_grad_()
    assert torch.autograd.gradcheck(interpolate, (w_c, x["w_prev"], x["g"]))
    assert torch.autograd.gradcheck(shift, (x["w_prev"], x["s"]))
    assert torch.autograd.gradcheck(sharpen, (x["w_prev"], x["gamma"]))
    assert torch.autograd.gradcheck(address, tuple(x.values()))


# ----------------------------------------------------------------------------- zeros


def test_zero_rows_and_zero_key_stay_finite() -> None:
    memory = torch.zeros(2, 5, 3, dtype=F64)
    memory[0, 1] = torch.tensor([1.0, 2.0, 3.0], dtype=F64)  # one non-zero row in batch 0
    memory.requires_grad_()
    key = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=F64, requires_grad=True)
    beta = torch.tensor([[3.0], [3.0]], dtype=F64, requires_grad=True)
    w = content_weights(memory, key, beta)
    _assert_weighting(w)
    torch.testing.assert_close(w, torch.full_like(w, 0.2))  # nothing to match: uniform
    (w * torch.arange(5.0, dtype=F64)).sum().backward()
    for t in (memory, key, beta):
        assert torch.isfinite(t.grad).all()


def test_sharpen_with_zero_entries_stays_finite() -> None:
    w = torch.tensor([[0.0, 0.7, 0.3, 0.0], [1.0, 0.0, 0.0, 0.0]], requires_grad=True)
    gamma = torch.tensor([[1.0], [25.0]], requires_grad=True)
    out = sharpen(w, gamma)
    _assert_weighting(out)
    torch.testing.assert_close(out[0], w[0].detach())
    torch.testing.assert_close(out[1], w[1].detach())
    (out * torch.arange(4.0)).sum().backward()
    assert torch.isfinite(w.grad).all() and torch.isfinite(gamma.grad).all()


def test_sharpen_does_not_underflow() -> None:
    """A flat weighting over many rows with a huge gamma: every w^gamma underflows float32."""
    w = torch.full((1, 128), 1 / 128)
    out = sharpen(w, torch.tensor([[60.0]]))
    _assert_weighting(out)
    torch.testing.assert_close(out, w)


def test_address_float32_extreme_parameters() -> None:
    x = {k: v.float() for k, v in _inputs(7).items()}
    x["beta"] = torch.full_like(x["beta"], 1e3)
    x["gamma"] = torch.full_like(x["gamma"], 1e2)
    x["memory"][:, :2] = 0.0
    stages = address_stages(**x)
    for w in stages:
        _assert_weighting(w)


# ----------------------------------------------------------------------------- errors


def test_shift_rejects_even_k_and_small_memory() -> None:
    w = torch.full((1, 4), 0.25)
    with pytest.raises(ValueError, match="odd"):
        shift(w, torch.full((1, 2), 0.5))
    with pytest.raises(ValueError, match="at least K = 5"):
        shift(w, torch.full((1, 5), 0.2))
    x = _inputs(8, n=4, k=5)
    with pytest.raises(ValueError, match="N = 4"):
        address(**x)


def test_shape_errors() -> None:
    x = _inputs(9)
    with pytest.raises(ValueError, match="M = 4"):
        cosine_similarity(x["memory"], torch.zeros(3, 5, dtype=F64))
    with pytest.raises(ValueError, match="beta"):
        content_weights(x["memory"], x["key"], torch.ones(3, 2, dtype=F64))
    with pytest.raises(ValueError, match="w_prev"):
        interpolate(x["w_prev"], torch.zeros(3, 5, dtype=F64), x["g"])
    with pytest.raises(ValueError, match="gamma"):
        sharpen(x["w_prev"], torch.ones(3, dtype=F64))
    with pytest.raises(ValueError, match="w_prev"):
        address(**{**x, "w_prev": torch.zeros(3, 9, dtype=F64)})
