"""The Part II figures and widgets: each draws what it says, and wrong shapes are refused."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from neural_memory.viz import ntm as viz  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def memory():
    return torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.5, -0.5, 0.0]])


def test_memory_heatmap_draws_one_image_of_the_memory():
    mem = memory()
    ax = viz.memory_heatmap(mem, title="M")
    assert len(ax.images) == 1
    assert ax.images[0].get_array().shape == (5, 3)
    assert ax.get_title() == "M"
    low, high = ax.images[0].get_clim()
    assert low == pytest.approx(-high) and high == pytest.approx(1.0)


def test_memory_heatmap_accepts_a_batch_of_one_and_rejects_other_shapes():
    assert viz.memory_heatmap(memory().unsqueeze(0)).images[0].get_array().shape == (5, 3)
    with pytest.raises(ValueError, match=r"\(N, M\).*\(2, 5, 3\)"):
        viz.memory_heatmap(torch.zeros(2, 5, 3))
    with pytest.raises(ValueError, match=r"\(N, M\).*\(5,\)"):
        viz.memory_heatmap(torch.zeros(5))


def test_memory_before_after_draws_bars_and_three_heat_maps():
    before = memory()
    after = before.clone()
    after[2] = torch.tensor([0.3, 0.3, 0.3])
    w = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0])
    fig, axes = viz.memory_before_after(before, after, w=w)
    assert len(axes) == 4
    assert len(axes[0].patches) == 5
    assert [len(ax.images) for ax in axes[1:]] == [1, 1, 1]
    change = axes[3].images[0].get_array()
    assert change[2].tolist() == pytest.approx([0.3, 0.3, -0.7])  # row 2 was (0, 0, 1)
    assert abs(change[[0, 1, 3, 4]]).max() == 0
    fig2, axes2 = viz.memory_before_after(before, after)
    assert len(axes2) == 3


def test_memory_before_after_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same shape"):
        viz.memory_before_after(torch.zeros(5, 3), torch.zeros(4, 3))
    with pytest.raises(ValueError, match="one entry per memory row"):
        viz.memory_before_after(torch.zeros(5, 3), torch.zeros(5, 3), w=torch.ones(4) / 4)


def test_weighting_panel_draws_one_bar_chart_per_weighting():
    fig, axes = viz.weighting_panel({"a": torch.tensor([0.5, 0.5, 0.0]), "b": [0.0, 0.0, 1.0]})
    assert [ax.get_title() for ax in axes] == ["a", "b"]
    assert [len(ax.patches) for ax in axes] == [3, 3]
    assert [p.get_height() for p in axes[1].patches] == pytest.approx([0.0, 0.0, 1.0])


def test_weighting_panel_rejects_mixed_lengths_and_matrices():
    with pytest.raises(ValueError, match="same length"):
        viz.weighting_panel({"a": torch.ones(3) / 3, "b": torch.ones(4) / 4})
    with pytest.raises(ValueError, match=r"shape \(N,\).*\(2, 3\)"):
        viz.weighting_panel({"a": torch.ones(2, 3)})
    with pytest.raises(ValueError, match="at least one"):
        viz.weighting_panel({})


def test_addressing_panel_draws_four_stages_and_the_previous_weighting():
    stages = [torch.full((1, 6), 1 / 6) for _ in range(4)]
    fig, axes = viz.addressing_panel(stages)
    assert len(axes) == 4 and all(len(ax.patches) == 6 for ax in axes)
    assert axes[0].get_title() == viz.STAGE_TITLES[0]
    fig, axes = viz.addressing_panel(stages, w_prev=torch.eye(6)[0])
    assert len(axes) == 5
    with pytest.raises(ValueError, match="4 weightings"):
        viz.addressing_panel(stages[:3])


def test_weights_over_time_draws_time_on_x_and_rows_on_y():
    w = torch.eye(4)[[0, 1, 2]]  # (T, N) = (3, 4)
    ax = viz.weights_over_time(w, title="w")
    assert ax.images[0].get_array().shape == (4, 3)  # (N, T): rows vertical
    assert ax.images[0].get_clim() == (0.0, 1.0)
    faint = viz.weights_over_time(torch.tensor([[0.2, 0.3, 0.25, 0.25]] * 3), vmax=None)
    assert faint.images[0].get_clim() == pytest.approx((0.2, 0.3))
    with pytest.raises(ValueError, match=r"\(T, N\)"):
        viz.weights_over_time(torch.zeros(2, 3, 4))


def test_read_write_heatmaps_draw_two_panels_and_check_rows():
    fig, axes = viz.read_write_heatmaps(torch.eye(4)[[0, 1]], torch.eye(4)[[1, 2, 3]])
    assert [len(ax.images) for ax in axes] == [1, 1]
    assert axes[0].get_title() == "write weightings"
    with pytest.raises(ValueError, match="same N rows"):
        viz.read_write_heatmaps(torch.zeros(3, 4), torch.zeros(3, 5))


def test_shift_from_masses_normalises_and_falls_back_to_stay():
    s, label = viz.shift_from_masses(0.0, 1.0, 3.0)
    assert s.tolist() == pytest.approx([0.0, 0.25, 0.75])
    assert "0.75" in label
    s, _ = viz.shift_from_masses(0.0, 0.0, 0.0)
    assert s.tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="non-negative"):
        viz.shift_from_masses(-1.0, 1.0, 0.0)


def test_draw_functions_show_the_library_results():
    from neural_memory.ntm import content_weights, shift

    mem = memory()
    key = torch.tensor([1.0, 0.0, 0.0])
    fig = viz.draw_content(mem, key, beta=5.0)
    expected = content_weights(mem.unsqueeze(0), key.unsqueeze(0), torch.tensor([[5.0]]))[0]
    assert [p.get_height() for p in fig.axes[2].patches] == pytest.approx(expected.tolist(), abs=1e-6)

    w = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0])
    fig = viz.draw_shift(w, 0.0, 0.0, 1.0)
    heights = [p.get_height() for p in fig.axes[2].patches]
    assert heights == pytest.approx(shift(w[None], torch.tensor([[0.0, 0.0, 1.0]]))[0].tolist())
    assert heights == pytest.approx([0.0, 1.0, 0.0, 0.0, 0.0])  # +1 moves row 0 to row 1

    fig = viz.draw_gate(w, torch.ones(5) / 5, g=0.5)
    assert [p.get_height() for p in fig.axes[2].patches] == pytest.approx([0.6, 0.1, 0.1, 0.1, 0.1])

    fig = viz.draw_sharpen(torch.tensor([0.5, 0.25, 0.25, 0.0, 0.0]), gamma=2.0)
    assert [p.get_height() for p in fig.axes[1].patches] == pytest.approx([4 / 6, 1 / 6, 1 / 6, 0, 0])


def test_addressing_explorer_redraws_when_a_slider_moves():
    mem = memory()
    keys = {"row 0": torch.tensor([1.0, 0.0, 0.0]), "row 2": torch.tensor([0.0, 0.0, 1.0])}
    explorer = viz.addressing_explorer(mem, torch.eye(5)[4], keys, beta=50.0)
    names = [child.description for child in explorer.children[:-1]]
    assert names == ["key", "β", "g", "s(-1)", "s(0)", "s(+1)", "γ"]
    sharpened = explorer.result.axes[-1]
    assert max(range(5), key=lambda i: sharpened.patches[i].get_height()) == 0
    explorer.children[0].value = "row 2"  # a new key: the content jump
    sharpened = explorer.result.axes[-1]
    assert max(range(5), key=lambda i: sharpened.patches[i].get_height()) == 2


@pytest.mark.parametrize(
    ("build", "count"),
    [
        (lambda: viz.content_explorer(memory(), {"k": torch.ones(3)}), 2),
        (lambda: viz.gate_explorer(torch.eye(5)[0], torch.ones(5) / 5), 1),
        (lambda: viz.shift_explorer(torch.eye(5)[0]), 3),
        (lambda: viz.sharpen_explorer(torch.ones(5) / 5), 1),
    ],
)
def test_each_stage_explorer_has_its_controls_and_a_default_figure(build, count):
    explorer = build()
    assert len(explorer.children) == count + 1  # the controls, then the output area
    assert explorer.result is not None and len(explorer.result.axes) >= 2


def test_explorers_refuse_an_empty_key_set():
    with pytest.raises(ValueError, match="at least one key"):
        viz.content_explorer(memory(), {})
