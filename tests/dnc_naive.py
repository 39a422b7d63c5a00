"""The Differentiable Neural Computer written the straightforward way, for the tests to compare
against.

Every function loops over batch elements, heads and memory rows in Python and transcribes the
equations of Graves et al. (2016, Methods) one entry at a time. Slow on purpose: it is the
independent formulation the vectorised library must agree with, values and gradients (every
entry is built from tensors, so autograd runs through the loops).
"""

from __future__ import annotations

import ntm_naive
import torch
from torch import Tensor


def _stack(rows: list) -> Tensor:
    """Nested lists of 0-d tensors -> one tensor."""
    if isinstance(rows[0], list):
        return torch.stack([_stack(r) for r in rows])
    return torch.stack(rows)


# ----------------------------------------------------------------------------- allocation


def retention(free_gates: Tensor, read_weights_prev: Tensor) -> Tensor:
    """psi[j] = prod_i (1 - f_i w^r_i[j])."""
    batch, heads, n = read_weights_prev.shape
    out = []
    for b in range(batch):
        row = []
        for j in range(n):
            value = torch.ones((), dtype=read_weights_prev.dtype)
            for i in range(heads):
                value = value * (1 - free_gates[b, i] * read_weights_prev[b, i, j])
            row.append(value)
        out.append(row)
    return _stack(out)


def usage(usage_prev: Tensor, write_weights_prev: Tensor, retention: Tensor) -> Tensor:
    """u[j] = (u_prev[j] + w_prev[j] - u_prev[j] w_prev[j]) psi[j]."""
    batch, n = usage_prev.shape
    out = []
    for b in range(batch):
        row = []
        for j in range(n):
            u, w = usage_prev[b, j], write_weights_prev[b, j]
            row.append((u + w - u * w) * retention[b, j])
        out.append(row)
    return _stack(out)


def allocation_weights(usage: Tensor) -> Tensor:
    """a[phi[j]] = (1 - u[phi[j]]) prod_{i<j} u[phi[i]], phi the rows by ascending usage (ties
    by row index)."""
    batch, n = usage.shape
    out = []
    for b in range(batch):
        free_list = sorted(range(n), key=lambda i: (float(usage[b, i].detach()), i))
        row: list = [None] * n
        product = torch.ones((), dtype=usage.dtype)
        for i in free_list:
            row[i] = (1 - usage[b, i]) * product
            product = product * usage[b, i]
        out.append(row)
    return _stack(out)


# ----------------------------------------------------------------------------- linkage


def precedence(precedence_prev: Tensor, write_weights: Tensor) -> Tensor:
    """p[i] = (1 - sum_k w[k]) p_prev[i] + w[i]."""
    batch, n = write_weights.shape
    out = []
    for b in range(batch):
        total = sum(write_weights[b, k] for k in range(n))
        out.append([(1 - total) * precedence_prev[b, i] + write_weights[b, i] for i in range(n)])
    return _stack(out)


def link_matrix(link_prev: Tensor, write_weights: Tensor, precedence_prev: Tensor) -> Tensor:
    """L[i, j] = (1 - w[i] - w[j]) L_prev[i, j] + w[i] p_prev[j]; L[i, i] = 0."""
    batch, n = write_weights.shape
    zero = torch.zeros((), dtype=write_weights.dtype)
    out = []
    for b in range(batch):
        w, p = write_weights[b], precedence_prev[b]
        out.append([
            [zero if i == j else (1 - w[i] - w[j]) * link_prev[b, i, j] + w[i] * p[j]
             for j in range(n)]
            for i in range(n)
        ])  # fmt: skip
    return _stack(out)


def directional_weights(link: Tensor, read_weights_prev: Tensor) -> tuple[Tensor, Tensor]:
    """f[i] = sum_j L[i, j] w[j] and b[i] = sum_j L[j, i] w[j], for every read head."""
    batch, heads, n = read_weights_prev.shape
    forward, backward = [], []
    for b in range(batch):
        fs, bs = [], []
        for h in range(heads):
            w = read_weights_prev[b, h]
            fs.append([sum(link[b, i, j] * w[j] for j in range(n)) for i in range(n)])
            bs.append([sum(link[b, j, i] * w[j] for j in range(n)) for i in range(n)])
        forward.append(fs)
        backward.append(bs)
    return _stack(forward), _stack(backward)


# ----------------------------------------------------------------------------- weightings


def write_weights(content: Tensor, allocation: Tensor, allocation_gate: Tensor,
                  write_gate: Tensor) -> Tensor:
    """w[i] = g^w (g^a a[i] + (1 - g^a) c[i])."""
    batch, n = content.shape
    out = []
    for b in range(batch):
        ga, gw = allocation_gate[b, 0], write_gate[b, 0]
        out.append([gw * (ga * allocation[b, i] + (1 - ga) * content[b, i]) for i in range(n)])
    return _stack(out)


def read_weights(content: Tensor, forward: Tensor, backward: Tensor, read_modes: Tensor) -> Tensor:
    """w^r[i] = pi[0] b[i] + pi[1] c[i] + pi[2] f[i], for every read head."""
    batch, heads, n = content.shape
    out = []
    for b in range(batch):
        per_head = []
        for h in range(heads):
            pi = read_modes[b, h]
            per_head.append([
                pi[0] * backward[b, h, i] + pi[1] * content[b, h, i] + pi[2] * forward[b, h, i]
                for i in range(n)
            ])  # fmt: skip
        out.append(per_head)
    return _stack(out)


# ----------------------------------------------------------------------------- the whole DNC


