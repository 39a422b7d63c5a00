r"""The NTM's controller: the network that reads the input and drives the heads.

Graves et al. (2014, section 4) try two controllers; both live here behind one interface.

LSTM (stacked, ``controller_layers`` = $L$ layers of width $C$). Layer $l$ sees
$\mathbf{u}^l_t$ (for $l = 1$: the external input and the previous read vectors, concatenated;
above: the hidden state of the layer below) and computes, with one fused matrix product,

$$\begin{aligned}
[\mathbf{i}; \mathbf{f}; \mathbf{o}; \hat{\mathbf{c}}] &= W^l [\mathbf{u}^l_t; \mathbf{h}^l_{t-1}]
 + \mathbf{b}^l, \\
\mathbf{c}^l_t &= \sigma(\mathbf{f}) \odot \mathbf{c}^l_{t-1} + \sigma(\mathbf{i}) \odot
 \tanh(\hat{\mathbf{c}}), \qquad
\mathbf{h}^l_t = \sigma(\mathbf{o}) \odot \tanh(\mathbf{c}^l_t).
\end{aligned}$$

The gate blocks are stored in the order input, forget, output, candidate (sigmoid on the first
three in one call). The forget-gate bias starts at 1, a common choice that lets the cell keep
its state early in training. The controller output is $\mathbf{h}^L_t$.

Feedforward (MLP): $\mathbf{h}^l_t = \tanh(W^l \mathbf{u}^l_t + \mathbf{b}^l)$. Tanh keeps the
output in $(-1, 1)$, the same range as the LSTM's, so the heads see similar inputs with either
controller. It has no state of its own: everything it remembers is in the memory.

Interface (both): ``initial_state(batch_size)``, ``step(inp, state) -> (output (B, C), state)``.
For speed the NTM also uses ``project_external(x)``: the first layer's pre-activation from the
external input for all time steps in one matrix product, and ``step_projected``, a step that
adds that precomputed part instead of multiplying the external input again.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["Controller", "FeedforwardController", "LSTMController", "make_controller"]

State = tuple[Tensor, ...]


class Controller(nn.Module):
    """Common base: a stack of ``num_layers`` layers of width ``hidden_size``.

    ``input_size`` is the width of a step's full input; its first ``external_size`` columns are
    the external input (``project_external`` precomputes their contribution for a sequence).
    """

    gates: int = 1  # pre-activation blocks per layer (4 for the LSTM)
    recurrent: bool = False

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, external_size: int = 0
    ) -> None:
        super().__init__()
        if min(input_size, hidden_size, num_layers) < 1:
            raise ValueError(
                "input_size, hidden_size and num_layers must be >= 1; got "
                f"{input_size}, {hidden_size}, {num_layers}"
            )
        if not 0 <= external_size <= input_size:
            raise ValueError(
                f"external_size must be in [0, input_size = {input_size}]; got {external_size}"
            )
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.external_size = external_size
        extra = hidden_size if self.recurrent else 0
        widths = [input_size] + [hidden_size] * (num_layers - 1)
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(self.gates * hidden_size, w + extra)) for w in widths
        )
        self.biases = nn.ParameterList(
            nn.Parameter(torch.empty(self.gates * hidden_size)) for _ in widths
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(self.hidden_size)
        for w, b in zip(self.weights, self.biases, strict=True):
            nn.init.uniform_(w, -bound, bound)
            nn.init.uniform_(b, -bound, bound)

    def initial_state(self, batch_size: int) -> State:
        raise NotImplementedError

    def project_external(self, x: Tensor) -> Tensor:
        """First layer's pre-activation from the external input, bias included.

        ``x``: ``(..., external_size)`` -> ``(..., gates * C)``.
        """
        w = self.weights[0][:, : self.external_size]  # (G, E)
        return torch.nn.functional.linear(x, w, self.biases[0])  # (..., G)

    def prepare(self) -> list[Tensor]:
        """The transposed weights a step multiplies by (computed once per sequence).

        Layer 0: the non-external input columns and the recurrent columns, ``(I - E [+ C], G)``;
        above: ``(C [+ C], G)``.
        """
        first = self.weights[0][:, self.external_size :].t()
        return [first] + [w.t() for w in self.weights[1:]]

    def step(self, inp: Tensor, state: State) -> tuple[Tensor, State]:
        """One step on the full input ``inp`` ``(B, input_size)``; returns ``(B, C)`` and state."""
        x_proj = self.project_external(inp[:, : self.external_size])  # (B, G)
        return self.step_projected(x_proj, inp[:, self.external_size :], state)

    def step_projected(
        self, x_proj: Tensor, rest: Tensor, state: State, prepared: list[Tensor] | None = None
    ) -> tuple[Tensor, State]:
        """Like :meth:`step`, with the external part already projected (``project_external``).

        Args:
            x_proj: ``(B, gates * C)``.
            rest: ``(B, input_size - external_size)``, the non-external inputs (read vectors).
            state: from :meth:`initial_state` or the previous step.
            prepared: :meth:`prepare`'s result, to reuse across steps.
        """
        raise NotImplementedError


class LSTMController(Controller):
    """Stacked LSTM controller; the state is ``(h_1, c_1, ..., h_L, c_L)``, each ``(B, C)``."""

    gates = 4
    recurrent = True

    def reset_parameters(self) -> None:
        super().reset_parameters()
        c = self.hidden_size
        with torch.no_grad():
            for b in self.biases:
                b[c : 2 * c].fill_(1.0)  # forget gate

    def initial_state(self, batch_size: int) -> State:
        w = self.weights[0]
        zeros = w.new_zeros(batch_size, self.hidden_size)  # (B, C)
        return (zeros,) * (2 * self.num_layers)

    def _cell(self, pre: Tensor, c_prev: Tensor) -> tuple[Tensor, Tensor]:
        size = self.hidden_size
        ifo, cand = pre.split([3 * size, size], dim=1)  # (B, 3C), (B, C)
        i, f, o = torch.sigmoid(ifo).split(size, dim=1)  # (B, C) each
        c = torch.addcmul(f * c_prev, i, torch.tanh(cand))  # (B, C)
        h = o * torch.tanh(c)  # (B, C)
        return h, c

    def step_projected(
        self, x_proj: Tensor, rest: Tensor, state: State, prepared: list[Tensor] | None = None
    ) -> tuple[Tensor, State]:
        weights = self.prepare() if prepared is None else prepared
        new: list[Tensor] = []
        below = rest
        for layer in range(self.num_layers):
            h_prev, c_prev = state[2 * layer], state[2 * layer + 1]
            u = torch.cat([below, h_prev], dim=1)  # (B, I - E + C) or (B, 2C)
            start = x_proj if layer == 0 else self.biases[layer]
            pre = torch.addmm(start, u, weights[layer])  # (B, 4C)
            h, c = self._cell(pre, c_prev)
            new += [h, c]
            below = h
        return below, tuple(new)


class FeedforwardController(Controller):
    """Stacked tanh MLP controller; it has no state (``initial_state`` returns ``()``)."""

    gates = 1
    recurrent = False

    def initial_state(self, batch_size: int) -> State:
        return ()

    def step_projected(
        self, x_proj: Tensor, rest: Tensor, state: State, prepared: list[Tensor] | None = None
    ) -> tuple[Tensor, State]:
        weights = self.prepare() if prepared is None else prepared
        h = torch.tanh(torch.addmm(x_proj, rest, weights[0]))  # (B, C)
        for layer in range(1, self.num_layers):
            h = torch.tanh(torch.addmm(self.biases[layer], h, weights[layer]))  # (B, C)
        return h, ()


def make_controller(
    kind: str, input_size: int, hidden_size: int, num_layers: int = 1, external_size: int = 0
) -> Controller:
    """``kind`` is ``"lstm"`` or ``"feedforward"``."""
    classes = {"lstm": LSTMController, "feedforward": FeedforwardController}
    if kind not in classes:
        raise ValueError(f"controller must be one of {sorted(classes)}; got {kind!r}")
    return classes[kind](input_size, hidden_size, num_layers, external_size)
