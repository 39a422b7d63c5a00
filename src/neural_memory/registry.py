"""The models the package trains, by kind: the name the command line and the manifests use.

Each kind maps to its config dataclass and its ``nn.Module`` class, imported when first asked
for (so that this module imports nothing heavy and a model's module never imports the registry
back). A new kind of model is one more entry here.
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import nn

#: kind -> (module, config class, model class)
_KINDS: dict[str, tuple[str, str, str]] = {
    "lstm": ("neural_memory.baselines", "LSTMConfig", "LSTMBaseline"),
    "ntm": ("neural_memory.ntm", "NTMConfig", "NTM"),
    "dnc": ("neural_memory.dnc", "DNCConfig", "DNC"),
}
MODEL_KINDS = tuple(_KINDS)

__all__ = ["MODEL_KINDS", "build_model", "model_classes"]


def model_classes(kind: str) -> tuple[type, type[nn.Module]]:
    """``(ConfigClass, ModelClass)`` for a model kind (one of :data:`MODEL_KINDS`)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {list(MODEL_KINDS)}")
    module, config_cls, model_cls = _KINDS[kind]
    found = importlib.import_module(module)
    return getattr(found, config_cls), getattr(found, model_cls)


def build_model(kind: str, config: Any) -> nn.Module:
    """A freshly initialised model of ``kind`` built from ``config``."""
    config_cls, model_cls = model_classes(kind)
    if not isinstance(config, config_cls):
        raise ValueError(f"a {kind!r} model needs a {config_cls.__name__}, got {type(config).__name__}")
    return model_cls(config)