def _sigmoid(x: Tensor) -> Tensor:
    return 1 / (1 + torch.exp(-x))


def _oneplus(x: Tensor) -> Tensor:
    return 1 + torch.log(1 + torch.exp(x))


def parse_interface(xi: Tensor, m: int, r: int) -> dict[str, list]:
    """One sequence's raw interface vector (1-D), read off part by part in the paper's layout."""
    pos = 0

    def take(size: int) -> Tensor:
        nonlocal pos
        part = xi[pos : pos + size]
        pos += size
        return part

    read_keys = [take(m) for _ in range(r)]
    read_strengths = [_oneplus(take(1)[0]) for _ in range(r)]
    write_key = take(m)
    write_strength = _oneplus(take(1)[0])
    erase = _sigmoid(take(m))
    write_vector = take(m)
    free_gates = [_sigmoid(take(1)[0]) for _ in range(r)]
    allocation_gate = _sigmoid(take(1)[0])
    write_gate = _sigmoid(take(1)[0])
    read_modes = []
    for _ in range(r):
        e = torch.exp(take(3))
        read_modes.append(e / e.sum())
    assert pos == xi.shape[0], (pos, xi.shape)
    return {
        "read_keys": read_keys, "read_strengths": read_strengths, "write_key": write_key,
        "write_strength": write_strength, "erase": erase, "write_vector": write_vector,
        "free_gates": free_gates, "allocation_gate": allocation_gate, "write_gate": write_gate,
        "read_modes": read_modes,
    }  # fmt: skip


def dnc_forward(model, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """The DNC of ``neural_memory.dnc.DNC``, one sequence, one step and one head at a time.

    Reads the model's parameters by name and redoes every step with the naive functions above
    (and the NTM's naive content weighting, write and read). Returns logits ``(B, T, O)`` and
    the trace's ``read_weights``, ``write_weights``, ``memory``, ``usage``, ``allocation``,
    ``precedence`` and ``link``, shaped like the model's trace.
    """
    cfg = model.config
    n, m, r = cfg.memory_rows, cfg.memory_width, cfg.read_heads
    ctrl = model.controller
    clip = cfg.clip_controller

    def clamp(v: Tensor) -> Tensor:
        return v.clamp(-clip, clip) if clip is not None else v

    names = ("read_weights", "write_weights", "memory", "usage", "allocation", "precedence", "link")
    logits: list = []
    traces: dict[str, list] = {k: [] for k in names}
    for b in range(x.shape[0]):
        memory = model.memory_init.clone()  # (N, M)
        zeros = torch.zeros(n, dtype=x.dtype)
        u, p, w_w = zeros, zeros, zeros
        link = torch.zeros(n, n, dtype=x.dtype)
        w_r = [zeros] * r
        reads = [torch.zeros(m, dtype=x.dtype)] * r
        state = [(torch.zeros(cfg.controller_size, dtype=x.dtype),) * 2
                 for _ in range(cfg.controller_layers)]  # fmt: skip
        outs, seq = [], {k: [] for k in names}
        seq["memory"].append(memory)
        for t in range(x.shape[1]):
            inp = torch.cat([x[b, t], *reads])
            for layer in range(cfg.controller_layers):
                state[layer] = ntm_naive._lstm_layer(
                    ctrl.weights[layer], ctrl.biases[layer], inp, *state[layer]
                )
                inp = state[layer][0]
            h = torch.cat([s[0] for s in state])  # every layer's hidden state
            xi = parse_interface(clamp(model.interface.weight @ h + model.interface.bias), m, r)

            psi = retention(torch.stack(xi["free_gates"])[None], torch.stack(w_r)[None])
            u = usage(u[None], w_w[None], psi)[0]
            a = allocation_weights(u[None])[0]
            c_w = ntm_naive.content_weights(
                memory[None], xi["write_key"][None], xi["write_strength"].reshape(1, 1)
            )[0]
            w_w = write_weights(  # the usage above used the previous step's
                c_w[None], a[None], xi["allocation_gate"].reshape(1, 1),
                xi["write_gate"].reshape(1, 1),
            )[0]  # fmt: skip
            memory = ntm_naive.write(memory[None], w_w[None], xi["erase"][None],
                                     xi["write_vector"][None])[0]  # fmt: skip
            link = link_matrix(link[None], w_w[None], p[None])[0]  # with the previous p
            p = precedence(p[None], w_w[None])[0]
            fwd, bwd = directional_weights(link[None], torch.stack(w_r)[None])
            new_w_r = []
            for i in range(r):
                c_r = ntm_naive.content_weights(
                    memory[None], xi["read_keys"][i][None], xi["read_strengths"][i].reshape(1, 1)
                )
                new_w_r.append(read_weights(
                    c_r[:, None], fwd[:, i : i + 1], bwd[:, i : i + 1],
                    xi["read_modes"][i].reshape(1, 1, 3),
                )[0, 0])  # fmt: skip
            w_r = new_w_r
            reads = [ntm_naive.read(memory[None], w_r[i][None])[0] for i in range(r)]
            y = (model.output.weight @ h + model.output.bias
                 + model.read_output.weight @ torch.cat(reads))  # fmt: skip
            outs.append(clamp(y))
            for k, v in (("read_weights", torch.stack(w_r)), ("write_weights", w_w[None]),
                         ("memory", memory), ("usage", u), ("allocation", a),
                         ("precedence", p), ("link", link)):  # fmt: skip
                seq[k].append(v)
        logits.append(torch.stack(outs))
        for k in names:
            traces[k].append(torch.stack(seq[k]))
    return torch.stack(logits), {k: torch.stack(v) for k, v in traces.items()}
