"""The Part V figures and widgets: each draws what the library computes, and wrong inputs are
refused."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from neural_memory.dnc import DNC, DNCConfig, allocation_weights  # noqa: E402
from neural_memory.viz import dnc as viz  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def heights(ax) -> list[float]:
    return [p.get_height() for p in ax.patches]


@pytest.fixture(scope="module")
def trace():
    torch.manual_seed(0)
    model = DNC(DNCConfig.preset("tiny", memory_rows=6, read_heads=2))
    x = torch.rand(2, 5, 9, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        _, tr = model(x, return_trace=True)
    return tr


# ----------------------------------------------------------------------------- over time


def test_step_heatmaps_draw_one_image_per_panel_on_one_scale():
    u = torch.eye(4)[[0, 1, 2]]  # (T, N) = (3, 4)
    fig, axes = viz.step_heatmaps({"usage": u, "allocation": 0.5 * u}, step_labels=["a", "b", "c"])
    assert isinstance(fig, Figure) and [ax.get_title() for ax in axes] == ["usage", "allocation"]
    assert [ax.images[0].get_array().shape for ax in axes] == [(4, 3), (4, 3)]  # rows down
    assert all(ax.images[0].get_clim() == (0.0, 1.0) for ax in axes)
    assert [t.get_text() for t in axes[1].get_xticklabels()] == ["a", "b", "c"]
    assert len(fig.axes) == 3  # the two panels and one colour bar


def test_step_heatmaps_refuse_bad_panels():
    with pytest.raises(ValueError, match="at least one"):
        viz.step_heatmaps({})
    with pytest.raises(ValueError, match="same shape"):
        viz.step_heatmaps({"a": torch.zeros(3, 4), "b": torch.zeros(3, 5)})
    with pytest.raises(ValueError, match="one label per step"):
        viz.step_heatmaps({"a": torch.zeros(3, 4)}, step_labels=["x"])
    with pytest.raises(ValueError, match=r"\(T, N\)"):
        viz.step_heatmaps({"a": torch.zeros(2, 3, 4)})


# ----------------------------------------------------------------------------- allocation


def test_draw_allocation_shows_the_library_update_and_the_free_list():
    usage_prev = [0.9, 1.0, 0.6, 1.0, 0.8]
    reads = torch.eye(5)[[1, 3]]  # head 1 read row 1, head 2 read row 3
    fig = viz.draw_allocation(usage_prev, reads, [0.6, 0.3])
    axes = fig.axes
    assert len(axes) == 4
    assert heights(axes[1]) == pytest.approx([1.0, 0.4, 1.0, 0.7, 1.0])  # retention
    u = torch.tensor([[0.9, 0.4, 0.6, 0.7, 0.8]], dtype=torch.float64)
    assert heights(axes[2]) == pytest.approx(u[0].tolist())
    assert heights(axes[3]) == pytest.approx(allocation_weights(u)[0].tolist())
    assert "(1, 2, 3, 4, 0)" in fig._suptitle.get_text()
    assert [t.get_text() for t in axes[3].get_xticklabels()][:2] == ["0\n#5", "1\n#1"]


def test_draw_allocation_adds_the_previous_write():
    fig = viz.draw_allocation([0.0, 0.0, 0.0], torch.zeros(1, 3), [0.0], write_prev=[1.0, 0.0, 0.0])
    assert heights(fig.axes[2]) == pytest.approx([1.0, 0.0, 0.0])
    assert heights(fig.axes[3]) == pytest.approx([0.0, 1.0, 0.0])  # the next free row


def test_draw_allocation_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="one gate per read head"):
        viz.draw_allocation([0.5, 0.5], torch.eye(2), [0.5])
    with pytest.raises(ValueError, match=r"\(R, N\) with N = 3"):
        viz.draw_allocation([0.5, 0.5, 0.5], torch.eye(2), [0.5, 0.5])
    with pytest.raises(ValueError, match="one entry per memory row"):
        viz.draw_allocation([0.5, 0.5], torch.eye(2)[:1], [0.5], write_prev=[1.0])


def test_allocation_explorer_has_a_slider_per_row_and_per_free_gate_and_redraws():
    explorer = viz.allocation_explorer([0.9, 1.0, 0.6], torch.eye(3)[[1]], [1.0])
    names = [child.description for child in explorer.children[:-1]]
    assert names == ["u[0]", "u[1]", "u[2]", "f^1"]
    assert heights(explorer.result.axes[3]) == pytest.approx([0.0, 1.0, 0.0])  # row 1 freed
    explorer.children[3].value = 0.0  # close the free gate: row 2 (usage 0.6) is the freest
    assert heights(explorer.result.axes[3]) == pytest.approx([0.1 * 0.6, 0.0, 0.4])
    with pytest.raises(ValueError, match="one gate per read head"):
        viz.allocation_explorer([0.5, 0.5], torch.eye(2), [0.5])


# ----------------------------------------------------------------------------- links


def test_link_heatmap_draws_the_matrix_with_its_values():
    link = torch.zeros(4, 4)
    link[2, 0] = link[1, 2] = 1.0
    ax = viz.link_heatmap(link, title="L")
    assert ax.images[0].get_array().shape == (4, 4) and ax.get_title() == "L"
    assert sorted(t.get_text() for t in ax.texts) == ["1", "1"]
    assert "written after" in ax.get_ylabel() and "written before" in ax.get_xlabel()
    assert not viz.link_heatmap(link, annotate=False).texts
    with pytest.raises(ValueError, match="square"):
        viz.link_heatmap(torch.zeros(3, 4))


def test_draw_links_follows_the_write_order():
    fig = viz.draw_links([5, 2, 7, 0], 8)
    writes, links, walk = fig.axes[:3]  # then the colour bar
    assert writes.images[0].get_array().shape == (8, 4)
    link = links.images[0].get_array()
    for after, before in [(2, 5), (7, 2), (0, 7)]:
        assert link[after, before] == 1.0
    assert link.sum() == 3.0
    visited = walk.images[0].get_array().argmax(axis=0).tolist()  # the row read at each step
    assert visited == [5, 2, 7, 0]
    partial = viz.draw_links([5, 2, 7, 0], 8, writes=2)
    assert partial.axes[1].images[0].get_array().sum() == 1.0
    with pytest.raises(ValueError, match="outside 0..7"):
        viz.draw_links([1, 9], 8)
    with pytest.raises(ValueError, match="between 1 and 2"):
        viz.draw_links([1, 2], 8, writes=3)


def test_link_explorer_chooses_the_order_and_the_number_of_writes():
    orders = {"scrambled": [3, 0, 2], "in order": [0, 1, 2, 3]}
    explorer = viz.link_explorer(orders, 4)
    assert [child.description for child in explorer.children[:-1]] == ["order", "writes"]
    assert explorer.children[1].max == 4 and explorer.children[1].value == 3
    assert explorer.result.axes[1].images[0].get_array()[0, 3] == 1.0
    explorer.children[0].value = "in order"
    assert explorer.result.axes[1].images[0].get_array()[1, 0] == 1.0
    with pytest.raises(ValueError, match="not one of"):
        viz.link_explorer(orders, 4, order="missing")
    with pytest.raises(ValueError, match="outside"):
        viz.link_explorer({"bad": [4]}, 4)


# ----------------------------------------------------------------------------- the machine


def box_labels(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts if (t.get_gid() or "").startswith("box:")]


def test_dnc_diagram_has_every_part_and_writes_before_it_reads():
    fig = viz.dnc_diagram()
    assert isinstance(fig, Figure) and len(fig.axes) == 1 and not fig.axes[0].axison
    labels = box_labels(fig)
    for part in ("input", "controller", "memory", "output"):
        assert labels.count(part) == 1, part
    assert "1. write head" in labels and any(label.startswith("2. read heads") for label in labels)
    stages = [name for name, _ in viz.WRITE_STAGES + viz.READ_STAGES]
    assert [label for label in labels if label in stages] == stages
    ax = fig.axes[0]
    assert len([p for p in ax.patches if isinstance(p, FancyBboxPatch)]) == len(labels)
    assert len([p for p in ax.patches if isinstance(p, FancyArrowPatch)]) >= 10
    texts = " ".join(t.get_text() for t in ax.texts)
    for symbol in (r"\boldsymbol{\xi}_t", r"\mathbf{u}_t", r"L_t", r"\mathbf{v}_t", "erase, then add"):
        assert symbol in texts, symbol


def test_draw_step_shows_the_trace_at_one_step(trace):
    fig = viz.draw_step(trace, 2, index=1, head=1)
    assert len(fig.axes) == 8
    assert heights(fig.axes[1]) == pytest.approx(trace.allocation[1, 2].tolist())
    assert heights(fig.axes[3]) == pytest.approx(trace.write_weights[1, 2, 0].tolist())
    assert heights(fig.axes[7]) == pytest.approx(trace.read_weights[1, 2, 1].tolist())
    assert fig.axes[4].get_ylabel() == "read head 2"
    with pytest.raises(ValueError, match="step t must be in 0..4"):
        viz.draw_step(trace, 5)
    with pytest.raises(ValueError, match="head must be in 0..1"):
        viz.draw_step(trace, 0, head=2)


def test_trace_figure_draws_every_weighting_and_the_last_link_matrix(trace):
    fig, axes = viz.trace_figure(trace, index=1, title="t")
    titles = [ax.get_title() for ax in axes]
    assert len(axes) == 6 and titles[0].startswith("usage") and titles[-1].startswith("link")
    assert sum(title.startswith("read weighting") for title in titles) == 2
    assert axes[0].images[0].get_array().shape == (6, 5)  # (N, T)
    drawn = axes[-1].images[0].get_array()
    assert drawn.flatten().tolist() == pytest.approx(trace.link[1, -1].flatten().tolist())
    assert sum(ax.get_visible() for ax in fig.axes) == 6 + 6  # the panels and their colour bars
    with pytest.raises(ValueError, match="expected a DNCTrace"):
        viz.trace_figure(object())
    with pytest.raises(ValueError, match="out of range"):
        viz.trace_figure(trace, index=2)
