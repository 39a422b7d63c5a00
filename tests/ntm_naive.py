"""The Neural Turing Machine written the straightforward way, for the tests to compare against.

Every function loops over batch elements, heads and memory rows in Python and follows the
paper's equations (Graves et al., 2014, eqs. 2-9) literally. Slow on purpose: it is the
independent formulation the vectorised library must agree with.
"""

from __future__ import annotations

import torch
from torch import Tensor


def read(memory: Tensor, w: Tensor) -> Tensor:
    """Eq. (2) for (B, N, M) memory and (B, N) weights, one batch element and row at a time."""
    batch, n, m = memory.shape
    out = []
    for b in range(batch):
        r = torch.zeros(m, dtype=memory.dtype)
        for i in range(n):
            r = r + w[b, i] * memory[b, i]
        out.append(r)
    return torch.stack(out)


def write(memory: Tensor, w: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Eqs. (3)-(4) for one head, row by row."""
    batch, n, _ = memory.shape
    out = []
    for b in range(batch):
        rows = []
        for i in range(n):
            erased = memory[b, i] * (1 - w[b, i] * erase[b])
            rows.append(erased + w[b, i] * add[b])
        out.append(torch.stack(rows))
    return torch.stack(out)


def write_heads(memory: Tensor, w: Tensor, erase: Tensor, add: Tensor) -> Tensor:
    """Several heads (B, H, ...): every head's erase first, then every head's add."""
    heads = w.shape[1]
    out = memory
    for h in range(heads):  # erase phase
        out = write(out, w[:, h], erase[:, h], torch.zeros_like(add[:, h]))
    for h in range(heads):  # add phase
        out = write(out, w[:, h], torch.zeros_like(erase[:, h]), add[:, h])
    return out


def cosine_similarity(memory: Tensor, key: Tensor, eps: float = 1e-8) -> Tensor:
    batch, n, m = memory.shape
    out = torch.zeros(batch, n, dtype=memory.dtype)
    for b in range(batch):
        for i in range(n):
            dot = sum(key[b, j] * memory[b, i, j] for j in range(m))
            nu = torch.sqrt(sum(key[b, j] ** 2 for j in range(m)))
            nv = torch.sqrt(sum(memory[b, i, j] ** 2 for j in range(m)))
            out[b, i] = dot / (nu * nv + eps)
    return out


def content_weights(memory: Tensor, key: Tensor, beta: Tensor) -> Tensor:
    """Eqs. (5)-(6): exp(beta K) / sum_j exp(beta K)."""
    sim = cosine_similarity(memory, key)
    batch, n = sim.shape
    out = torch.zeros_like(sim)
    for b in range(batch):
        e = [torch.exp(beta[b, 0] * sim[b, i]) for i in range(n)]
        total = sum(e)
        for i in range(n):
            out[b, i] = e[i] / total
    return out


def interpolate(w_content: Tensor, w_prev: Tensor, g: Tensor) -> Tensor:
    """Eq. (7)."""
    out = torch.zeros_like(w_content)
    for b in range(w_content.shape[0]):
        for i in range(w_content.shape[1]):
            out[b, i] = g[b, 0] * w_content[b, i] + (1 - g[b, 0]) * w_prev[b, i]
    return out


def shift(w: Tensor, s: Tensor) -> Tensor:
    """Eq. (8): w~(i) = sum_j w(j) s(i - j), with s indexed by shift -(K-1)/2 ... +(K-1)/2."""
    batch, n = w.shape
    k = s.shape[1]
    half = (k - 1) // 2
    out = torch.zeros_like(w)
    for b in range(batch):
        for i in range(n):
            total = torch.zeros((), dtype=w.dtype)
            for j in range(n):
                d = (i - j) % n  # the shift that carries row j to row i
                offset = d if d <= n // 2 else d - n  # as a signed shift
                if -half <= offset <= half:
                    total = total + w[b, j] * s[b, offset + half]
            out[b, i] = total
    return out


def sharpen(w: Tensor, gamma: Tensor) -> Tensor:
    """Eq. (9) literally: w^gamma / sum w^gamma."""
    out = torch.zeros_like(w)
    for b in range(w.shape[0]):
        powered = [w[b, i] ** gamma[b, 0] for i in range(w.shape[1])]
        total = sum(powered)
        for i in range(w.shape[1]):
            out[b, i] = powered[i] / total
    return out


def address(memory, w_prev, key, beta, g, s, gamma) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    w_c = content_weights(memory, key, beta)
    w_g = interpolate(w_c, w_prev, g)
    w_s = shift(w_g, s)
    return w_c, w_g, w_s, sharpen(w_s, gamma)


# ----------------------------------------------------------------------------- the whole NTM


def _softplus(x: Tensor) -> Tensor:
    return torch.log(1 + torch.exp(x))


def _lstm_layer(weight: Tensor, bias: Tensor, u: Tensor, h: Tensor, c: Tensor):
    """One LSTM layer for one sequence; gate blocks input, forget, output, candidate."""
    size = h.shape[0]
    z = weight @ torch.cat([u, h]) + bias
    i = torch.sigmoid(z[:size])
    f = torch.sigmoid(z[size : 2 * size])
    o = torch.sigmoid(z[2 * size : 3 * size])
    cand = torch.tanh(z[3 * size :])
    c = f * c + i * cand
    return o * torch.tanh(c), c


def ntm_forward(model, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    """The NTM of ``neural_memory.ntm.NTM``, one sequence, one time step and one head at a time.

    Reads the model's parameters by name and redoes every step with the naive functions above.
    Returns logits ``(B, T, O)`` and ``{"read_weights", "write_weights", "memory"}`` shaped like
    the model's trace.
    """
    cfg = model.config
    n_read, n_write = cfg.read_heads, cfg.write_heads
    ctrl = model.controller
    per_kind = model.heads.parameter_weights()
    widths = model.heads.widths
    clip = cfg.clip_controller

    def raw(name: str, head: int, h: Tensor) -> Tensor:
        weight, bias = per_kind[name]
        rows = slice(head * widths[name], (head + 1) * widths[name])
        value = weight[rows] @ h + bias[rows]
        return value.clamp(-clip, clip) if clip is not None else value

    logits, read_ws, write_ws, memories = [], [], [], []
    for b in range(x.shape[0]):
        memory = model.initial_memory().clone()
        reads = [model.initial_reads()[i] for i in range(n_read)]
        w_prev = [model.initial_weights()[j] for j in range(n_read + n_write)]
        state = [
            (torch.zeros(cfg.controller_size, dtype=x.dtype),) * 2
            for _ in range(cfg.controller_layers)
        ]
        outs, rws, wws, mems = [], [], [], [memory]
        for t in range(x.shape[1]):
            u = torch.cat([x[b, t], *reads])
            for layer in range(cfg.controller_layers):
                weight, bias = ctrl.weights[layer], ctrl.biases[layer]
                if cfg.controller == "lstm":
                    state[layer] = _lstm_layer(weight, bias, u, *state[layer])
                    u = state[layer][0]
                else:
                    u = torch.tanh(weight @ u + bias)
            h = u
            new_w = []
            for j in range(n_read + n_write):
                key = torch.tanh(raw("key", j, h))
                beta = _softplus(raw("beta", j, h))
                gamma = 1 + _softplus(raw("gamma", j, h))
                gate = torch.sigmoid(raw("gate", j, h))
                s = torch.softmax(raw("shift", j, h), dim=0)
                *_, w = address(
                    memory[None], w_prev[j][None], key[None], beta[None], gate[None], s[None],
                    gamma[None],
                )
                new_w.append(w[0])
            reads = [read(memory[None], new_w[i][None])[0] for i in range(n_read)]
            erase = torch.stack([torch.sigmoid(raw("erase", j, h)) for j in range(n_write)])
            add = torch.stack([torch.tanh(raw("add", j, h)) for j in range(n_write)])
            w_write = torch.stack(new_w[n_read:])
            memory = write_heads(memory[None], w_write[None], erase[None], add[None])[0]
            w_prev = new_w
            out_in = torch.cat([h, *reads]) if cfg.output_from_reads else h
            y = model.output.weight @ out_in + model.output.bias
            outs.append(y.clamp(-clip, clip) if clip is not None else y)
            rws.append(torch.stack(new_w[:n_read]))
            wws.append(w_write)
            mems.append(memory)
        logits.append(torch.stack(outs))
        read_ws.append(torch.stack(rws))
        write_ws.append(torch.stack(wws))
        memories.append(torch.stack(mems))
    trace = {
        "read_weights": torch.stack(read_ws),
        "write_weights": torch.stack(write_ws),
        "memory": torch.stack(memories),
    }
    return torch.stack(logits), trace
