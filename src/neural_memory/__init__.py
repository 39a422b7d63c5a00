"""neural_memory: neural networks that read and write memory.

The package behind the book. Parts:

* ``neural_memory.gumbel`` and ``neural_memory.lookup`` -- hard (one-hot) memory reads with the
  straight-through Gumbel-softmax (Part I).
* ``neural_memory.ntm`` -- the Neural Turing Machine, addressing stage by stage (Part II).
* ``neural_memory.viz`` -- the plotting helpers every chapter's figures come from.
"""

from importlib.metadata import PackageNotFoundError, version

from neural_memory.device import default_device

try:
    __version__ = version("neural-memory")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__", "default_device"]
