r"""The Neural Turing Machine (Graves et al., 2014): controller, heads and memory in a loop.

One time step $t$, for a batch of sequences, with $R$ read heads and $W$ write heads
($H = R + W$ heads in all, read heads first):

1. Controller: $\mathbf{h}_t, \text{state}_t = \text{controller}([\mathbf{x}_t;
   \mathbf{r}^1_{t-1}; \dots; \mathbf{r}^R_{t-1}], \text{state}_{t-1})$.
2. Heads: every head's parameters $(\mathbf{k}, \beta, g, \mathbf{s}, \gamma)$, and each write
   head's $(\mathbf{e}, \mathbf{a})$, from one linear map of $\mathbf{h}_t$
   (:mod:`~neural_memory.ntm.heads`).
3. Addressing, eqs. (5)-(9): every head's new weighting $\mathbf{w}^h_t$ from the memory
   $\mathbf{M}_{t-1}$ and its previous weighting $\mathbf{w}^h_{t-1}$
   (:mod:`~neural_memory.ntm.addressing`), all heads in one batched call.
4. Read, eq. (2): $\mathbf{r}^h_t = \sum_i w^h_t(i)\,\mathbf{M}_{t-1}(i)$ for each read head.
5. Write, eqs. (3)-(4): all write heads' erases, then all their adds
   (:func:`~neural_memory.ntm.memory.write_heads`), giving $\mathbf{M}_t$.
6. Output: logits $\mathbf{y}_t = W_o [\mathbf{h}_t; \mathbf{r}^1_t; \dots; \mathbf{r}^R_t] +
   \mathbf{b}_o$ with ``output_from_reads=True`` (the article's "Mealy" output), or
   $W_o \mathbf{h}_t + \mathbf{b}_o$ without; clamped to $[-c, c]$ when ``clip_controller`` is set.
   The logits are pre-sigmoid (train with ``BCEWithLogitsLoss``).

All heads address the same memory $\mathbf{M}_{t-1}$, and reads happen before this step's
write, as in Collier & Beel's (2018) implementation; the read vectors $\mathbf{r}_t$ feed the
output now and the controller at $t+1$.

Initial state (Collier & Beel, 2018 compare these choices):

* memory $\mathbf{M}_0$: ``"constant"`` -- every entry ``memory_init_value`` (1e-6, their
  best); ``"learned"`` -- $\tanh$ of a trained ``(N, M)`` parameter (starting small,
  uniform in $\pm\sqrt{6 / (1 + NM)}$); ``"random"`` -- $\tanh$ of
  a ``(N, M)`` draw from $\mathcal{N}(0, 0.5^2)$ made when the model is built, then fixed.
* read vectors $\mathbf{r}_0$: learned ($\tanh$ of a parameter) or zeros.
* head weightings $\mathbf{w}_0$: learned ($\mathrm{softmax}$ of a parameter) or all weight on
  row 0.

Speed: the loop over time is the only Python loop. Inside it nothing loops over
batch elements or heads; the external input's share of the controller's first layer is
computed for all steps before the loop and the output layer for all steps after it; the head
weights are fused (and transposed) once per sequence; input checks run once per call. The
tests compare this vectorised forward pass, and its gradients, with a naive formulation that
loops over sequences, steps and heads (``tests/ntm_naive.py``). :meth:`NTM.use_fused` goes
further: the whole unroll in one C++ call with a hand-written backward pass
(:mod:`~neural_memory.ntm.fused`), several times as fast to train on a CPU (the book's
"Performance and stability" appendix measures both).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from neural_memory.gumbel import validate_tau
from neural_memory.ntm.addressing import (
    AddressingStages,
    _address_stages_heads,
    _check_shift,
)
from neural_memory.ntm.controller import make_controller
from neural_memory.ntm.hard import HARD_ADDRESSING, check_mix, harden
from neural_memory.ntm.heads import HeadParameters, NTMHeads
from neural_memory.ntm.memory import _write_heads

__all__ = ["NTM", "NTMConfig", "NTMTrace", "PAPER_LEARNING_RATES"]

CONTROLLERS = ("lstm", "feedforward")
MEMORY_INITS = ("constant", "learned", "random")

#: Smallest constant M_0 entry allowed with hard write heads (see NTMConfig.hard_addressing).
HARD_WRITE_MIN_MEMORY_INIT = 1e-4

#: RMSProp learning rates of Graves et al. (2014), Table 2 (LSTM controller), per task.
PAPER_LEARNING_RATES = {
    "copy": 1e-4,
    "repeat_copy": 1e-4,
    "associative_recall": 1e-4,
    "priority_sort": 3e-5,
}


@dataclass(frozen=True)
class NTMConfig:
    """Everything that fixes an NTM's architecture. Use :meth:`preset` for the paper's settings.

    Attributes:
        input_size: width of one input step.
        output_size: width of one output step (logits).
        controller: ``"lstm"`` or ``"feedforward"``.
        controller_size: ``C``, units per controller layer.
        controller_layers: stacked controller layers.
        memory_rows: ``N``.
        memory_width: ``M``.
        read_heads: ``R`` (>= 1).
        write_heads: ``W`` (>= 1).
        num_shifts: ``K``, odd, ``K <= N``; shifts ``-(K-1)/2 .. +(K-1)/2``.
        output_from_reads: output from controller and current read vectors ("Mealy"), or the
            controller alone.
        split_head_layers: one linear layer per head parameter kind (own initialisation), or
            one sliced layer (see :mod:`~neural_memory.ntm.heads`).
        clip_controller: clamp the head parameters and output logits to ``[-c, c]``; ``None``
            turns clipping off. Collier & Beel's implementation clips both to 20 (our default);
            the article's author clipped to 10.
        memory_init: ``"constant"``, ``"learned"`` or ``"random"``.
        memory_init_value: the constant for ``memory_init="constant"``.
        learn_initial_reads: learn ``r_0`` (else zeros).
        learn_initial_weights: learn ``w_0`` (else all weight on row 0).
        hard_addressing: which heads address exactly one row (Part IV,
            :mod:`~neural_memory.ntm.hard`): ``"none"`` (default, the paper's soft heads),
            ``"read"``, ``"write"`` or ``"both"``. The temperature and the hard/soft mix are
            set on the model (:meth:`NTM.set_hard_schedule`), not here. Hard write heads
            need a constant ``M_0`` of at least ``HARD_WRITE_MIN_MEMORY_INIT`` (a ValueError
            says so): the paper-style 1e-6 gives NaN gradients.
        gamma_max: an upper bound on every head's sharpening exponent ``gamma`` (> 1), or
            ``None`` (default: the paper's ``1 + softplus``, unbounded). A bounded ``gamma``
            cannot make a weighting one-hot, so a shift that only just prefers to stay shows in
            the read and in the gradient. The ``copy-row0-gamma2`` preset (the shipped copy
            NTM) bounds it at 2; what the bound does on the copy task is measured in the book's
            "Performance and stability" appendix.
    """

    input_size: int
    output_size: int
    controller: str = "lstm"
    controller_size: int = 100
    controller_layers: int = 1
    memory_rows: int = 128
    memory_width: int = 20
    read_heads: int = 1
    write_heads: int = 1
    num_shifts: int = 3
    output_from_reads: bool = True
    split_head_layers: bool = True
    clip_controller: float | None = 20.0
    memory_init: str = "constant"
    memory_init_value: float = 1e-6
    learn_initial_reads: bool = True
    learn_initial_weights: bool = True
    hard_addressing: str = "none"
    gamma_max: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "input_size",
            "output_size",
            "controller_size",
            "controller_layers",
            "memory_rows",
            "memory_width",
            "read_heads",
            "write_heads",
            "num_shifts",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"NTMConfig.{name} must be an integer >= 1; got {value!r}")
        if self.controller not in CONTROLLERS:
            raise ValueError(
                f"NTMConfig.controller must be one of {CONTROLLERS}; got {self.controller!r}"
            )
        if self.memory_init not in MEMORY_INITS:
            raise ValueError(
                f"NTMConfig.memory_init must be one of {MEMORY_INITS}; got {self.memory_init!r}"
            )
        if self.hard_addressing not in HARD_ADDRESSING:
            raise ValueError(
                f"NTMConfig.hard_addressing must be one of {HARD_ADDRESSING}; "
                f"got {self.hard_addressing!r}"
            )
        if (self.hard_addressing in ("write", "both") and self.memory_init == "constant"
                and abs(self.memory_init_value) < HARD_WRITE_MIN_MEMORY_INIT):
            # A hard write head leaves every other row at M_0; rows of norm ~1e-6 make the
            # cosine similarity's gradient (~1 / norm) blow up over the steps (NaN measured).
            raise ValueError(
                f"NTMConfig: hard write heads need memory_init_value >= "
                f"{HARD_WRITE_MIN_MEMORY_INIT} with memory_init='constant' (rows a hard head never "
                f"writes keep their initial value, and cosine similarity with near-zero rows has "
                f"exploding gradients); got {self.memory_init_value!r}. Part IV uses 0.01."
            )
        try:
            _check_shift(self.memory_rows, self.num_shifts)
        except ValueError as err:
            raise ValueError(f"NTMConfig: {err}") from None
        if self.gamma_max is not None and (
            isinstance(self.gamma_max, bool) or not isinstance(self.gamma_max, (int, float))
            or not self.gamma_max > 1
        ):
            raise ValueError(f"NTMConfig.gamma_max must be None or a number > 1; got {self.gamma_max!r}")
        if self.clip_controller is not None and not self.clip_controller > 0:
            raise ValueError(
                f"NTMConfig.clip_controller must be None or > 0; got {self.clip_controller!r}"
            )
        for name in ("output_from_reads", "split_head_layers", "learn_initial_reads",
                     "learn_initial_weights"):  # fmt: skip
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"NTMConfig.{name} must be a bool; got {getattr(self, name)!r}")

    @property
    def num_heads(self) -> int:
        """``H = R + W``."""
        return self.read_heads + self.write_heads

    @classmethod
    def preset_names(cls) -> list[str]:
        """Names accepted by :meth:`preset`."""
        return list(_PRESETS)

    @classmethod
    def preset(cls, name: str, **overrides: object) -> NTMConfig:
        """A named configuration, with any field overridden by keyword.

        ``"copy"``, ``"repeat_copy"``, ``"associative_recall"``, ``"priority_sort"``: Graves et
        al. (2014), Table 2 (LSTM controller; learning rates in :data:`PAPER_LEARNING_RATES`),
        with the task's channel counts. ``"multi_copy"``: the copy preset with 16 memory rows,
        fewer than the vectors a multi-copy sequence stores, so that rows must be reused.
        ``"tiny"``: copy's channels, a small machine that trains in seconds.
        """
        if name not in _PRESETS:
            raise ValueError(f"unknown NTM preset {name!r}; choose one of {cls.preset_names()}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            raise ValueError(f"unknown NTMConfig field(s) {unknown}; fields are {sorted(fields)}")
        return cls(**{**_PRESETS[name], **overrides})


_PAPER = {"controller": "lstm", "controller_size": 100, "memory_rows": 128, "memory_width": 20}
_PRESETS: dict[str, dict] = {
    "copy": {**_PAPER, "input_size": 9, "output_size": 8},
    "repeat_copy": {**_PAPER, "input_size": 10, "output_size": 9},
    "associative_recall": {**_PAPER, "input_size": 8, "output_size": 6},
    "priority_sort": {
        **_PAPER,
        "input_size": 10,
        "output_size": 8,
        "controller_layers": 2,  # Table 2: controller size "2 x 100"
        # Table 2: "#Heads 5"; we read it as 5 read and 5 write heads, as the paper's text
        # describes "parallel read and write heads" for the feedforward version of this task.
        "read_heads": 5,
        "write_heads": 5,
    },
    "tiny": {
        "input_size": 9,
        "output_size": 8,
        "controller": "lstm",
        "controller_size": 32,
        "memory_rows": 16,
        "memory_width": 8,
    },
}
# "<task>-row0": the paper's preset with every head starting on row 0 instead of a learned w_0
# (a learned, near-uniform initial weighting trains far more slowly with the fast recipes; the
# book's "Performance and stability" appendix has the measurement).
for _task in ("copy", "repeat_copy", "associative_recall", "priority_sort"):
    _PRESETS[f"{_task}-row0"] = {**_PRESETS[_task], "learn_initial_weights": False}
# "multi_copy": the copy NTM with a memory of 16 rows, the size the multi-copy task is built for
# (its sequences store up to 48 vectors, each episode at most 8).
_PRESETS["multi_copy"] = {**_PRESETS["copy"], "memory_rows": 16}
# "copy-row0-gamma2": the row-0 copy NTM with every head's sharpening exponent bounded at 2
# (gamma_max; its docstring has the measurement): the benchmark's model and the shipped copy NTM,
# trained with the "fast-adam-settle10" recipe.
_PRESETS["copy-row0-gamma2"] = {**_PRESETS["copy-row0"], "gamma_max": 2.0}


@dataclass
class NTMTrace:
    """What happened inside a forward pass, for plots and checks. Read heads come first in H.

    Attributes:
        read_weights: ``(B, T, R, N)``, the weightings the heads used (one-hot for hard heads).
        write_weights: ``(B, T, W, N)``, likewise.
        memory: ``(B, T + 1, N, M)``, the initial memory first.
        read_vectors: ``(B, T, R, M)``.
        stages: :class:`AddressingStages` of ``(B, T, H, N)`` tensors (all heads); for hard
            heads ``stages.sharpened`` is the soft weighting before it was made one-hot.
        heads: :class:`HeadParameters` with a time axis after the batch axis.
        controller_output: ``(B, T, C)``.
    """

    read_weights: Tensor
    write_weights: Tensor
    memory: Tensor
    read_vectors: Tensor
    stages: AddressingStages
    heads: HeadParameters
    controller_output: Tensor


class NTM(nn.Module):
    """A Neural Turing Machine. ``forward(x (B, T, input_size))`` -> logits ``(B, T, O)``."""

    def __init__(self, config: NTMConfig) -> None:
        super().__init__()
        if not isinstance(config, NTMConfig):
            raise ValueError(f"NTM expects an NTMConfig; got {type(config).__name__}")
        self.config = cfg = config
        n, m, r = cfg.memory_rows, cfg.memory_width, cfg.read_heads
        self.controller = make_controller(
            cfg.controller,
            cfg.input_size + r * m,
            cfg.controller_size,
            cfg.controller_layers,
            external_size=cfg.input_size,
        )
        self.heads = NTMHeads(
            cfg.controller_size,
            m,
            r,
            cfg.write_heads,
            cfg.num_shifts,
            split=cfg.split_head_layers,
            clip=cfg.clip_controller,
            gamma_max=cfg.gamma_max,
        )
        out_in = cfg.controller_size + (r * m if cfg.output_from_reads else 0)
        self.output = nn.Linear(out_in, cfg.output_size)

        if cfg.memory_init == "constant":
            self.register_buffer("memory_init", torch.full((n, m), cfg.memory_init_value))
        elif cfg.memory_init == "learned":  # small, as Collier & Beel's Glorot-style init
            limit = (6 / (1 + n * m)) ** 0.5
            self.memory_init = nn.Parameter(torch.empty(n, m).uniform_(-limit, limit))
        else:
            self.register_buffer("memory_init", torch.tanh(torch.randn(n, m) * 0.5))
        if cfg.learn_initial_reads:
            self.read_init = nn.Parameter(torch.randn(r, m) * 0.5)
        else:
            self.register_buffer("read_init", torch.zeros(r, m))
        if cfg.learn_initial_weights:
            self.weight_init = nn.Parameter(torch.randn(cfg.num_heads, n) * 0.1)
        else:
            one_hot = torch.zeros(cfg.num_heads, n)
            one_hot[:, 0] = 1.0
            self.register_buffer("weight_init", one_hot)
        self.register_buffer("one", torch.ones(1, 1, 1), persistent=False)  # the 1 in 1 - w e^T
        self._compiled_step = None
        self._fused = False
        # Hard heads (Part IV): the slice of heads (read heads first) that address one row.
        r_, w_ = cfg.read_heads, cfg.write_heads
        self._hard_heads = {"none": None, "read": (0, r_), "write": (r_, r_ + w_),
                            "both": (0, r_ + w_)}[cfg.hard_addressing]
        self.hard_tau = 1.0  # Gumbel-softmax temperature of hard heads (training only)
        self.hard_mix = 1.0  # lambda in lambda * one-hot + (1 - lambda) * soft

    def set_hard_schedule(self, tau: float, mix: float = 1.0) -> NTM:
        """Set the hard heads' temperature ``tau`` (> 0) and hard/soft mix (in [0, 1]).

        The training loop calls this before every batch (see
        :func:`neural_memory.training.hard_schedule_at`); it has no effect on a model whose
        ``hard_addressing`` is ``"none"``. Returns the model itself.
        """
        self.hard_tau, self.hard_mix = float(validate_tau(tau)), check_mix(mix)
        return self

    # ------------------------------------------------------------------ initial state

    def initial_memory(self) -> Tensor:
        """``M_0``, ``(N, M)``."""
        if self.config.memory_init == "learned":
            return torch.tanh(self.memory_init)
        return self.memory_init

    def initial_reads(self) -> Tensor:
        """``r_0`` for the read heads, ``(R, M)``."""
        return torch.tanh(self.read_init) if self.config.learn_initial_reads else self.read_init

    def initial_weights(self) -> Tensor:
        """``w_0`` for all heads, read heads first, ``(H, N)``."""
        if self.config.learn_initial_weights:
            return torch.softmax(self.weight_init, dim=-1)
        return self.weight_init

    # ------------------------------------------------------------------ forward

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise ValueError(f"NTM input must be a tensor (B, T, input_size); got {type(x)}")
        if x.dim() != 3:
            raise ValueError(
                f"NTM input must have shape (B, T, {self.config.input_size}); "
                f"got {x.dim()} dimensions, shape {tuple(x.shape)}"
            )
        if x.shape[2] != self.config.input_size:
            raise ValueError(
                f"NTM input must have shape (B, T, {self.config.input_size}); "
                f"got input width {x.shape[2]} (shape {tuple(x.shape)})"
            )
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"NTM input needs B >= 1 and T >= 1; got shape {tuple(x.shape)}")

    def _step(
        self,
        x_proj: Tensor,
        reads: Tensor,
        state: tuple[Tensor, ...],
        memory: Tensor,
        w_prev: Tensor,
        prepared: list[Tensor],
        weight_t: Tensor,
        bias: Tensor,
    ) -> tuple[
        Tensor, Tensor, tuple[Tensor, ...], Tensor, Tensor, AddressingStages, HeadParameters
    ]:
        """One time step (see the module docstring); returns ``h, reads, state, memory,
        w (the weightings used, (B, H, N)), stages, head parameters``."""
        cfg = self.config
        h, state = self.controller.step_projected(x_proj, reads, state, prepared)  # (B, C)
        p = self.heads.activate(self.heads.project(h, weight_t, bias))
        stages = _address_stages_heads(memory, w_prev, p.key, p.beta, p.gate, p.shift, p.gamma)
        w = stages.sharpened  # (B, H, N)
        if self._hard_heads is not None:
            lo, hi = self._hard_heads
            hard = harden(w[:, lo:hi], self.hard_tau, self.hard_mix, self.training)
            w = torch.cat([w[:, :lo], hard, w[:, hi:]], dim=1)  # (B, H, N)
        w_read, w_write = w.split([cfg.read_heads, cfg.write_heads], dim=1)
        read_vecs = torch.bmm(w_read, memory)  # (B, R, M)
        memory = _write_heads(memory, w_write, p.erase, p.add, self.one)  # (B, N, M)
        reads = read_vecs.view(read_vecs.shape[0], -1)  # (B, R*M)
        return h, reads, state, memory, w, stages, p

    def _output(self, h_seq: Tensor, reads_seq: Tensor) -> Tensor:
        """Logits ``(B, T, O)`` from controller outputs and read vectors (step 6 above)."""
        cfg = self.config
        out_in = torch.cat([h_seq, reads_seq], dim=-1) if cfg.output_from_reads else h_seq
        logits = self.output(out_in)  # (B, T, O)
        if cfg.clip_controller is not None:
            logits = logits.clamp(-cfg.clip_controller, cfg.clip_controller)
        return logits

    def compile_step(self, **options: object) -> NTM:
        """Opt in to ``torch.compile`` for the time step; returns the model itself.

        The step (controller, heads, addressing, read, write) is compiled for every step but
        the first, which sees the initial state and runs plainly; a batch of 1, later batch
        sizes and the two grad modes make up to about six compiled variants, well inside
        dynamo's recompile limit of 8 (the first call takes tens of seconds). What it gains on
        a CPU and on a GPU is measured in the book's "Performance and stability" appendix; it
        is off by default. Results equal the plain
        step's up to float rounding (an opt-in test checks this). ``options`` go to
        ``torch.compile`` (default: ``fullgraph=True``); ``mode="reduce-overhead"`` (CUDA graphs)
        fails, because each step's outputs are the next step's inputs and a graph's replay
        overwrites them. Needs a C++ compiler (Triton on a GPU); a compiled model is best saved
        through its ``state_dict``.
        """
        if self._fused:
            raise ValueError("use_fused and compile_step are alternatives; use one")
        if options.get("mode") in ("reduce-overhead", "max-autotune"):
            raise ValueError(
                f"compile_step(mode={options['mode']!r}) replays the step as a CUDA graph, whose "
                "next replay overwrites the outputs the next time step reads; use the default "
                "mode or 'max-autotune-no-cudagraphs'"
            )
        self._compiled_step = torch.compile(self._step, **{"fullgraph": True, **options})
        return self

    def use_fused(self, enabled: bool = True) -> NTM:
        """Opt in to (or out of) the fused C++ unroll with its hand-written backward
        (:mod:`~neural_memory.ntm.fused`); returns the model itself.

        The first call compiles the extension (30-60 s here, then cached on disk), so an
        unsupported model or a missing compiler fails here, not in the middle of training.
        Same values as the plain path up to float rounding (the tests compare them); a forward
        pass with ``return_trace=True`` always takes the plain path.

        Raises:
            FusedUnsupported: a config the fused unroll does not implement (see
                ``fused.SUPPORTED_VALUES``), such as hard addressing.
            RuntimeError: the extension cannot be built here (no C++ compiler or ninja).
        """
        from neural_memory.ntm.fused import check_supported, load_extension

        if enabled:
            check_supported(self.config)
            if self._compiled_step is not None:
                raise ValueError("use_fused and compile_step are alternatives; use one")
            load_extension()
        self._fused = bool(enabled)
        return self

    @property
    def fused(self) -> bool:
        """Whether forward passes without a trace run the fused unroll."""
        return self._fused

    def forward(
        self, x: Tensor, return_trace: bool = False
    ) -> Tensor | tuple[Tensor, NTMTrace]:
        """Run the machine over whole sequences.

        Args:
            x: ``(B, T, input_size)``.
            return_trace: also return an :class:`NTMTrace`.

        Returns:
            logits ``(B, T, output_size)`` (pre-sigmoid), or ``(logits, trace)``.
        """
        self._check_input(x)
        cfg = self.config
        if self._fused and not return_trace:
            from neural_memory.ntm.fused import fused_unroll

            h_seq, reads_seq = fused_unroll(self, x)  # (B, T, C), (B, T, R*M)
            return self._output(h_seq, reads_seq)
        batch, steps, _ = x.shape
        r, m = cfg.read_heads, cfg.memory_width

        memory = self.initial_memory().expand(batch, -1, -1)  # (B, N, M)
        reads = self.initial_reads().reshape(1, r * m).expand(batch, -1)  # (B, R*M)
        w_prev = self.initial_weights().expand(batch, -1, -1)  # (B, H, N)
        state = self.controller.initial_state(batch)
        # Work that does not depend on the step, done once per sequence:
        x_proj = self.controller.project_external(x.to(memory.dtype)).unbind(1)  # T x (B, G)
        prepared = self.controller.prepare()
        weight, bias = self.heads.fused_weight()  # (P, C), (P,)
        weight_t = weight.t()  # (C, P)

        hs: list[Tensor] = []
        all_reads: list[Tensor] = []
        record = [] if return_trace else None
        memories = [memory] if return_trace else None
        compiled = self._compiled_step or self._step
        if self._compiled_step is not None:  # x_proj[t] with one stride whatever T is
            x_proj = torch.stack(x_proj).unbind(0)
        for t in range(steps):
            # The first step runs uncompiled: its inputs are the initial state (broadcast views
            # that need no gradient, h and c one tensor), unlike every later step's, and compiling
            # it too would double the compiled variants (see compile_step).
            step = compiled if t > 0 else self._step
            h, reads, state, memory, w_prev, stages, p = step(
                x_proj[t], reads, state, memory, w_prev, prepared, weight_t, bias
            )  # w_prev: (B, H, N), this step's weightings, the next step's w_{t-1}
            hs.append(h)
            all_reads.append(reads)
            if record is not None:
                record.append((w_prev, stages, p))
                memories.append(memory)

        h_seq = torch.stack(hs, dim=1)  # (B, T, C)
        reads_seq = torch.stack(all_reads, dim=1)  # (B, T, R*M)
        logits = self._output(h_seq, reads_seq)
        if record is None:
            return logits

        stages_seq = AddressingStages(
            *(torch.stack([s[i] for _, s, _ in record], dim=1) for i in range(4))
        )  # each (B, T, H, N)
        heads_seq = HeadParameters(
            *(torch.stack([p[i] for _, _, p in record], dim=1) for i in range(7))
        )
        w_seq = torch.stack([w for w, _, _ in record], dim=1)  # (B, T, H, N)
        trace = NTMTrace(
            read_weights=w_seq[:, :, :r],
            write_weights=w_seq[:, :, r:],
            memory=torch.stack(memories, dim=1),
            read_vectors=reads_seq.view(batch, steps, r, m),
            stages=stages_seq,
            heads=heads_seq,
            controller_output=h_seq,
        )
        return logits, trace
