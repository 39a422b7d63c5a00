"""What the experiments record about where they ran: the code version and the machine."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

__all__ = ["code_version", "machine_description"]


def code_version() -> str:
    """The short git commit of the checkout the code runs from, or ``"unknown"``."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, check=True, cwd=Path(__file__).parent)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine_description() -> str:
    """CPU architecture, torch threads and Python version, in one line."""
    return (f"{platform.machine()} {platform.processor() or platform.system()}, "
            f"{torch.get_num_threads()} torch thread(s), python {platform.python_version()}")
