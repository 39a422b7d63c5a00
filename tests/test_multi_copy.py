"""The multi-copy task: its layout, sizes and errors, and the command line on it for every model."""

import json

import pytest
import torch

from neural_memory.checkpoint import load_checkpoint
from neural_memory.evaluate import main as evaluate_main
from neural_memory.experiments.comparison import CRITERIA
from neural_memory.registry import MODEL_KINDS
from neural_memory.tasks import TASKS, MultiCopyTask, get_task
from neural_memory.tasks.copy import copy_batch
from neural_memory.tasks.multi_copy import multi_copy_batch
from neural_memory.train import main as train_main
from neural_memory.training import TrainConfig, default_preset, default_recipe, model_config_for


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_registered_with_the_copy_channels_and_its_ranges():
    task = get_task("multi_copy")
    assert TASKS["multi_copy"] is MultiCopyTask and task.name == "multi_copy"
    copy = get_task("copy")
    assert (task.input_size, task.output_size) == (9, 8) == (copy.input_size, copy.output_size)
    assert task.size_parameters == ("length", "episodes")
    assert task.training_ranges() == {"length": (1, 8), "episodes": (1, 6)}
    assert max(s["length"] * s["episodes"] for s in task.training_sizes()) == 48  # > 16 rows
    assert MultiCopyTask(max_length=3, min_episodes=2).training_ranges() == {
        "length": (1, 3), "episodes": (2, 6)}


def test_layout_of_two_episodes_of_two_vectors():
    x, y, m = get_task("multi_copy").sample(3, gen(), length=2, episodes=2)
    assert x.shape == (3, 10, 9) and y.shape == (3, 10, 8) and m.shape == (3, 10)
    delimiter = torch.tensor([0.0] * 8 + [1.0])
    for t in (2, 7):  # each episode's delimiter, alone on its step
        assert torch.equal(x[:, t], delimiter.expand(3, 9))
    assert x[:, :, 8].sum() == 3 * 2  # no other delimiter
    assert x[:, [3, 4, 8, 9]].abs().sum() == 0  # no input while answering
    assert torch.equal(y[:, 3:5], x[:, 0:2, :8])  # episode 1's vectors, in order
    assert torch.equal(y[:, 8:10], x[:, 5:7, :8])  # episode 2's
    assert y[:, [0, 1, 2, 5, 6, 7]].abs().sum() == 0
    assert torch.equal(m, torch.tensor([[0.0, 0, 0, 1, 1, 0, 0, 0, 1, 1]] * 3))
    assert not torch.equal(x[:, 0:2], x[:, 5:7])  # each episode draws its own vectors


@pytest.mark.parametrize(("length", "episodes"), [(1, 1), (3, 4), (8, 6), (5, 9)])
def test_every_episode_is_a_copy_episode(length, episodes):
    x, y, m = multi_copy_batch(2, length, episodes, gen(3))
    span = 2 * length + 1
    assert x.shape[1] == y.shape[1] == m.shape[1] == episodes * span  # T = E (2L + 1)
    for e in range(episodes):
        steps = slice(e * span, (e + 1) * span)
        xs, ys, ms = x[:, steps], y[:, steps], m[:, steps]
        assert torch.equal(xs[:, length], torch.tensor([0.0] * 8 + [1.0]).expand(2, 9))
        assert xs[:, :length, 8].sum() == 0 and xs[:, length + 1 :].sum() == 0
        assert torch.equal(ys[:, length + 1 :], xs[:, :length, :8])
        assert ys[:, : length + 1].sum() == 0
        assert torch.equal(ms, torch.tensor([[0.0] * (length + 1) + [1.0] * length] * 2))


def test_one_episode_is_the_copy_task():
    for length in (1, 4, 8):
        for u, v in zip(multi_copy_batch(4, length, 1, gen(5)), copy_batch(4, length, gen(5)), strict=True):
            assert torch.equal(u, v)


