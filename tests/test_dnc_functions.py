"""The DNC's pure functions: against the naive loops (values and gradients), by gradcheck, by
invariants over random rollouts, by hand, and their errors."""

from __future__ import annotations

import dnc_naive as naive
import pytest
import torch

from neural_memory.dnc import (
    READ_MODES,
    DNCInterface,
    allocation_weights,
    check_interface,
    directional_weights,
    interface_size,
    link_matrix,
    oneplus,
    parse_interface,
    precedence,
    read_weights,
    retention,
    usage,
    write_weights,
)

F64 = torch.float64
B, N, R = 3, 6, 2


def _weighting(gen: torch.Generator, *shape: int, at_most: float = 1.0) -> torch.Tensor:
    """Random weightings over the last axis, each summing to a random total in (0.3, at_most]."""
    w = torch.softmax(2 * torch.randn(*shape, generator=gen, dtype=F64), dim=-1)
    total = 0.3 + (at_most - 0.3) * torch.rand(*shape[:-1], 1, generator=gen, dtype=F64)
    return w * total


def _gates(gen: torch.Generator, *shape: int) -> torch.Tensor:
    """Gates in (0.05, 0.95): far enough from 0 and 1 for gradcheck's perturbations."""
    return 0.05 + 0.9 * torch.rand(*shape, generator=gen, dtype=F64)


def _distinct_usage(gen: torch.Generator, batch: int = B, n: int = N) -> torch.Tensor:
    """Usage values at least 0.9 / (N - 1) apart, in a random order: the sort is locally fixed."""
    levels = torch.linspace(0.05, 0.95, n, dtype=F64)
    return torch.stack([levels[torch.randperm(n, generator=gen)] for _ in range(batch)])


def _link(gen: torch.Generator, batch: int = B, n: int = N) -> torch.Tensor:
    """A valid link matrix: entries in [0, 1/N), zero diagonal (rows and columns sum below 1)."""
    link = torch.rand(batch, n, n, generator=gen, dtype=F64) / n
    return link * (1 - torch.eye(n, dtype=F64))


def _args(name: str, seed: int) -> tuple[torch.Tensor, ...]:
    """Valid random inputs of each function, in float64."""
    g = torch.Generator().manual_seed(seed)
    return {
        "retention": lambda: (_gates(g, B, R), _weighting(g, B, R, N)),
        "usage": lambda: (_gates(g, B, N), _weighting(g, B, N), _gates(g, B, N)),
        "allocation_weights": lambda: (_distinct_usage(g),),
        "precedence": lambda: (_weighting(g, B, N), _weighting(g, B, N)),
        "link_matrix": lambda: (_link(g), _weighting(g, B, N, at_most=0.9),
                                _weighting(g, B, N, at_most=0.9)),
        "directional_weights": lambda: (_link(g), _weighting(g, B, R, N)),
        "write_weights": lambda: (_weighting(g, B, N), _weighting(g, B, N), _gates(g, B, 1),
                                  _gates(g, B, 1)),
        "read_weights": lambda: (
            torch.softmax(torch.randn(B, R, N, generator=g, dtype=F64), -1),
            _weighting(g, B, R, N), _weighting(g, B, R, N),
            torch.softmax(torch.randn(B, R, 3, generator=g, dtype=F64), -1),
        ),
    }[name]()  # fmt: skip


FUNCTIONS = {
    "retention": (retention, naive.retention),
    "usage": (usage, naive.usage),
    "allocation_weights": (allocation_weights, naive.allocation_weights),
    "precedence": (precedence, naive.precedence),
    "link_matrix": (link_matrix, naive.link_matrix),
    "directional_weights": (directional_weights, naive.directional_weights),
    "write_weights": (write_weights, naive.write_weights),
    "read_weights": (read_weights, naive.read_weights),
}


def _outputs(result) -> tuple[torch.Tensor, ...]:
    return result if isinstance(result, tuple) else (result,)


# ----------------------------------------------------------------------------- vs naive


