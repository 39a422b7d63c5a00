"""neural_memory: neural networks that read and write memory.

The package behind the book. What a reader uses is importable from here::

    import neural_memory as nm

    task = nm.get_task("copy")
    model = nm.NTM(nm.NTMConfig.preset("tiny", input_size=task.input_size,
                                       output_size=task.output_size))
    loop = nm.train(model, task, nm.TrainConfig.preset("tiny"), seed=0)
    print(nm.evaluate(model, task, sequences=64, length=10))

Parts:

* Hard (one-hot) memory reads with the straight-through Gumbel-softmax (Part I):
  :func:`sample_gumbel`, :func:`gumbel_softmax`, :func:`straight_through`, :class:`HardMemory`
  (``neural_memory.gumbel``, ``neural_memory.lookup``).
* The Neural Turing Machine, addressing stage by stage (Part II): :class:`NTM`,
  :class:`NTMConfig`, :class:`NTMTrace` (``neural_memory.ntm``), and the LSTM baseline of
  Part III: :class:`LSTMBaseline`, :class:`LSTMConfig` (``neural_memory.baselines``).
* The Differentiable Neural Computer (Graves et al., 2016): :class:`DNC`, :class:`DNCConfig`,
  :class:`DNCTrace` (``neural_memory.dnc``, with its allocation and linkage functions).
* The tasks -- the paper's four, and ``multi_copy`` for the DNC's memory reuse: :func:`get_task`,
  :data:`TASKS` (``neural_memory.tasks``).
* Training and evaluation: :class:`TrainConfig`, :func:`train` (the one training loop; its
  callbacks are in ``neural_memory.training``), :func:`evaluate`; models on disk:
  :func:`load_checkpoint`, :func:`save_checkpoint`, :func:`load_or_train` (the book's shipped
  models) and :func:`retrain_model` (one of them trained again from its manifest), and the kinds of model the command line trains (``neural_memory.registry``).
* ``neural_memory.viz``: the plotting helpers every figure of the book comes from (imported on
  first use, so that the rest of the package does not need matplotlib at import time).

The command-line programs are ``python -m neural_memory.train`` and
``python -m neural_memory.evaluate``; ``neural_memory.train`` and ``neural_memory.evaluate`` are
the functions above (the programs' code is in those modules, e.g. ``neural_memory.train.main``).
"""

import importlib
import sys
import types
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("neural-memory")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"


class _Package(types.ModuleType):
    """This package's module type: importing the command-line modules ``neural_memory.train``
    and ``neural_memory.evaluate`` (which sets the package's attribute of that name to the
    submodule) leaves ``train`` and ``evaluate`` the functions. The modules themselves stay in
    ``sys.modules``: ``from neural_memory.train import main`` works as usual."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in ("train", "evaluate") and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

from neural_memory.baselines import LSTMBaseline, LSTMConfig  # noqa: E402
from neural_memory.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from neural_memory.device import default_device  # noqa: E402
from neural_memory.dnc import DNC, DNCConfig, DNCTrace  # noqa: E402
from neural_memory.gumbel import gumbel_softmax, sample_gumbel, straight_through  # noqa: E402
from neural_memory.lookup import HardMemory  # noqa: E402
from neural_memory.ntm import NTM, NTMConfig, NTMTrace  # noqa: E402
from neural_memory.registry import MODEL_KINDS, build_model  # noqa: E402
from neural_memory.tasks import TASKS, get_task  # noqa: E402
from neural_memory.training import (  # noqa: E402
    TrainConfig,
    evaluate,
    load_or_train,
    retrain_model,
    train,
)

__all__ = [
    "DNC",
    "MODEL_KINDS",
    "NTM",
    "TASKS",
    "DNCConfig",
    "DNCTrace",
    "HardMemory",
    "LSTMBaseline",
    "LSTMConfig",
    "NTMConfig",
    "NTMTrace",
    "TrainConfig",
    "__version__",
    "build_model",
    "default_device",
    "evaluate",
    "get_task",
    "gumbel_softmax",
    "load_checkpoint",
    "load_or_train",
    "retrain_model",
    "sample_gumbel",
    "save_checkpoint",
    "straight_through",
    "train",
    "viz",
]


def __getattr__(name: str):
    """``neural_memory.viz``, imported on first use."""
    if name == "viz":
        return importlib.import_module("neural_memory.viz")
    raise AttributeError(f"module 'neural_memory' has no attribute {name!r}")
