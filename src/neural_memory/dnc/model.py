r"""The Differentiable Neural Computer (Graves et al., 2016): an LSTM controller, one write head
and $R$ read heads on an $N \times M$ memory with usage and temporal links.

One time step $t$, for a batch of sequences (Methods of the paper; each equation lives in the
module named next to it, as a pure function):

1. Controller: $\mathbf{h}_t = \mathrm{LSTM}([\mathbf{x}_t; \mathbf{r}^1_{t-1}; \dots;
   \mathbf{r}^R_{t-1}], \text{state}_{t-1})$; with several layers, $\mathbf{h}_t$ is all their
   hidden states, concatenated (as in the paper).
2. Interface: $\boldsymbol{\xi}_t = W_\xi \mathbf{h}_t + \mathbf{b}_\xi$, split and squashed
   into keys, strengths, gates, erase and write vectors and read modes
   (:mod:`~neural_memory.dnc.interface`).
3. Allocation (:mod:`~neural_memory.dnc.allocation`): retention $\boldsymbol{\psi}_t$ from the
   free gates and $\mathbf{w}^{r}_{t-1}$, usage $\mathbf{u}_t$ from $\mathbf{u}_{t-1}$,
   $\mathbf{w}^w_{t-1}$ and $\boldsymbol{\psi}_t$, allocation weighting $\mathbf{a}_t$.
4. Write weighting (:mod:`~neural_memory.dnc.weighting`): content $\mathbf{c}^w_t =
   \mathcal{C}(M_{t-1}, \mathbf{k}^w_t, \beta^w_t)$ (the NTM's
   :func:`~neural_memory.ntm.addressing.content_weights`), then $\mathbf{w}^w_t = g^w_t [g^a_t
   \mathbf{a}_t + (1 - g^a_t) \mathbf{c}^w_t]$.
5. Write: $M_t = M_{t-1} \circ (E - \mathbf{w}^w_t \mathbf{e}_t^\top) + \mathbf{w}^w_t
   \mathbf{v}_t^\top$, the NTM's erase-then-add (:mod:`~neural_memory.ntm.memory`).
6. Linkage (:mod:`~neural_memory.dnc.linkage`): $L_t$ from $L_{t-1}$, $\mathbf{w}^w_t$ and
   $\mathbf{p}_{t-1}$; then $\mathbf{p}_t$; forward and backward weightings from $L_t$ and
   $\mathbf{w}^{r}_{t-1}$.
7. Read weightings: content $\mathbf{c}^{r,i}_t = \mathcal{C}(M_t, \mathbf{k}^{r,i}_t,
   \beta^{r,i}_t)$ on the memory just written, mixed with the forward and backward weightings by
   the read modes; read vectors $\mathbf{r}^i_t = M_t^\top \mathbf{w}^{r,i}_t$.
8. Output: logits $\mathbf{y}_t = W_y \mathbf{h}_t + \mathbf{b}_y + W_r [\mathbf{r}^1_t; \dots;
   \mathbf{r}^R_t]$ (pre-sigmoid; train with ``BCEWithLogitsLoss``).

Unlike the NTM's, the DNC's reads come *after* this step's write, so a value written at step
$t$ can be read at step $t$.

Initial state: usage, precedence, link matrix, read and write weightings and read vectors are
zeros, as in the paper. The memory starts with every entry ``memory_init_value`` (1e-6), the
NTM's default, rather than 0: a row that is exactly zero gives the cosine similarity a gradient
of about $1/\varepsilon$ ($\varepsilon = 10^{-8}$, the NTM content function's guard against
0/0) with respect to that row, and a row the DNC has not written yet keeps (almost) its initial
value.

Where this implementation departs from the paper:

* ``clip_controller`` (default 20): the raw interface vector and the logits are clamped to
  $[-20, 20]$, as in DeepMind's reference implementation and this library's NTM; ``None``
  turns it off.
* The controller is the NTM's stacked LSTM (:mod:`~neural_memory.ntm.controller`), in which
  layer $l > 1$ sees only the layer below, while the paper's also sees the input; with one
  layer (every preset) the two are the same.

Speed: the loop over time is the only Python loop; the external input's share of the
controller's first layer is computed for all steps before it and the output for all steps after
it; input checks run once per call, and the step calls the unchecked versions of the DNC's
pure functions (their checks of value ranges cost a pass over each tensor). The tests compare
this forward pass, and its gradients, with a naive formulation that loops over sequences, rows
and heads (``tests/dnc_naive.py``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import Tensor, nn

from neural_memory.dnc.allocation import _allocation_weights, _retention, _usage
from neural_memory.dnc.interface import DNCInterface, _parse_interface, interface_size
from neural_memory.dnc.linkage import _directional_weights, _link_matrix, _precedence
from neural_memory.dnc.weighting import _read_weights, _write_weights
from neural_memory.ntm.addressing import content_weights
from neural_memory.ntm.controller import LSTMController
from neural_memory.ntm.memory import _write_heads

__all__ = ["DNC", "DNCConfig", "DNCState", "DNCStep", "DNCTrace"]


@dataclass(frozen=True)
class DNCConfig:
    """Everything that fixes a DNC's architecture. Use :meth:`preset` for a named setting.

    Attributes:
        input_size: width of one input step.
        output_size: width of one output step (logits).
        controller_size: ``C``, units per LSTM layer.
        controller_layers: stacked LSTM layers (the interface and output see all of them).
        memory_rows: ``N``.
        memory_width: ``M``.
        read_heads: ``R`` (>= 1); there is always one write head, as in the paper.
        clip_controller: clamp the raw interface vector and the logits to ``[-c, c]``; ``None``
            turns clipping off.
        memory_init_value: every entry of the initial memory ``M_0`` (see the module docstring).
    """

    input_size: int
    output_size: int
    controller_size: int = 100
    controller_layers: int = 1
    memory_rows: int = 64
    memory_width: int = 20
    read_heads: int = 2
    clip_controller: float | None = 20.0
    memory_init_value: float = 1e-6

    def __post_init__(self) -> None:
        for name in ("input_size", "output_size", "controller_size", "controller_layers",
                     "memory_rows", "memory_width", "read_heads"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"DNCConfig.{name} must be an integer >= 1; got {value!r}")
        clip = self.clip_controller
        if clip is not None and (isinstance(clip, bool) or not isinstance(clip, (int, float))
                                 or not clip > 0):  # fmt: skip
            raise ValueError(f"DNCConfig.clip_controller must be None or a number > 0; got {clip!r}")
        value = self.memory_init_value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"DNCConfig.memory_init_value must be a finite number; got {value!r}")

    @property
    def interface_size(self) -> int:
        """Length of the interface vector, ``M R + 3 M + 5 R + 3``."""
        return interface_size(self.memory_width, self.read_heads)

    @property
    def controller_output_size(self) -> int:
        """Width of the controller output the interface and output layers see, ``L C``."""
        return self.controller_layers * self.controller_size

    @classmethod
    def preset_names(cls) -> list[str]:
        """Names accepted by :meth:`preset`."""
        return list(_PRESETS)

    @classmethod
    def preset(cls, name: str, **overrides: object) -> DNCConfig:
        """A named configuration, with any field overridden by keyword.

        ``"small"`` (the command line's default): an LSTM of 100 units (the NTM presets'
        controller), 64 rows of width 20 and 2 read heads -- room for every training sequence of
        the four tasks (at most 20 vectors to store) at about the NTM's parameter count.
        ``"multi_copy"``: ``small`` with 16 rows, fewer than the vectors a multi-copy sequence
        stores, so that rows must be freed and written again (the command line's default for that
        task). ``"tiny"``: a small machine that trains in seconds. All have the copy task's
        channels; the command line sets every task's own.
        """
        if name not in _PRESETS:
            raise ValueError(f"unknown DNC preset {name!r}; choose one of {cls.preset_names()}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"unknown DNCConfig field(s) {unknown}; fields are {sorted(fields)}")
        return cls(**{**_PRESETS[name], **overrides})


_PRESETS: dict[str, dict] = {
    "small": {"input_size": 9, "output_size": 8, "controller_size": 100, "memory_rows": 64,
              "memory_width": 20, "read_heads": 2},
    "tiny": {"input_size": 9, "output_size": 8, "controller_size": 32, "memory_rows": 16,
             "memory_width": 8, "read_heads": 1},
}  # fmt: skip
_PRESETS["multi_copy"] = {**_PRESETS["small"], "memory_rows": 16}


class DNCState(NamedTuple):
    """What the DNC carries from one step to the next."""

    memory: Tensor  # (B, N, M)
    usage: Tensor  # (B, N)
    precedence: Tensor  # (B, N)
    link: Tensor  # (B, N, N)
    read_weights: Tensor  # (B, R, N)
    write_weights: Tensor  # (B, N)
    read_vectors: Tensor  # (B, R, M)
    controller: tuple[Tensor, ...]  # the LSTM's (h_1, c_1, ..., h_L, c_L), each (B, C)


class DNCStep(NamedTuple):
    """The weightings a step computes on its way to the new state."""

    interface: DNCInterface
    allocation: Tensor  # (B, N)
    write_content: Tensor  # (B, N)
    read_content: Tensor  # (B, R, N)
    forward: Tensor  # (B, R, N)
    backward: Tensor  # (B, R, N)


@dataclass
class DNCTrace:
    """What happened inside a forward pass, for plots and checks.

    The weightings and the memory have the shapes of :class:`~neural_memory.ntm.NTMTrace`'s
    (one write head, ``W = 1``), so code that reads an NTM's trace reads a DNC's.

    Attributes:
        read_weights: ``(B, T, R, N)``, $\\mathbf{w}^{r,i}_t$.
        write_weights: ``(B, T, 1, N)``, $\\mathbf{w}^w_t$.
        memory: ``(B, T + 1, N, M)``, the initial memory first.
        read_vectors: ``(B, T, R, M)``.
        usage: ``(B, T, N)``, $\\mathbf{u}_t$.
        allocation: ``(B, T, N)``, $\\mathbf{a}_t$.
        write_content: ``(B, T, N)``, $\\mathbf{c}^w_t$.
        read_content: ``(B, T, R, N)``, $\\mathbf{c}^{r,i}_t$.
        forward: ``(B, T, R, N)``, $\\mathbf{f}^i_t$.
        backward: ``(B, T, R, N)``, $\\mathbf{b}^i_t$.
        precedence: ``(B, T, N)``, $\\mathbf{p}_t$.
        link: ``(B, T, N, N)``, $L_t$.
        interface: :class:`~neural_memory.dnc.interface.DNCInterface` with a time axis after
            the batch axis.
        controller_output: ``(B, T, L C)``.
    """

    read_weights: Tensor
    write_weights: Tensor
    memory: Tensor
    read_vectors: Tensor
    usage: Tensor
    allocation: Tensor
    write_content: Tensor
    read_content: Tensor
    forward: Tensor
    backward: Tensor
    precedence: Tensor
    link: Tensor
    interface: DNCInterface
    controller_output: Tensor


class DNC(nn.Module):
    """A Differentiable Neural Computer. ``forward(x (B, T, input_size))`` -> logits ``(B, T, O)``."""

    def __init__(self, config: DNCConfig) -> None:
        super().__init__()
        if not isinstance(config, DNCConfig):
            raise ValueError(f"DNC expects a DNCConfig; got {type(config).__name__}")
        self.config = cfg = config
        n, m, r = cfg.memory_rows, cfg.memory_width, cfg.read_heads
        self.controller = LSTMController(
            cfg.input_size + r * m, cfg.controller_size, cfg.controller_layers,
            external_size=cfg.input_size,
        )  # fmt: skip
        self.interface = nn.Linear(cfg.controller_output_size, cfg.interface_size)  # W_xi
        self.output = nn.Linear(cfg.controller_output_size, cfg.output_size)  # W_y
        self.read_output = nn.Linear(r * m, cfg.output_size, bias=False)  # W_r
        self.register_buffer("memory_init", torch.full((n, m), float(cfg.memory_init_value)))
        # Constants of the step: the mask that zeroes the link's diagonal, the 1 in 1 - w e^T.
        self.register_buffer("off_diagonal", 1 - torch.eye(n), persistent=False)
        self.register_buffer("one", torch.ones(1, 1, 1), persistent=False)

    # ------------------------------------------------------------------ initial state

    def initial_memory(self) -> Tensor:
        """``M_0``, ``(N, M)``."""
        return self.memory_init

    def initial_state(self, batch_size: int) -> DNCState:
        """The state before the first step (see the module docstring), for ``batch_size``
        sequences."""
        cfg = self.config
        n, r = cfg.memory_rows, cfg.read_heads
        mem = self.initial_memory()
        return DNCState(
            memory=mem.expand(batch_size, -1, -1),  # (B, N, M)
            usage=mem.new_zeros(batch_size, n),
            precedence=mem.new_zeros(batch_size, n),
            link=mem.new_zeros(batch_size, n, n),
            read_weights=mem.new_zeros(batch_size, r, n),
            write_weights=mem.new_zeros(batch_size, n),
            read_vectors=mem.new_zeros(batch_size, r, cfg.memory_width),
            controller=self.controller.initial_state(batch_size),
        )

    # ------------------------------------------------------------------ forward

    def _check_input(self, x: Tensor) -> None:
        width = self.config.input_size
        if not isinstance(x, Tensor):
            raise ValueError(f"DNC input must be a tensor (B, T, {width}); got {type(x).__name__}")
        if x.dim() != 3:
            raise ValueError(
                f"DNC input must have shape (B, T, {width}); got {x.dim()} dimensions, "
                f"shape {tuple(x.shape)}"
            )
        if x.shape[2] != width:
            raise ValueError(
                f"DNC input must have shape (B, T, {width}); got input width {x.shape[2]} "
                f"(shape {tuple(x.shape)})"
            )
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"DNC input needs B >= 1 and T >= 1; got shape {tuple(x.shape)}")

    def _step(
        self,
        x_proj: Tensor,
        state: DNCState,
        prepared: list[Tensor],
        weight_t: Tensor,
        bias: Tensor,
    ) -> tuple[Tensor, DNCState, DNCStep]:
        """One time step (see the module docstring): returns the controller output ``(B, L C)``,
        the new state and the step's weightings."""
        cfg = self.config
        m, r = cfg.memory_width, cfg.read_heads
        batch = x_proj.shape[0]
        # 1. controller, on the input (already projected) and the previous read vectors
        reads_prev = state.read_vectors.reshape(batch, r * m)  # (B, R*M)
        h, ctrl = self.controller.step_projected(x_proj, reads_prev, state.controller, prepared)
        if cfg.controller_layers > 1:
            h = torch.cat(ctrl[0::2], dim=1)  # (B, L*C): every layer's hidden state
        # 2. interface
        raw = torch.addmm(bias, h, weight_t)  # (B, P)
        if cfg.clip_controller is not None:
            raw = raw.clamp(-cfg.clip_controller, cfg.clip_controller)
        xi = _parse_interface(raw, m, r)
        # 3. allocation
        psi = _retention(xi.free_gates, state.read_weights)  # (B, N)
        usage = _usage(state.usage, state.write_weights, psi)  # (B, N)
        alloc = _allocation_weights(usage)  # (B, N)
        # 4. write weighting (content on the memory before the write)
        c_w = content_weights(state.memory, xi.write_key, xi.write_strength)  # (B, N)
        w_w = _write_weights(c_w, alloc, xi.allocation_gate, xi.write_gate)  # (B, N)
        # 5. write: erase, then add (the NTM's, one head)
        memory = _write_heads(
            state.memory, w_w.unsqueeze(1), xi.erase.unsqueeze(1), xi.write_vector.unsqueeze(1),
            self.one,
        )  # (B, N, M)
        # 6. linkage: the link uses the previous precedence, so it comes first
        link = _link_matrix(state.link, w_w, state.precedence, self.off_diagonal)  # (B, N, N)
        prec = _precedence(state.precedence, w_w)  # (B, N)
        fwd, bwd = _directional_weights(link, state.read_weights)  # (B, R, N) each
        # 7. read weightings (content on the memory after the write) and read vectors
        c_r = content_weights(memory.unsqueeze(1), xi.read_keys, xi.read_strengths)  # (B, R, N)
        w_r = _read_weights(c_r, fwd, bwd, xi.read_modes)  # (B, R, N)
        reads = torch.bmm(w_r, memory)  # (B, R, M): r^i = M^T w^{r,i}
        new = DNCState(memory, usage, prec, link, w_r, w_w, reads, ctrl)
        return h, new, DNCStep(xi, alloc, c_w, c_r, fwd, bwd)

    def _output(self, h_seq: Tensor, reads_seq: Tensor) -> Tensor:
        """Logits ``(B, T, O)`` from controller outputs and read vectors (step 8 above)."""
        logits = self.output(h_seq) + self.read_output(reads_seq)  # (B, T, O)
        clip = self.config.clip_controller
        return logits.clamp(-clip, clip) if clip is not None else logits

    def forward(
        self, x: Tensor, return_trace: bool = False
    ) -> Tensor | tuple[Tensor, DNCTrace]:
        """Run the machine over whole sequences.

        Args:
            x: ``(B, T, input_size)``.
            return_trace: also return a :class:`DNCTrace`.

        Returns:
            logits ``(B, T, output_size)`` (pre-sigmoid), or ``(logits, trace)``.
        """
        self._check_input(x)
        batch, steps, _ = x.shape
        state = self.initial_state(batch)
        # Work that does not depend on the step, done once per sequence:
        x_proj = self.controller.project_external(x.to(state.memory.dtype)).unbind(1)  # T x (B, G)
        prepared = self.controller.prepare()
        weight_t = self.interface.weight.t()  # (L*C, P)

        hs: list[Tensor] = []
        reads: list[Tensor] = []
        record: list[tuple[DNCState, DNCStep]] | None = [] if return_trace else None
        for t in range(steps):
            h, state, parts = self._step(x_proj[t], state, prepared, weight_t, self.interface.bias)
            hs.append(h)
            reads.append(state.read_vectors.reshape(batch, -1))
            if record is not None:
                record.append((state, parts))

        h_seq = torch.stack(hs, dim=1)  # (B, T, L*C)
        reads_seq = torch.stack(reads, dim=1)  # (B, T, R*M)
        logits = self._output(h_seq, reads_seq)
        if record is None:
            return logits

        def over_time(get) -> Tensor:
            return torch.stack([get(s, p) for s, p in record], dim=1)

        interface = DNCInterface(
            *(torch.stack(field, dim=1) for field in zip(*(p.interface for _, p in record), strict=True))
        )  # each (B, T, ...)
        trace = DNCTrace(
            read_weights=over_time(lambda s, p: s.read_weights),
            write_weights=over_time(lambda s, p: s.write_weights).unsqueeze(2),
            memory=torch.cat([self.initial_memory().expand(batch, 1, -1, -1),
                              over_time(lambda s, p: s.memory)], dim=1),
            read_vectors=over_time(lambda s, p: s.read_vectors),
            usage=over_time(lambda s, p: s.usage),
            allocation=over_time(lambda s, p: p.allocation),
            write_content=over_time(lambda s, p: p.write_content),
            read_content=over_time(lambda s, p: p.read_content),
            forward=over_time(lambda s, p: p.forward),
            backward=over_time(lambda s, p: p.backward),
            precedence=over_time(lambda s, p: s.precedence),
            link=over_time(lambda s, p: s.link),
            interface=interface,
            controller_output=h_seq,
        )  # fmt: skip
        return logits, trace