def test_training_draws_cover_both_ranges_and_stay_in_them():
    task, g = get_task("multi_copy"), gen()
    seen = set()
    for _ in range(600):
        x, _, _ = task.sample_train(1, g)
        delimiters = (x[0, :, 8] == 1).nonzero().flatten()
        episodes, length = len(delimiters), int(delimiters[0])
        assert x.shape[1] == episodes * (2 * length + 1)
        seen.add((length, episodes))
    assert seen == {(n, e) for n in range(1, 9) for e in range(1, 7)}
    assert all(task.draw_sizes(g, difficulty=0.4) in task.training_sizes(0.4) for _ in range(100))
    assert {s["episodes"] for s in task.training_sizes(0.4)} == {1, 2, 3}  # 1 + ceil(0.4 * 5)
    assert task.sample(2, g, length=12).inputs.shape[1] % 25 == 0  # beyond the range on request
    assert task.sample(2, g, length=2, episodes=10).inputs.shape[1] == 50


def test_same_seed_same_batch():
    task = get_task("multi_copy")
    a, b = task.sample(4, gen(7)), task.sample(4, gen(7))
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)
    fixed = {"length": 4, "episodes": 3}
    assert not torch.equal(task.sample(4, gen(8), **fixed).inputs, task.sample(4, gen(9), **fixed).inputs)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: get_task("multi_copy").sample(2, gen(), episodes=0), "episodes range must satisfy 1 <= min"),
        (lambda: get_task("multi_copy").sample(2, gen(), length=0), "length range must satisfy 1 <= min"),
        (lambda: get_task("multi_copy").sample(0, gen()), "batch_size must be a positive integer"),
        (lambda: MultiCopyTask(min_episodes=4, max_episodes=3), "episodes range must satisfy"),
        (lambda: MultiCopyTask(max_length=0), "length range must satisfy"),
        (lambda: multi_copy_batch(1, 2, -1), "episodes range"),
    ],
)
def test_bad_sizes_are_refused_with_one_clear_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_defaults_for_every_model_kind():
    task = get_task("multi_copy")
    assert {kind: default_preset("multi_copy", kind) for kind in MODEL_KINDS} == {
        "lstm": "small", "ntm": "multi_copy", "dnc": "multi_copy"}
    for kind in MODEL_KINDS:
        preset = default_preset("multi_copy", kind)
        config = model_config_for(task, kind, preset)
        assert (config.input_size, config.output_size) == (9, 8)
        if kind != "lstm":
            assert config.memory_rows == 16
        recipe = default_recipe("multi_copy", kind, preset)
        assert TrainConfig.preset(recipe) == TrainConfig.preset(f"copy-{kind}")  # copy's recipe
    # the paper's tasks keep their defaults
    assert [default_preset("copy", kind) for kind in ("ntm", "lstm", "dnc")] == ["copy", "small", "small"]
    assert [c.label for c in CRITERIA if c.task == "multi_copy"] == ["training range"]


@pytest.mark.parametrize("kind", MODEL_KINDS)
def test_command_line_trains_and_evaluates_every_model_kind(kind, tmp_path, capsys):
    out = tmp_path / kind
    assert train_main(["--task", "multi_copy", "--model", kind, "--out", str(out), "--preset", "tiny",
                       "--recipe", "tiny", "--sequences", "16", "--no-progress"]) == 0
    ckpt = load_checkpoint(out / f"multi_copy-{kind}.pt", task="multi_copy", model_kind=kind)
    assert ckpt.manifest["sequences_seen"] == 16
    assert (ckpt.config.input_size, ckpt.config.output_size) == (9, 8)
    capsys.readouterr()
    assert evaluate_main(["--task", "multi_copy", "--model", kind,
                          "--checkpoint", str(out / f"multi_copy-{kind}.pt"),
                          "--length", "3", "--episodes", "7", "--sequences", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["size"] == {"length": 3, "episodes": 7} and result["bit_errors"] >= 0
