"""Where tensors live: CUDA when it is available, the CPU otherwise."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """Return ``cuda`` when a GPU is visible to torch, else ``cpu``.

    Every notebook and command of the book calls this instead of hard-coding a device, so the
    same code runs on a laptop, on CI (CPU only) and on a Colab GPU.
    """
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
