"""Layouts, ranges and reproducibility of the task generators, and the two metrics (the
multi-copy task's own tests are in ``test_multi_copy.py``)."""

import math

import pytest
import torch

from neural_memory.tasks import (
    TASKS,
    AssociativeRecallTask,
    CopyTask,
    PrioritySortTask,
    RepeatCopyTask,
    batch_metrics,
    get_task,
    sequence_bit_errors,
    sequence_cost_bits,
)
from neural_memory.tasks.associative_recall import associative_recall_batch
from neural_memory.tasks.priority_sort import priority_sort_batch
from neural_memory.tasks.repeat_copy import count_normalisation

CHANNELS = {"copy": (9, 8), "repeat_copy": (10, 9), "associative_recall": (8, 6), "priority_sort": (10, 8),
            "multi_copy": (9, 8)}


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_channel_counts_shapes_and_binary_targets(name):
    task = get_task(name)
    assert (task.input_size, task.output_size) == CHANNELS[name]
    x, y, m = task.sample(3, gen())
    assert x.shape[0] == y.shape[0] == m.shape[0] == 3
    assert x.shape[1] == y.shape[1] == m.shape[1]
    assert x.shape[2] == task.input_size and y.shape[2] == task.output_size
    assert set(y.unique().tolist()) <= {0.0, 1.0}
    assert set(m.unique().tolist()) == {0.0, 1.0}
    assert (y * (1 - m)[..., None]).abs().sum() == 0  # no target outside the scored steps


@pytest.mark.parametrize("name", sorted(TASKS))
def test_same_seed_same_data_different_seed_different_data(name):
    task = get_task(name)
    a, b, c = task.sample(4, gen(1)), task.sample(4, gen(1)), task.sample(4, gen(2))
    for u, v in zip(a, b, strict=True):
        assert torch.equal(u, v)
    assert a.inputs.shape != c.inputs.shape or not torch.equal(a.inputs, c.inputs)


def test_get_task_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown task 'kopy'"):
        get_task("kopy")


def test_copy_layout():
    x, y, m = CopyTask().sample(2, gen(), length=5)
    assert x.shape == (2, 11, 9)
    assert torch.equal(x[:, 5, :], torch.tensor([0.0] * 8 + [1.0]).expand(2, 9))  # delimiter alone
    assert x[:, :5, 8].sum() == 0 and x[:, 6:].sum() == 0  # no input while answering
    assert torch.equal(y[:, 6:], x[:, :5, :8])
    assert torch.equal(m, torch.tensor([[0.0] * 6 + [1.0] * 5] * 2))


