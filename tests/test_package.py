from pathlib import Path

import torch

import neural_memory
from neural_memory import default_device


def test_version_is_the_installed_one():
    assert neural_memory.__version__ == "0.1.0"


def test_default_device_follows_cuda_availability():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert default_device().type == expected


def test_stored_experiment_results_ship_inside_the_package():
    """Chapters 27 and 41 read these runs; a plain (non-editable) install must have them."""
    import neural_memory
    from neural_memory.experiments import ablation, hard

    package = Path(neural_memory.__file__).resolve().parent
    for stored in (ablation.STORED, hard.STORED):
        assert package in stored.resolve().parents
    summary, curves = ablation.load_results()
    assert summary["runs"] and set(curves) == set(summary["runs"])
    for task in ("copy", "associative_recall"):
        summary, _ = hard.load_results(task)
        run = next(iter(summary["runs"].values()))
        model = hard.load_model(task, run["variant"], run["seed"])
        assert sum(p.numel() for p in model.parameters()) > 0
