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


def test_the_public_api_has_what_a_reader_uses():
    import importlib

    from neural_memory import training

    for name in neural_memory.__all__:
        assert getattr(neural_memory, name) is not None, name
    # train and evaluate are the functions even after their command-line modules are imported
    importlib.import_module("neural_memory.train")
    importlib.import_module("neural_memory.evaluate")
    assert neural_memory.train is training.train and neural_memory.evaluate is training.evaluate
    assert callable(importlib.import_module("neural_memory.train").main)
    task = neural_memory.get_task("copy")
    torch.manual_seed(0)
    model = neural_memory.NTM(neural_memory.NTMConfig.preset(
        "tiny", input_size=task.input_size, output_size=task.output_size))
    loop = neural_memory.train(model, task, neural_memory.TrainConfig.preset("tiny"), seed=0)
    assert loop.seen == 32 and loop.rows[-1][0] == 32
    metrics = neural_memory.evaluate(model, "copy", sequences=8, seed=1, length=3)
    assert metrics == training.evaluate_model(model, task, 8, torch.Generator().manual_seed(1), length=3)
    assert neural_memory.viz.new_axes is not None