def test_copy_training_lengths_cover_the_range_and_stay_in_it():
    task, g = CopyTask(), gen()
    lengths = {(task.sample_train(1, g).inputs.shape[1] - 1) // 2 for _ in range(400)}
    assert lengths == set(range(1, 21))
    short = {(task.sample_train(1, g, difficulty=0.25).inputs.shape[1] - 1) // 2 for _ in range(200)}
    assert short == set(range(1, 7))  # upper bound 1 + ceil(0.25 * 19) = 6


def test_repeat_copy_layout_and_count_normalisation():
    task = RepeatCopyTask()
    mean, std = task.count_normalisation
    assert mean == 5.5 and std == pytest.approx(math.sqrt(8.25))
    # the normalisation makes the training counts mean 0, variance 1 (population)
    counts = torch.arange(1, 11, dtype=torch.float64)
    z = (counts - mean) / std
    assert z.mean().item() == pytest.approx(0.0, abs=1e-12)
    assert z.var(unbiased=False).item() == pytest.approx(1.0)
    x, y, m = task.sample(2, gen(), length=3, repeats=4)
    T = 3 + 1 + 12 + 1
    assert x.shape == (2, T, 10) and y.shape == (2, T, 9)
    assert torch.equal(x[:, 3, 8], torch.ones(2))
    assert x[:, 3, 9].tolist() == pytest.approx([(4 - 5.5) / std] * 2)
    assert x[:, :3, 8:].abs().sum() == 0 and x[:, 4:].abs().sum() == 0
    for r in range(4):
        assert torch.equal(y[:, 4 + 3 * r : 7 + 3 * r, :8], x[:, :3, :8])
    assert y[:, :, 8].tolist() == [[0.0] * (T - 1) + [1.0]] * 2  # end marker on the last step only
    assert y[:, -1, :8].sum() == 0
    assert torch.equal(m[0], torch.tensor([0.0] * 4 + [1.0] * 13))


def test_repeat_copy_training_ranges():
    task, g = RepeatCopyTask(), gen()
    seen_len, seen_rep = set(), set()
    for _ in range(300):
        x, y, m = task.sample_train(1, g)
        length = int((x[0, :, 8] == 1).nonzero()[0, 0])
        repeats = round(x[0, length, 9].item() * task.count_normalisation[1] + 5.5)
        seen_len.add(length)
        seen_rep.add(repeats)
        assert x.shape[1] == length + 1 + repeats * length + 1
    assert seen_len == set(range(1, 11)) and seen_rep == set(range(1, 11))


def test_count_normalisation_of_a_single_count_is_finite():
    assert count_normalisation(3, 3) == (3.0, 1.0)


def test_associative_recall_target_is_the_item_after_the_query():
    (x, y, m), query = associative_recall_batch(16, items=4, generator=gen())
    span = 4
    assert x.shape == (16, 4 * 4 + 8, 8)
    items = torch.stack([x[:, i * span + 1 : (i + 1) * span, :6] for i in range(4)], 1)  # (B,4,3,6)
    for b in range(16):
        q = int(query[b])
        assert 0 <= q < 3
        assert torch.equal(x[b, 17:20, :6], items[b, q])  # the query repeats item q
        assert torch.equal(y[b, -3:], items[b, q + 1])  # the answer is the next item
    assert x[:, [0, 4, 8, 12], 6].eq(1).all() and x[:, :, 6].sum() == 16 * 4
    assert x[:, [16, 20], 7].eq(1).all() and x[:, :, 7].sum() == 16 * 2
    assert torch.equal(m[0], torch.tensor([0.0] * 21 + [1.0] * 3))
    assert set(query.tolist()) == {0, 1, 2}


def test_associative_recall_item_counts_in_range():
    task, g = AssociativeRecallTask(), gen()
    counts = {(task.sample_train(1, g).inputs.shape[1] - 8) // 4 for _ in range(200)}
    assert counts == set(range(2, 7))
    with pytest.raises(ValueError, match="items"):
        task.sample(1, g, items=1)


def test_priority_sort_targets_are_the_top_vectors_highest_first():
    (x, y, m), priority = priority_sort_batch(8, length=20, outputs=16, generator=gen())
    assert x.shape == (8, 37, 10)
    assert priority.min() >= -1 and priority.max() <= 1
    assert torch.equal(x[:, :20, 8], priority)
    assert x[:, 20, 9].eq(1).all() and x[:, :, 9].sum() == 8
    for b in range(8):
        ranked = sorted(range(20), key=lambda i: -priority[b, i].item())[:16]
        assert torch.equal(y[b, 21:], x[b, ranked, :8])
    assert torch.equal(m[0], torch.tensor([0.0] * 21 + [1.0] * 16))


def test_priority_sort_generalisation_sizes():
    task = PrioritySortTask()
    assert task.sample(1, gen()).inputs.shape[1] == 37
    assert task.sample(1, gen(), length=10).inputs.shape[1] == 10 + 1 + 10
    assert task.sample(1, gen(), length=40).inputs.shape[1] == 40 + 1 + 16


@pytest.mark.parametrize("bad", [dict(batch_size=0), dict(batch_size=2, length=0)])
def test_copy_rejects_bad_sizes(bad):
    with pytest.raises(ValueError):
        CopyTask().sample(generator=gen(), **bad)


def test_metrics_match_a_hand_computation():
    targets = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # (1, 2, 2)
    logits = torch.tensor([[[2.0, 1.0], [0.0, 3.0]]])
    mask = torch.tensor([[0.0, 1.0]])  # only the second step counts
    # step 2: target (0, 1); p = (0.5, sigmoid(3)); cost = -log2(0.5) - log2(sigmoid(3))
    expected = 1.0 - math.log2(1 / (1 + math.exp(-3.0)))
    assert sequence_cost_bits(logits, targets, mask).item() == pytest.approx(expected)
    # logit 0 -> sigmoid 0.5 -> not > 0.5 -> predicts 0 = target; logit 3 -> 1 = target
    assert sequence_bit_errors(logits, targets, mask).item() == 0
    assert sequence_bit_errors(logits, 1 - targets, mask).item() == 2
    m = batch_metrics(logits, 1 - targets, mask)
    assert m["bit_errors"] == 2 and m["bit_error_rate"] == 1.0


def test_metrics_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="mask must have shape"):
        sequence_cost_bits(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), torch.zeros(1, 3))


# --------------------------------------------------------------------------- viz.tasks


def test_task_layout_draws_inputs_and_targets_with_the_mask():
    import matplotlib

    matplotlib.use("Agg")
    from neural_memory.viz.tasks import task_layout

    batch = CopyTask().sample(2, gen(), length=4)
    axes = task_layout(*batch, index=1)
    image = axes[0].get_images()[0].get_array()
    assert image.shape == (9, 9)  # (I, T)
    assert torch.equal(torch.as_tensor(image.data), batch.inputs[1].T)
    assert axes[1].get_images()[0].get_array().shape == (8, 9)
    assert len(axes[1].patches) == 1  # the shaded answer phase
    with pytest.raises(ValueError, match="index 5 is out of range"):
        task_layout(*batch, index=5)


def test_prediction_learning_and_generalisation_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from neural_memory.checkpoint import write_csv
    from neural_memory.viz.tasks import generalisation_plot, learning_curves, prediction_panel

    x, y, m = CopyTask().sample(1, gen(), length=3)
    logits = (y * 2 - 1) * 5
    logits[0, -1, 0] *= -1  # one wrong bit
    axes = prediction_panel(y, logits, m)
    assert axes[1].get_images()[0].get_array().shape == (8, 3)
    assert len(axes[1].collections[0].get_offsets()) == 1
    write_csv(tmp_path / "log.csv", ["sequences", "cost_bits", "bit_errors", "wall_seconds"],
              [[1000, 50.0, 20.0, 1.0], [2000, 10.0, 3.0, 2.0]])
    ax = learning_curves({"ntm": tmp_path / "log.csv", "lstm": [{"sequences": 1000, "cost_bits": 60.0}]})
    assert [line.get_label() for line in ax.get_lines()] == ["ntm", "lstm"]
    assert list(ax.get_lines()[0].get_xdata()) == [1.0, 2.0]
    with pytest.raises(ValueError, match="no column 'bits'"):
        learning_curves({"ntm": tmp_path / "log.csv"}, metric="bits")
    ax = generalisation_plot({"ntm": ([10, 20], [0.0, 1.0])}, training_range=(1, 20))
    assert list(ax.get_lines()[0].get_ydata()) == [0.0, 1.0]


def test_head_heatmaps_from_an_ntm_trace():
    import matplotlib

    matplotlib.use("Agg")
    import neural_memory.ntm as ntm
    from neural_memory.viz.tasks import head_heatmaps

    torch.manual_seed(0)
    model = ntm.NTM(ntm.NTMConfig.preset("tiny"))
    x, y, m = CopyTask().sample(1, gen(), length=4)
    _, trace = model(x, return_trace=True)
    axes = head_heatmaps(trace, mask=m)
    n = model.config.memory_rows
    assert axes[0].get_images()[0].get_array().shape == (n, 9)
    assert torch.allclose(torch.as_tensor(axes[1].get_images()[0].get_array().data), trace.read_weights[0, :, 0].T.double().float())
    with pytest.raises(ValueError, match="head 3 is out of range"):
        head_heatmaps(trace, head=3)


def test_training_sizes_lists_what_draw_sizes_can_draw():
    copy, repeat = get_task("copy"), get_task("repeat_copy")
    assert copy.training_sizes() == [{"length": n} for n in range(1, 21)]
    assert copy.training_sizes(0.1) == [{"length": n} for n in (1, 2, 3)]  # 1 + ceil(0.1 * 19)
    grid = repeat.training_sizes()
    (l0, l1), (r0, r1) = repeat.training_ranges().values()
    assert len(grid) == (l1 - l0 + 1) * (r1 - r0 + 1) and grid[0] == {"length": l0, "repeats": r0}
    gen = torch.Generator().manual_seed(0)
    for task, difficulty in ((copy, 0.3), (repeat, 0.5), (repeat, 1.0)):
        allowed = task.training_sizes(difficulty)
        assert all(task.draw_sizes(gen, difficulty) in allowed for _ in range(200))
    with pytest.raises(NotImplementedError):
        get_task("priority_sort").training_sizes()