@pytest.mark.parametrize("name", list(FUNCTIONS))
@pytest.mark.parametrize("seed", [0, 1])
def test_values_and_gradients_match_the_naive_loops(name: str, seed: int) -> None:
    fast_fn, naive_fn = FUNCTIONS[name]
    args = _args(name, seed)
    fast_in = [a.clone().requires_grad_() for a in args]
    naive_in = [a.clone().requires_grad_() for a in args]
    fast, slow = _outputs(fast_fn(*fast_in)), _outputs(naive_fn(*naive_in))
    assert len(fast) == len(slow)
    for a, b in zip(fast, slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    g = torch.Generator().manual_seed(100 + seed)
    cotangents = [torch.randn(o.shape, generator=g, dtype=F64) for o in fast]
    grads_fast = torch.autograd.grad(fast, fast_in, cotangents)
    grads_slow = torch.autograd.grad(slow, naive_in, cotangents)
    for a, b in zip(grads_fast, grads_slow, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_gradcheck(name: str) -> None:
    fn = FUNCTIONS[name][0]
    args = tuple(a.requires_grad_() for a in _args(name, 7))
    assert torch.autograd.gradcheck(fn, args)


def test_allocation_gradcheck_with_a_free_row_and_a_full_row() -> None:
    """Usage exactly 0 (a free row) and exactly 1 (a full one): the product's gradient is exact
    with zero factors, so the paper's formula needs no guard."""
    u = torch.tensor([[0.5, 0.0, 0.25, 1.0, 0.75]], dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(allocation_weights, (u,))
    grad = torch.autograd.grad(allocation_weights(u)[0, 2], u)[0]
    # a[2] = (1 - u[2]) u[1] (row 1 is first in the free list, row 2 second): d/du[1] = 0.75
    torch.testing.assert_close(grad, torch.tensor([[0.0, 0.75, 0.0, 0.0, 0.0]], dtype=F64))


def test_parse_interface_matches_the_naive_reading() -> None:
    m, r = 4, 3
    raw = torch.randn(2, interface_size(m, r), generator=torch.Generator().manual_seed(3), dtype=F64)
    xi = parse_interface(raw, m, r)
    check_interface(xi)
    for b in range(2):
        want = naive.parse_interface(raw[b], m, r)
        torch.testing.assert_close(xi.read_keys[b], torch.stack(want["read_keys"]))
        torch.testing.assert_close(xi.read_strengths[b, :, 0], torch.stack(want["read_strengths"]))
        torch.testing.assert_close(xi.free_gates[b], torch.stack(want["free_gates"]))
        torch.testing.assert_close(xi.read_modes[b], torch.stack(want["read_modes"]))
        for name in ("write_key", "erase", "write_vector"):
            torch.testing.assert_close(getattr(xi, name)[b], want[name])
        for name in ("write_strength", "allocation_gate", "write_gate"):
            torch.testing.assert_close(getattr(xi, name)[b, 0], want[name])
    assert interface_size(m, r) == m * r + 3 * m + 5 * r + 3
    torch.testing.assert_close(oneplus(torch.tensor([-50.0, 0.0])), torch.tensor([1.0, 1.6931472]))


# ----------------------------------------------------------------------------- invariants


def _assert_weighting(w: torch.Tensor, tol: float = 1e-12) -> None:
    assert (w >= 0).all() and (w.sum(-1) <= 1 + tol).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_invariants_hold_after_every_step_of_a_random_rollout(seed: int) -> None:
    """Random gates and content weightings (some near 0 and 1) through 40 steps of the memory
    bookkeeping, the public (checked) functions all the way."""
    g = torch.Generator().manual_seed(seed)
    b, n, r = 4, 8, 3

    def squashed(*shape: int) -> torch.Tensor:
        return torch.sigmoid(4 * torch.randn(*shape, generator=g, dtype=F64))

    def sharp_softmax(*shape: int) -> torch.Tensor:
        return torch.softmax(5 * torch.randn(*shape, generator=g, dtype=F64), dim=-1)

    u = torch.zeros(b, n, dtype=F64)
    p = torch.zeros(b, n, dtype=F64)
    link = torch.zeros(b, n, n, dtype=F64)
    w_w = torch.zeros(b, n, dtype=F64)
    w_r = torch.zeros(b, r, n, dtype=F64)
    for _ in range(40):
        psi = retention(squashed(b, r), w_r)
        assert ((psi >= 0) & (psi <= 1)).all()
        u = usage(u, w_w, psi)
        assert ((u >= 0) & (u <= 1)).all()
        a = allocation_weights(u)
        _assert_weighting(a)
        torch.testing.assert_close(a.sum(-1), 1 - u.prod(-1))  # sum_j a[j] = 1 - prod_j u[j]
        w_w = write_weights(sharp_softmax(b, n), a, squashed(b, 1), squashed(b, 1))
        _assert_weighting(w_w)
        link = link_matrix(link, w_w, p)
        assert (link >= 0).all()
        assert (torch.diagonal(link, dim1=1, dim2=2) == 0).all()
        assert (link.sum(1) <= 1 + 1e-12).all() and (link.sum(2) <= 1 + 1e-12).all()
        p = precedence(p, w_w)
        _assert_weighting(p)
        fwd, bwd = directional_weights(link, w_r)
        _assert_weighting(fwd)
        _assert_weighting(bwd)
        modes = sharp_softmax(b, r, 3)
        torch.testing.assert_close(modes.sum(-1), torch.ones(b, r, dtype=F64))
        w_r = read_weights(sharp_softmax(b, r, n), fwd, bwd, modes)
        _assert_weighting(w_r)


# ----------------------------------------------------------------------------- by hand


def test_an_empty_memory_allocates_row_by_row_in_order() -> None:
    """Each step writes all its weight to the allocated row (both gates 1): rows 0, 1, 2, ...
    get one-hot allocations in order, and a full memory has nothing left to allocate."""
    n = 5
    u = torch.zeros(1, n, dtype=F64)
    w_w = torch.zeros(1, n, dtype=F64)
    no_reads = torch.zeros(1, 1, n, dtype=F64)
    content = torch.full((1, n), 1 / n, dtype=F64)
    one = torch.ones(1, 1, dtype=F64)
    for t in range(n):
        u = usage(u, w_w, retention(torch.ones(1, 1, dtype=F64), no_reads))
        a = allocation_weights(u)
        torch.testing.assert_close(a, torch.eye(n, dtype=F64)[t : t + 1], rtol=0, atol=0)
        w_w = write_weights(content, a, one, one)
        torch.testing.assert_close(w_w, a)
    u = usage(u, w_w, torch.ones(1, n, dtype=F64))
    assert (u == 1).all() and (allocation_weights(u) == 0).all()


def test_the_allocation_weighting_itself_fills_an_empty_memory_in_order() -> None:
    """Written with its own allocation weighting, an empty memory fills rows 0, 1, 2, ... (the
    paper's formula, without the reference implementation's usage floor; see its docstring)."""
    n = 6
    u = torch.zeros(1, n)
    a = torch.zeros(1, n)
    for t in range(n):
        u = usage(u, a, torch.ones(1, n))
        a = allocation_weights(u)
        assert a.argmax().item() == t and a[0, t] == 1


def test_a_freed_row_is_allocated_again_first() -> None:
    n = 6
    full = torch.ones(1, n, dtype=F64)
    no_write = torch.zeros(1, n, dtype=F64)
    read_rows = torch.zeros(1, 2, n, dtype=F64)
    read_rows[0, 0, 2] = 1.0  # head 0 read row 2
    read_rows[0, 1, 4] = 1.0  # head 1 read row 4
    # free gate 1 on head 0: row 2 is free again, the only row allocation can give
    u = usage(full, no_write, retention(torch.tensor([[1.0, 0.0]], dtype=F64), read_rows))
    torch.testing.assert_close(allocation_weights(u), torch.eye(n, dtype=F64)[2:3])
    # partly freed rows: 0.9 of row 2 and 0.5 of row 4; the freer row comes first in the free list
    u = usage(full, no_write, retention(torch.tensor([[0.9, 0.5]], dtype=F64), read_rows))
    torch.testing.assert_close(u, torch.tensor([[1, 1, 0.1, 1, 0.5, 1]], dtype=F64))
    want = torch.tensor([[0, 0, 0.9, 0, 0.5 * 0.1, 0]], dtype=F64)
    torch.testing.assert_close(allocation_weights(u), want)
    # no free gate open: nothing to allocate
    u = usage(full, no_write, retention(torch.zeros(1, 2, dtype=F64), read_rows))
    assert (allocation_weights(u) == 0).all()


def test_links_record_the_order_of_writes() -> None:
    """Write rows 0, 2, 1 in turn (one-hot): L[2, 0] = L[1, 2] = 1; forward from row 0 is row 2,
    then row 1; backward from row 1 is row 2."""
    n = 4
    e = torch.eye(n, dtype=F64)
    link = torch.zeros(1, n, n, dtype=F64)
    p = torch.zeros(1, n, dtype=F64)
    for row in (0, 2, 1):
        link = link_matrix(link, e[row : row + 1], p)
        p = precedence(p, e[row : row + 1])
    want = torch.zeros(n, n, dtype=F64)
    want[2, 0] = want[1, 2] = 1.0
    torch.testing.assert_close(link[0], want)
    torch.testing.assert_close(p[0], e[1])
    fwd, bwd = directional_weights(link, torch.stack([e[0], e[2], e[1]])[None])  # 3 read heads
    torch.testing.assert_close(fwd[0], torch.stack([e[2], e[1], torch.zeros(n, dtype=F64)]))
    torch.testing.assert_close(bwd[0], torch.stack([torch.zeros(n, dtype=F64), e[0], e[2]]))
    # a half-weight write to row 3 halves the links into and out of it
    link = link_matrix(link, 0.5 * e[3:4], p)
    assert link[0, 3, 1] == 0.5 and link[0, 2, 0] == 1.0


def test_gates_and_read_modes_select_their_weightings() -> None:
    g = torch.Generator().manual_seed(5)
    c, a = _weighting(g, 1, N), _weighting(g, 1, N)
    one, zero = torch.ones(1, 1, dtype=F64), torch.zeros(1, 1, dtype=F64)
    torch.testing.assert_close(write_weights(c, a, one, one), a)  # allocate
    torch.testing.assert_close(write_weights(c, a, zero, one), c)  # write by content
    assert (write_weights(c, a, one, zero) == 0).all()  # do not write
    content, fwd, bwd = (_weighting(g, 1, 1, N) for _ in range(3))
    for mode, want in zip(READ_MODES, (bwd, content, fwd), strict=True):
        modes = torch.zeros(1, 1, 3, dtype=F64)
        modes[0, 0, READ_MODES.index(mode)] = 1.0
        torch.testing.assert_close(read_weights(content, fwd, bwd, modes), want)


# ----------------------------------------------------------------------------- errors


def _bad_calls():
    g = torch.Generator().manual_seed(0)
    f, w_r = _gates(g, B, R), _weighting(g, B, R, N)
    u, w = _gates(g, B, N), _weighting(g, B, N)
    link = _link(g)
    gate = _gates(g, B, 1)
    modes = torch.softmax(torch.randn(B, R, 3, dtype=F64), -1)
    return [
        ("retention: gates per head", lambda: retention(f[:, :1], w_r), r"free_gates must have shape \(B, R\) = \(3, 2\)"),
        ("retention: gate > 1", lambda: retention(f + 1, w_r), r"free_gates must have every entry in \[0, 1\]"),
        ("retention: no rows", lambda: retention(f, w_r[..., :0]), "N >= 1 memory rows"),
        ("retention: no heads", lambda: retention(f[:, :0], w_r[:, :0]), "R >= 1 read heads"),
        ("retention: not a weighting", lambda: retention(f, w_r * 5), "read_weights_prev must be a weighting"),
        ("retention: 2-D weights", lambda: retention(f, w), r"read_weights_prev must have shape \(B, R, N\)"),
        ("usage: shapes", lambda: usage(u, w[:, :-1], u), "write_weights_prev must have the shape of usage_prev"),
        ("usage: usage > 1", lambda: usage(u + 1, w, u), r"usage_prev must have every entry in \[0, 1\]"),
        ("usage: NaN", lambda: usage(u * float("nan"), w, u), r"usage_prev must have every entry in \[0, 1\]"),
        ("allocation: 3-D", lambda: allocation_weights(u[None]), r"usage must have shape \(B, N\)"),
        ("allocation: negative", lambda: allocation_weights(u - 1), r"usage must have every entry in \[0, 1\]"),
        ("allocation: not a tensor", lambda: allocation_weights([[0.5]]), "usage must be a tensor"),
        ("allocation: no rows", lambda: allocation_weights(u[:, :0]), "N >= 1 memory rows"),
        ("precedence: shapes", lambda: precedence(w, w[:1]), "write_weights must have the shape of precedence_prev"),
        ("precedence: not a weighting", lambda: precedence(w, w * 10), "write_weights must be a weighting"),
        ("link: link rows", lambda: link_matrix(link[:, :-1], w, w), r"link_prev must have shape \(B, N, N\) = \(3, 6, 6\)"),
        ("link: negative", lambda: link_matrix(-link, w, w), r"link_prev must have every entry in \[0, 1\]"),
        ("link: 2-D", lambda: link_matrix(link[0], w, w), r"link_prev must have shape \(B, N, N\)"),
        ("directional: rows", lambda: directional_weights(link, w_r[..., :-1]), r"link must have shape \(B, N, N\) = \(3, 5, 5\)"),
        ("write: gate > 1", lambda: write_weights(w, w, gate + 1, gate), r"allocation_gate must have every entry in \[0, 1\]"),
        ("write: gate shape", lambda: write_weights(w, w, gate, gate.expand(B, 2)), r"write_gate must have shape \(B, 1\)"),
        ("write: batch", lambda: write_weights(w, w, gate[:1], gate), r"allocation_gate must have shape \(B, 1\) = \(3, 1\)"),
        ("read: modes not a distribution", lambda: read_weights(w_r, w_r, w_r, modes * 2), "read_modes must be a distribution"),
        ("read: two modes", lambda: read_weights(w_r, w_r, w_r, modes[..., :2]), r"read_modes must have shape \(B, R, 3\)"),
        ("read: heads", lambda: read_weights(w_r, w_r, w_r, modes[:, :1]), r"read_modes must have shape \(B, R, 3\) = \(3, 2, 3\)"),
        ("read: shapes", lambda: read_weights(w_r, w_r[:, :1], w_r, modes), "forward must have the shape of content"),
        ("interface: width", lambda: parse_interface(torch.zeros(2, 10), 4, 2), r"raw must have shape \(B, 33\)"),
        ("interface: heads", lambda: parse_interface(torch.zeros(2, 10), 4, 0), "read_heads must be an integer >= 1"),
    ]  # fmt: skip


@pytest.mark.parametrize("case", _bad_calls(), ids=lambda c: c[0])
def test_bad_inputs_raise_one_line_errors(case) -> None:
    _, call, message = case
    with pytest.raises(ValueError, match=message) as err:
        call()
    assert "\n" not in str(err.value)


def test_check_interface_refuses_out_of_range_values() -> None:
    xi = parse_interface(torch.randn(2, interface_size(3, 2), dtype=F64), 3, 2)
    check_interface(xi)
    with pytest.raises(ValueError, match="read_strengths must be >= 1"):
        check_interface(xi._replace(read_strengths=xi.read_strengths - 1))
    with pytest.raises(ValueError, match=r"erase must have every entry in \[0, 1\]"):
        check_interface(xi._replace(erase=xi.erase + 1))
    with pytest.raises(ValueError, match="read_modes must be a distribution"):
        check_interface(xi._replace(read_modes=xi.read_modes * 0.5))
    with pytest.raises(ValueError, match=r"free_gates must have shape \(2, 2\)"):
        check_interface(xi._replace(free_gates=xi.free_gates[:, :1]))
    with pytest.raises(ValueError, match="expected a DNCInterface"):
        check_interface(tuple(xi))
    assert isinstance(xi, DNCInterface)
