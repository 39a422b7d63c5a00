r"""The heads' parameters: from the controller output to keys, gates, shifts, erase and add.

Every head (read or write) emits the addressing parameters of Graves et al. (2014, section
3.3). From a linear map of the controller output $\mathbf{h}_t \in \mathbb{R}^C$, each raw value
is squashed into the range the paper requires (the particular squashing functions are ours):

| parameter | shape per head | activation | range |
|---|---|---|---|
| key $\mathbf{k}_t$ | $M$ | $\tanh$ | $(-1, 1)^M$ |
| key strength $\beta_t$ | 1 | $\mathrm{softplus}$ | $\ge 0$ |
| sharpening $\gamma_t$ | 1 | $1 + \mathrm{softplus}$ | $\ge 1$ |
| gate $g_t$ | 1 | $\sigma$ | $(0, 1)$ |
| shift $\mathbf{s}_t$ | $K$ | $\mathrm{softmax}$ over the $K$ shifts | on the simplex |
| erase $\mathbf{e}_t$ (write heads) | $M$ | $\sigma$ | $(0, 1)^M$ |
| add $\mathbf{a}_t$ (write heads) | $M$ | $\tanh$ | $(-1, 1)^M$ |

The key goes through $\tanh$ (as in Collier & Beel's implementation); cosine similarity ignores
the key's length, so this only bounds the raw values and does not restrict the directions much.

All $H = R + W$ heads (read heads first, then write heads) are computed in one matrix product.
The raw vector is laid out head by head: first, for each head, its addressing parameters
$[\mathbf{k} \,|\, \beta \,|\, \gamma \,|\, g \,|\, \mathbf{s}]$ ($M + 3 + K$ values), then, for
each write head, $[\mathbf{e} \,|\, \mathbf{a}]$ ($2M$ values). Viewed as ``(B, H, M + 3 + K)``
and ``(B, W, 2M)``, each activation runs once for all heads -- never a loop over heads.

Two ways to hold the weights (``split``):

* ``split=True`` -- one ``nn.Linear`` per parameter kind (the article's "split the FC" trick),
  each with its own initialisation: Xavier-uniform weights, zero bias.
* ``split=False`` -- one ``nn.Linear`` for everything, PyTorch's default initialisation, sliced.

Both give the same function of their weights: the split layers are blocks of the one big layer
(the forward pass concatenates them once per sequence). They differ in initialisation, and in
anything that treats each weight tensor as a unit (e.g. per-tensor gradient clipping).

Optional clipping (``clip``): the raw parameters are clamped to $[-c, c]$ before the
activations (Collier & Beel clip these "controller outputs"; the LSTM's own $\mathbf{h}_t$ is
already in $(-1, 1)$, so clipping it would do nothing).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["HEAD_PARAMETER_KINDS", "HeadParameters", "NTMHeads"]

HEAD_PARAMETER_KINDS = ("key", "beta", "gamma", "gate", "shift", "erase", "add")


class HeadParameters(NamedTuple):
    """The heads' parameters after their activations (read heads first in the ``H`` axis)."""

    key: Tensor  # (B, H, M)
    beta: Tensor  # (B, H, 1)
    gamma: Tensor  # (B, H, 1)
    gate: Tensor  # (B, H, 1)
    shift: Tensor  # (B, H, K)
    erase: Tensor  # (B, W, M)
    add: Tensor  # (B, W, M)


