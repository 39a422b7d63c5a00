import torch

import neural_memory
from neural_memory import default_device


def test_version_is_the_installed_one():
    assert neural_memory.__version__ == "0.1.0"


def test_default_device_follows_cuda_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert default_device().type == expected
