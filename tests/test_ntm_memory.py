"""Read (eq. 2) and write (eqs. 3-4) against the naive formulation, by hand, and by gradcheck."""

from __future__ import annotations

import ntm_naive as naive
import pytest
import torch

from neural_memory.ntm import read, write, write_heads


def _weights(gen: torch.Generator, *shape: int, dtype=torch.float64) -> torch.Tensor:
    return torch.softmax(torch.randn(*shape, generator=gen, dtype=dtype), dim=-1)


def test_read_matches_naive() -> None:
    gen = torch.Generator().manual_seed(0)
    memory = torch.randn(3, 7, 4, generator=gen, dtype=torch.float64)
    w = _weights(gen, 3, 7)
    torch.testing.assert_close(read(memory, w), naive.read(memory, w))


def test_read_by_hand() -> None:
    memory = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]])
    w = torch.tensor([[0.5, 0.5, 0.0]])
    torch.testing.assert_close(read(memory, w), torch.tensor([[2.0, 3.0]]))


def test_read_broadcasts_over_heads() -> None:
    gen = torch.Generator().manual_seed(1)
    memory = torch.randn(2, 5, 3, generator=gen)
    w = _weights(gen, 2, 4, 5, dtype=torch.float32)  # (B, H, N)
    r = read(memory.unsqueeze(1), w)  # (B, H, M)
    assert r.shape == (2, 4, 3)
    for h in range(4):
        torch.testing.assert_close(r[:, h], read(memory, w[:, h]))


def test_write_matches_naive_and_is_pure() -> None:
    gen = torch.Generator().manual_seed(2)
    memory = torch.randn(3, 6, 4, generator=gen, dtype=torch.float64)
    before = memory.clone()
    w = _weights(gen, 3, 6)
    erase = torch.rand(3, 4, generator=gen, dtype=torch.float64)
    add = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    out = write(memory, w, erase, add)
    torch.testing.assert_close(out, naive.write(memory, w, erase, add))
    torch.testing.assert_close(memory, before, rtol=0, atol=0)  # the input is untouched


def test_write_by_hand() -> None:
    memory = torch.tensor([[[1.0, 1.0], [2.0, 2.0]]])
    w = torch.tensor([[1.0, 0.0]])  # all weight on row 0
    erase = torch.tensor([[1.0, 0.0]])  # wipe the first column
    add = torch.tensor([[5.0, 0.5]])
    out = write(memory, w, erase, add)
    torch.testing.assert_close(out, torch.tensor([[[5.0, 1.5], [2.0, 2.0]]]))


@pytest.mark.parametrize("heads", [1, 2, 3])
def test_write_heads_all_erases_then_all_adds(heads: int) -> None:
    gen = torch.Generator().manual_seed(3 + heads)
    memory = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64)
    w = _weights(gen, 2, heads, 5)
    erase = torch.rand(2, heads, 3, generator=gen, dtype=torch.float64)
    add = torch.randn(2, heads, 3, generator=gen, dtype=torch.float64)
    out = write_heads(memory, w, erase, add)
    torch.testing.assert_close(out, naive.write_heads(memory, w, erase, add))
    if heads == 1:
        torch.testing.assert_close(out, write(memory, w[:, 0], erase[:, 0], add[:, 0]))


def test_gradcheck_read_and_write() -> None:
    gen = torch.Generator().manual_seed(4)
    memory = torch.randn(2, 5, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    w = _weights(gen, 2, 5).requires_grad_()
    erase = torch.rand(2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    add = torch.randn(2, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(read, (memory, w))
    assert torch.autograd.gradcheck(write, (memory, w, erase, add))
    for heads in (1, 2):  # one head takes a separate (baddbmm) path
        wh = _weights(gen, 2, heads, 5).requires_grad_()
        eh = torch.rand(2, heads, 3, generator=gen, dtype=torch.float64, requires_grad=True)
        ah = torch.randn(2, heads, 3, generator=gen, dtype=torch.float64, requires_grad=True)
        assert torch.autograd.gradcheck(write_heads, (memory, wh, eh, ah))


def test_shape_errors() -> None:
    memory = torch.zeros(2, 5, 3)
    with pytest.raises(ValueError, match="N = 5"):
        read(memory, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="at least 2"):
        read(torch.zeros(5), torch.zeros(5))
    with pytest.raises(ValueError, match="erase"):
        write(memory, torch.zeros(2, 5), torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="add"):
        write(memory, torch.zeros(2, 5), torch.zeros(2, 3), torch.zeros(2, 2))
    with pytest.raises(ValueError, match="same heads"):
        write_heads(memory, torch.zeros(2, 2, 5), torch.zeros(2, 3, 3), torch.zeros(2, 2, 3))
    with pytest.raises(ValueError, match=r"\(B, H, N\)"):
        write_heads(memory, torch.zeros(2, 5), torch.zeros(2, 3), torch.zeros(2, 3))
