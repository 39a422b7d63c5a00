r"""The NTM's whole unroll as one C++ call with a hand-written backward pass.

The plain :class:`~neural_memory.ntm.NTM` forward pass is a Python loop over time that runs
a few dozen small PyTorch operations per step; recording them for autograd and replaying their
backward costs about 450 operator calls per step, and on a CPU at batch 32 that overhead, not
the arithmetic, is most of a training step (``benchmarks/profile_step.py``). This module
computes the same function -- controller, head parameters, the four addressing stages, read,
write, for every step -- in one compiled C++ function (``_fused.cpp``), and its gradient in
another, written out by hand:

* **forward**: per step, the controller's and the heads' matrix products go to BLAS
  (``addmm``) and the LSTM gates' sigmoid and tanh to PyTorch's vectorised kernels; everything
  else (the heads' activations, cosine similarity, the content softmax, gate, circular shift,
  the sharpening's logarithm and softmax, read, erase and add) runs in one pass of plain loops
  per batch element, parallel over the batch (``at::parallel_for``, i.e.
  ``torch.set_num_threads``). In float32 the exp, log and tanh in those loops are the kernel's
  own vectorisable approximations (within about two units in the last place; tested against
  float64); float64 uses the C library. The memory is held transposed
  (``M x N`` per sequence) so that those loops run along the rows and vectorise. It saves the
  memory before every step, the head parameters, every addressing stage and each controller
  layer's inputs.
* **backward**: the chain rule through the same stages in reverse order, step by step from
  the last: write (erase product, add sum), read, sharpening
  (:math:`\partial w / \partial \gamma`, :math:`\partial w / \partial \tilde w`), shift,
  interpolation, content addressing (softmax, cosine similarity, the norms' gradients), the
  activations and the clip, the head layer, the LSTM cell, and the recurrences into the
  previous step's memory, weightings, read vectors and controller state. The weight matrices'
  gradients are then one matrix product each, over all steps at once.

While the kernel runs, subnormal floats are flushed to zero (x86 MXCSR; the caller's mode is
restored afterwards): sharpened weightings hold entries around 1e-40, and arithmetic on such
numbers takes a slow path. Results differ from the plain path by float rounding only.

It is opt-in (:meth:`NTM.use_fused <neural_memory.ntm.NTM.use_fused>`, ``train --fused``):
the first use compiles the extension (about a minute; cached afterwards under
``~/.cache/torch_extensions``), which needs a C++ compiler and ``ninja``. What it supports is
an allow-list, :data:`SUPPORTED_VALUES`: for every :class:`~neural_memory.ntm.NTMConfig` field,
the values the kernel implements (LSTM or feedforward controllers of any depth, any number of
read and write heads, any shift width and clip, a bound on the sharpening (``gamma_max``), every
initial-state choice; soft addressing only, ``hard_addressing="none"``).
:func:`check_supported` refuses any other value, and any field the allow-list does not name.
It runs in float32 and float64 on the CPU, and without a trace (``return_trace=True`` runs the
plain path, which computes the same values). The tests (``tests/test_ntm_fused.py``) compare
outputs and gradients with the plain path in float64 and check the gradient numerically with
``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

__all__ = ["ANY_VALUE", "SUPPORTED_VALUES", "FusedUnsupported", "check_device",
           "check_supported", "fused_available", "fused_unroll", "load_extension"]

_SOURCE = Path(__file__).with_name("_fused.cpp")
_EXTENSION = None


class FusedUnsupported(ValueError):
    """The fused unroll cannot run this model or input (the message says why)."""


class _AnyValue:
    """The type of :data:`ANY_VALUE`."""

    def __repr__(self) -> str:
        return "ANY_VALUE"


#: In :data:`SUPPORTED_VALUES`: every value that :class:`~neural_memory.ntm.NTMConfig` accepts.
ANY_VALUE = _AnyValue()

#: For every :class:`~neural_memory.ntm.NTMConfig` field, the values the fused unroll implements:
#: :data:`ANY_VALUE` (the kernel takes the value as a number or a shape, or the field only acts
#: outside the unroll) or a tuple of the supported values. :func:`check_supported` refuses any
#: other value, and a config with a field that is not a key here.
SUPPORTED_VALUES: dict[str, object] = {
    # Outside the unroll: the external input's share of layer 0 (bias included) is projected in
    # Python (Controller.project_external) and reaches the kernel as x_proj (T, B, G).
    "input_size": ANY_VALUE,
    # Outside the unroll: the output layer runs on the kernel's results (NTM._output).
    "output_size": ANY_VALUE,
    # The kernel implements two cells, chosen by its `lstm` flag: the LSTM (gates i, f, o,
    # candidate, as LSTMController stores them; input [below | h_prev]) and the tanh layer
    # (input [below]). fused_unroll sets the flag from controller == "lstm", so any other kind
    # would run as the tanh layer.
    "controller": ("lstm", "feedforward"),
    # C: head_wt.size(0) and the weights' shapes (G = 4C for the LSTM, C otherwise).
    "controller_size": ANY_VALUE,
    # L: one (input, G) weight per layer, layers 1 .. L-1's biases passed separately.
    "controller_layers": ANY_VALUE,
    # N: mem0.size(1); rows in blocks of 32 and a remainder loop.
    "memory_rows": ANY_VALUE,
    # M: mem0.size(2).
    "memory_width": ANY_VALUE,
    # R: passed; the first R heads read, and reads0 and dreads are (B, R*M).
    "read_heads": ANY_VALUE,
    # W: passed; one pass for W == 1, else all erases (a product) then all adds (a sum).
    "write_heads": ANY_VALUE,
    # K: passed; the shift pads the weighting circularly by (K - 1) / 2 on each side, which
    # needs K odd and K <= N (NTMConfig requires both).
    "num_shifts": ANY_VALUE,
    # Outside the unroll: which of the kernel's results feed the output layer (NTM._output).
    "output_from_reads": (False, True),
    # Outside the unroll: NTMHeads.fused_weight gives the same (P, C) weight and (P,) bias in
    # the kernel's layout for both.
    "split_head_layers": (False, True),
    # Passed as clip (None as 0, no clipping): every raw head parameter is clamped to [-c, c]
    # before its activation, the gradient masked outside; the logits' clamp is NTM._output's.
    "clip_controller": ANY_VALUE,
    # Outside the unroll: NTM.initial_memory gives an (N, M) tensor in every mode, passed as
    # mem0; the kernel returns its gradient and autograd carries it on (tanh for "learned").
    "memory_init": ("constant", "learned", "random"),
    # Outside the unroll: the entries of the constant M_0 (reaches the kernel in mem0).
    "memory_init_value": ANY_VALUE,
    # Outside the unroll: NTM.initial_reads, passed as reads0 (its gradient returned).
    "learn_initial_reads": (False, True),
    # Outside the unroll: NTM.initial_weights, passed as w0 (its gradient returned).
    "learn_initial_weights": (False, True),
    # The kernel's heads are soft; it has no one-hot (Gumbel-softmax) weighting.
    "hard_addressing": ("none",),
    # Passed as gamma_max (None as 0, no cap): gamma - 1 = min(softplus, gamma_max - 1), the
    # gradient zero above the cap, as torch.clamp gives it.
    "gamma_max": ANY_VALUE,
}


def check_supported(config) -> None:
    """Raise :class:`FusedUnsupported` unless the fused unroll can run an NTM of ``config`` (an
    :class:`~neural_memory.ntm.NTMConfig`): every field's value must be one that
    :data:`SUPPORTED_VALUES` allows, and every field must have an entry there. The message is
    one line naming the field, the value given and the values supported."""
    for field in dataclasses.fields(config):
        name, value = field.name, getattr(config, field.name)
        if name not in SUPPORTED_VALUES:
            raise FusedUnsupported(
                f"the fused unroll does not support {name}={value!r}; it supports no value of "
                f"{name}, a field its allow-list (neural_memory.ntm.fused.SUPPORTED_VALUES) does "
                f"not name (use the plain path)"
            )
        allowed = SUPPORTED_VALUES[name]
        if allowed is not ANY_VALUE and not any(
            type(value) is type(a) and value == a for a in allowed
        ):
            supported = ", ".join(repr(a) for a in allowed)
            raise FusedUnsupported(
                f"the fused unroll does not support {name}={value!r}; it supports {name} in "
                f"({supported}) (use the plain path)"
            )


def _cflags() -> list[str]:
    """Optimise, vectorise the ``#pragma omp simd`` loops, and on x86-64 use this CPU's vector
    instructions (the extension is compiled on the machine that runs it)."""
    flags = ["-O3", "-fopenmp-simd"]
    if platform.machine().lower() in ("x86_64", "amd64"):
        flags.append("-march=native")
    return flags


def load_extension(verbose: bool = False):
    """Compile (first call; cached on disk afterwards) and return the C++ extension.

    Raises:
        RuntimeError: the extension could not be built (no C++ compiler or no ``ninja``); the
            message says what to install. The plain path needs neither.
    """
    global _EXTENSION
    if _EXTENSION is None:
        from torch.utils import cpp_extension

        if shutil.which("ninja") is None:  # pip's ninja sits next to the interpreter
            os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent),
                                                  os.environ.get("PATH", "")])

        try:
            _EXTENSION = cpp_extension.load(
                name="neural_memory_fused_ntm",
                sources=[str(_SOURCE)],
                extra_cflags=_cflags(),
                verbose=verbose,
            )
        except (RuntimeError, OSError, ImportError) as err:
            raise RuntimeError(
                "could not build the fused NTM extension (neural_memory/ntm/_fused.cpp): it needs "
                "a C++ compiler (g++) and ninja (`pip install ninja`). The plain NTM path needs "
                f"neither; leave use_fused off. Cause: {err}"
            ) from err
    return _EXTENSION


def fused_available() -> bool:
    """Whether the extension builds (or is already built) here."""
    try:
        load_extension()
    except RuntimeError:
        return False
    return True


@dataclass(frozen=True)
class _Meta:
    read_heads: int
    write_heads: int
    num_shifts: int
    lstm: bool
    clip: float  # <= 0: none
    layers: int
    gamma_max: float = 0.0  # <= 0: no cap

    @property
    def biases(self) -> int:
        """Bias vectors passed separately: layers 1 .. L-1 (layer 0's is in x_proj)."""
        return self.layers - 1


class _FusedUnroll(torch.autograd.Function):
    @staticmethod
    def forward(ctx, meta: _Meta, x_proj, head_wt, head_b, mem0, reads0, w0, *weights_biases):
        ext = load_extension()
        weights = list(weights_biases[: meta.layers])
        biases = list(weights_biases[meta.layers :])
        out = ext.forward(
            x_proj, weights, biases, head_wt, head_b, mem0, reads0, w0,
            meta.read_heads, meta.write_heads, meta.num_shifts, meta.lstm, meta.clip,
            meta.gamma_max,
        )
        h_seq, reads = out[0], out[1]
        ctx.meta = meta
        # Saved: x_proj, head_wt, w0; mem, raw, act, rnorm, stages, gates, cells, tanhc, hs;
        # each layer's inputs; the controller weights.
        ctx.save_for_backward(x_proj, head_wt, w0, *out[2:], *weights)
        return h_seq, reads

    @staticmethod
    @once_differentiable
    def backward(ctx, dh_seq, dreads):
        meta: _Meta = ctx.meta
        saved = ctx.saved_tensors
        x_proj, head_wt, w0 = saved[:3]
        mem, raw, act, rnorm, stages, gates, cells, tanhc, hs = saved[3:12]
        inputs = list(saved[12 : 12 + meta.layers])
        weights = list(saved[12 + meta.layers :])
        if dh_seq is None:
            dh_seq = torch.zeros_like(hs[-1])
        if dreads is None:
            dreads = torch.zeros(x_proj.shape[0], x_proj.shape[1], meta.read_heads * mem.shape[2],
                                 dtype=x_proj.dtype)
        grads = load_extension().backward(
            dh_seq.contiguous(), dreads.contiguous(), x_proj, weights, head_wt, w0, mem, raw,
            act, rnorm, stages, gates, cells, tanhc, hs, inputs,
            meta.read_heads, meta.write_heads, meta.num_shifts, meta.lstm, meta.clip,
            meta.gamma_max,
        )
        dx = grads[0]
        dweights = grads[1 : 1 + meta.layers]
        dbiases = grads[1 + meta.layers : 1 + meta.layers + meta.biases]
        dhead_wt, dhead_b, dmem0, dreads0, dw0 = grads[1 + meta.layers + meta.biases :]
        return (None, dx, dhead_wt, dhead_b, dmem0, dreads0, dw0, *dweights, *dbiases)


def check_device(device: torch.device | str) -> None:
    """Raise :class:`FusedUnsupported` unless ``device`` is the CPU (the extension is CPU code);
    callers that know their device in advance check it before any work starts."""
    if torch.device(device).type != "cpu":
        raise FusedUnsupported(f"the fused unroll runs on the CPU only; got device {str(device)!r}")


def fused_unroll(model, x: Tensor) -> tuple[Tensor, Tensor]:
    """Controller outputs ``(B, T, C)`` and read vectors ``(B, T, R*M)`` of ``model`` (an
    :class:`~neural_memory.ntm.NTM`) on ``x`` ``(B, T, input_size)``, computed by the fused
    extension. Same values as the plain loop in ``NTM.forward``; differentiable.

    Raises:
        FusedUnsupported: a config :func:`check_supported` refuses, a non-CPU tensor, or a dtype
            other than float32 or float64.
    """
    cfg = model.config
    check_supported(cfg)
    check_device(x.device)
    memory0 = model.initial_memory()
    if memory0.dtype not in (torch.float32, torch.float64):
        raise FusedUnsupported(f"the fused unroll needs float32 or float64; got {memory0.dtype}")
    batch = x.shape[0]
    r, m = cfg.read_heads, cfg.memory_width
    controller = model.controller
    # Time first; views where the extension only multiplies (BLAS takes transposed and strided
    # matrices as they are); contiguous copies only where it reads raw memory.
    x_proj = controller.project_external(x.transpose(0, 1).to(memory0.dtype))  # (T, B, G)
    weights = controller.prepare()  # per layer (input, G), transposed views
    biases = list(controller.biases[1:])
    weight, bias = model.heads.fused_weight()
    mem0 = memory0.expand(batch, -1, -1)  # copied (transposed) into the extension's memory
    reads0 = model.initial_reads().reshape(1, r * m).expand(batch, -1).contiguous()
    w0 = model.initial_weights().expand(batch, -1, -1).contiguous()
    meta = _Meta(
        read_heads=r,
        write_heads=cfg.write_heads,
        num_shifts=cfg.num_shifts,
        lstm=cfg.controller == "lstm",
        clip=float(cfg.clip_controller) if cfg.clip_controller is not None else 0.0,
        layers=len(weights),
        gamma_max=float(cfg.gamma_max) if cfg.gamma_max is not None else 0.0,
    )
    h_seq, reads = _FusedUnroll.apply(
        meta, x_proj.contiguous(), weight.t(), bias, mem0, reads0, w0,
        *weights, *biases,
    )
    return h_seq.transpose(0, 1), reads.transpose(0, 1)  # (B, T, C), (B, T, R*M)