class NTMHeads(nn.Module):
    """Maps the controller output ``(B, C)`` to :class:`HeadParameters` for all heads at once."""

    def __init__(
        self,
        controller_size: int,
        memory_width: int,
        read_heads: int,
        write_heads: int,
        num_shifts: int = 3,
        split: bool = True,
        clip: float | None = None,
        gamma_max: float | None = None,
    ) -> None:
        super().__init__()
        if min(controller_size, memory_width, read_heads, write_heads, num_shifts) < 1:
            raise ValueError(
                "controller_size, memory_width, read_heads, write_heads and num_shifts must all "
                f"be >= 1; got {controller_size}, {memory_width}, {read_heads}, {write_heads}, "
                f"{num_shifts}"
            )
        if clip is not None and not clip > 0:
            raise ValueError(f"clip must be None or > 0; got {clip}")
        if gamma_max is not None and not gamma_max > 1:
            raise ValueError(f"gamma_max must be None or > 1; got {gamma_max}")
        self.controller_size = controller_size
        self.memory_width = memory_width
        self.read_heads = read_heads
        self.write_heads = write_heads
        self.num_heads = read_heads + write_heads
        self.num_shifts = num_shifts
        self.split = split
        self.clip = clip
        self.gamma_max = gamma_max
        h, w, m, k = self.num_heads, write_heads, memory_width, num_shifts
        #: width of one head's parameter of each kind, and how many heads have it
        self.widths = {"key": m, "beta": 1, "gamma": 1, "gate": 1, "shift": k, "erase": m, "add": m}
        self.counts = {name: (w if name in ("erase", "add") else h) for name in self.widths}
        self.sizes = {name: self.counts[name] * self.widths[name] for name in self.widths}
        self.address_width = m + 3 + k  # one head's [k | beta | gamma | gate | s]
        self.num_outputs = h * self.address_width + w * 2 * m
        if split:
            self.layers = nn.ModuleDict(
                {name: nn.Linear(controller_size, size) for name, size in self.sizes.items()}
            )
            for layer in self.layers.values():
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)
        else:
            self.linear = nn.Linear(controller_size, self.num_outputs)

    def _interleave(self, per_kind: dict[str, Tensor]) -> Tensor:
        """Per-kind blocks ``(count * width, ...)`` -> the head-by-head fused layout."""
        tail = per_kind["key"].shape[1:]

        def heads_of(names: tuple[str, ...]) -> Tensor:
            blocks = [per_kind[n].reshape(self.counts[n], self.widths[n], *tail) for n in names]
            return torch.cat(blocks, dim=1).reshape(-1, *tail)

        address = heads_of(("key", "beta", "gamma", "gate", "shift"))  # (H * (M+3+K), ...)
        return torch.cat([address, heads_of(("erase", "add"))], dim=0)  # (P, ...)

    def _deinterleave(self, fused: Tensor) -> dict[str, Tensor]:
        """The inverse of :meth:`_interleave`."""
        tail = fused.shape[1:]
        h, w, m = self.num_heads, self.write_heads, self.memory_width
        address, ea = fused.split([h * self.address_width, w * 2 * m], dim=0)
        address = address.reshape(h, self.address_width, *tail)
        ea = ea.reshape(w, 2 * m, *tail)
        out, start = {}, 0
        for name in ("key", "beta", "gamma", "gate", "shift"):
            size = self.widths[name]
            out[name] = address[:, start : start + size].reshape(-1, *tail)
            start += size
        out["erase"] = ea[:, :m].reshape(-1, *tail)
        out["add"] = ea[:, m:].reshape(-1, *tail)
        return out

    def fused_weight(self) -> tuple[Tensor, Tensor]:
        """The one ``(P, C)`` weight and ``(P,)`` bias that produce every raw parameter."""
        if not self.split:
            return self.linear.weight, self.linear.bias
        weight = self._interleave({n: layer.weight for n, layer in self.layers.items()})
        bias = self._interleave({n: layer.bias for n, layer in self.layers.items()})
        return weight, bias  # (P, C), (P,)

    def parameter_weights(self) -> dict[str, tuple[Tensor, Tensor]]:
        """Per parameter kind, its ``(count * width, C)`` weight and bias; head ``j``'s rows are
        ``j * width .. (j + 1) * width``."""
        weight, bias = self.fused_weight()
        ws, bs = self._deinterleave(weight), self._deinterleave(bias)
        return {name: (ws[name], bs[name]) for name in self.widths}

    def project(self, h: Tensor, weight_t: Tensor, bias: Tensor) -> Tensor:
        """Raw parameters ``(B, P)`` from controller output ``h`` ``(B, C)``, clipped if set.

        ``weight_t`` is the fused weight transposed, ``(C, P)`` (see :meth:`fused_weight`); the
        NTM fuses and transposes it once per sequence, not once per step.
        """
        raw = torch.addmm(bias, h, weight_t)  # (B, P)
        if self.clip is not None:
            raw = raw.clamp(-self.clip, self.clip)
        return raw

    def activate(self, raw: Tensor) -> HeadParameters:
        """Squash raw parameters ``(B, P)`` into their ranges (see the module docstring)."""
        b = raw.shape[0]
        h, w, m, k = self.num_heads, self.write_heads, self.memory_width, self.num_shifts
        address, ea = raw.split([h * self.address_width, w * 2 * m], dim=1)
        key, pos, gate, shift = address.view(b, h, self.address_width).split([m, 2, 1, k], -1)
        beta, gamma = F.softplus(pos).split(1, dim=-1)  # (B, H, 1) each
        if self.gamma_max is not None:
            gamma = gamma.clamp(max=self.gamma_max - 1)
        erase, add = ea.view(b, w, 2 * m).split(m, dim=-1)  # (B, W, M) each
        return HeadParameters(
            key=torch.tanh(key),  # (B, H, M)
            beta=beta,  # (B, H, 1)
            gamma=1 + gamma,  # (B, H, 1)
            gate=torch.sigmoid(gate),  # (B, H, 1)
            shift=torch.softmax(shift, dim=-1),  # (B, H, K)
            erase=torch.sigmoid(erase),  # (B, W, M)
            add=torch.tanh(add),  # (B, W, M)
        )

    def forward(self, h: Tensor) -> HeadParameters:
        """All heads' parameters for controller output ``h`` ``(B, C)``."""
        if h.dim() != 2 or h.shape[1] != self.controller_size:
            raise ValueError(
                f"controller output must have shape (B, {self.controller_size}); "
                f"got {tuple(h.shape)}"
            )
        weight, bias = self.fused_weight()
        return self.activate(self.project(h, weight.t(), bias))
