"""The Part IV figures, drawn from small synthetic summaries: each draws what it says."""

from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from neural_memory.ntm import NTM, NTMConfig, harden  # noqa: E402
from neural_memory.viz import hard as viz  # noqa: E402
from neural_memory.viz.common import PALETTE  # noqa: E402

VARIANTS = ["soft", "hard_read", "hard_both"]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def synthetic(seeds=(0, 1, 2), variants=("soft", "hard_both")):
    """A summary of the experiments.hard schema and its learning curves, made up from numbers
    that make each figure's content checkable."""
    runs, curves = {}, {}
    for v_index, name in enumerate(variants):
        for seed in seeds:
            key = f"{name}-seed{seed}"
            runs[key] = {
                "variant": name, "seed": seed, "converged": seed == 0,
                "eval_bit_errors": 0.01 + seed, "eval_cost_bits": 1.0 + seed,
                "beyond": {f"length={n}": {"bit_errors": n * (seed + 1.0), "bit_error_rate": 0.01 * seed + n / 1000}
                           for n in (20, 40)},
                "entropy_bits": {"read": 0.1 * seed, "write": 1.0, "read_soft": 2.0 + v_index,
                                 "write_soft": 3.0},
            }
            n_rows = 4 + seed  # seeds of unequal length: the median uses the common rows
            curves[key] = [{"sequences": 1000.0 * (j + 1), "cost_bits": 10.0 * (seed + 1) / (j + 1),
                            "bit_errors": 1.0, "wall_seconds": float(j)} for j in range(n_rows)]
    summary = {"variants": [{"name": n} for n in VARIANTS], "converged_below": 0.1,
               "beyond": {"length": [20, 40]}, "runs": runs}
    return summary, curves


def test_variant_colour_follows_the_summary_order():
    summary, _ = synthetic()
    assert viz.variant_colour(summary, "soft") == PALETTE[0]
    assert viz.variant_colour(summary, "hard_both") == PALETTE[2]
    with pytest.raises(ValueError, match="unknown variant"):
        viz.variant_colour(summary, "nope")


def test_soft_vs_hard_draws_weights_samples_and_frequencies():
    w = torch.tensor([0.1, 0.6, 0.3])
    samples = harden(w.expand(40, 3), generator=torch.Generator().manual_seed(0))
    axes = viz.soft_vs_hard(w, samples)
    assert [p.get_height() for p in axes[0].patches] == pytest.approx([0.1, 0.6, 0.3])
    assert axes[1].images[0].get_array().shape == (40, 3)
    heights = [p.get_height() for p in axes[2].patches]  # w, then the frequencies
    assert heights[:3] == pytest.approx([0.1, 0.6, 0.3])
    assert heights[3:] == pytest.approx(samples.mean(0).tolist())
    axes = viz.soft_vs_hard(w, samples, show=10)  # the image shows 10, the bars count all 40
    assert axes[1].images[0].get_array().shape == (10, 3)
    assert [p.get_height() for p in axes[2].patches][3:] == pytest.approx(samples.mean(0).tolist())
    with pytest.raises(ValueError, match=r"\(S, 3\)"):
        viz.soft_vs_hard(w, torch.zeros(5, 4))


def test_gradient_per_step_marks_non_finite_steps():
    ax = viz.gradient_per_step({"fine": [1e-2, 2e-2, 1e-2], "blows up": [float("inf"), float("nan"), 1e3]})
    lines = ax.get_lines()
    assert len(lines) == 3  # two curves and one set of crosses
    crosses = [ln for ln in lines if ln.get_marker() == "x"]
    assert len(crosses) == 1 and list(crosses[0].get_xdata()) == [0, 1]
    assert ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="at least one"):
        viz.gradient_per_step({})


def test_variant_curves_draw_each_seed_and_a_median():
    summary, curves = synthetic()
    ax = viz.variant_curves(summary, curves, mark_sequences=2000)
    lines = ax.get_lines()
    thick = [ln for ln in lines if ln.get_linewidth() == 2.0]
    assert len(thick) == 2 and len(lines) == 2 * 3 + 2 + 1  # 6 seeds, 2 medians, the marker
    soft = thick[0]
    assert list(soft.get_xdata()) == [1.0, 2.0, 3.0, 4.0]  # the 4 rows every seed reached
    assert soft.get_ydata()[0] == pytest.approx(20.0)  # median of 10, 20, 30
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["soft (3 seeds)", "hard both (3 seeds)"]
    with pytest.raises(ValueError, match="no stored runs"):
        viz.variant_curves(summary, curves, variants=["anneal_both"])
    with pytest.raises(ValueError, match="no column"):
        viz.variant_curves(summary, curves, metric="accuracy")


def test_generalisation_by_variant_has_a_dot_per_seed_and_the_mean():
    summary, _ = synthetic()
    ax = viz.generalisation_by_variant(summary, xlabel="sequence length")
    dots = [ln for ln in ax.get_lines() if ln.get_marker() == "o"]
    means = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    assert len(dots) == 2 * 2 and all(len(d.get_ydata()) == 3 for d in dots)  # variants x sizes
    assert len(means) == 2
    assert means[0].get_ydata() == pytest.approx([0.01 + 0.02, 0.01 + 0.04])  # mean over seeds 0-2
    assert list(ax.get_xticks()) == [20, 40] and ax.get_xlabel() == "sequence length"
    bad = {**summary, "beyond": {"length": [20], "items": [6]}}
    with pytest.raises(ValueError, match="one size parameter"):
        viz.generalisation_by_variant(bad)


def test_entropy_by_variant_draws_four_bars_per_variant():
    summary, _ = synthetic()
    ax = viz.entropy_by_variant(summary, max_bits=7.0, title="all steps")
    assert ax.get_title() == "all steps"
    assert len(ax.patches) == 4 * 2
    heights = sorted(p.get_height() for p in ax.patches)
    assert heights == pytest.approx(sorted([0.1, 0.1, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0]))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["soft", "hard both"]
    assert any(ln.get_ydata()[0] == 7.0 for ln in ax.get_lines())


def _trace(steps=6, rows=5, seed=0):
    """A trace-like object: a hard (one-hot) write head and a soft read head."""
    gen = torch.Generator().manual_seed(seed)
    soft = torch.softmax(torch.randn(1, steps, 2, rows, generator=gen), dim=-1)  # (B, T, H, N)
    write = torch.nn.functional.one_hot(soft[:, :, 1].argmax(-1), rows).float()[:, :, None]
    return SimpleNamespace(read_weights=soft[:, :, :1], write_weights=write,
                           stages=SimpleNamespace(sharpened=soft))


def test_pre_hard_weights_returns_the_soft_weightings():
    trace = _trace()
    soft = viz.pre_hard_weights(trace)
    assert torch.equal(soft.read_weights, trace.read_weights)
    assert torch.equal(soft.write_weights, trace.stages.sharpened[:, :, 1:])
    with pytest.raises(ValueError, match="NTMTrace"):
        viz.pre_hard_weights(SimpleNamespace(read_weights=None))


def test_pre_hard_weights_of_a_real_hard_model():
    torch.manual_seed(0)
    model = NTM(NTMConfig.preset("tiny", hard_addressing="both", memory_init_value=0.01)).eval()
    x = (torch.rand(1, 7, 9, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    with torch.no_grad():
        _, trace = model(x, return_trace=True)
    soft = viz.pre_hard_weights(trace)
    assert torch.equal(soft.write_weights.argmax(-1), trace.write_weights.argmax(-1))
    assert (soft.read_weights.max(-1).values < 1).any()


def test_entropy_over_time_is_zero_for_one_hot_and_matches_the_soft_weighting():
    trace = _trace()
    mask = torch.tensor([0, 0, 0, 1, 1, 1])
    axes = viz.entropy_over_time({"hard_write": trace}, mask=mask)
    write_line, read_line = axes[0].get_lines()[0], axes[1].get_lines()[0]
    assert write_line.get_ydata() == pytest.approx([0.0] * 6)
    expected = -(trace.read_weights[0, :, 0] * trace.read_weights[0, :, 0].log2()).sum(-1)
    assert read_line.get_ydata() == pytest.approx(expected.tolist())
    assert len(axes[0].patches) == 1  # the shaded answer phase
    assert axes[1].get_title() == "read weighting: entropy per step"
    axes = viz.entropy_over_time({"x": trace}, what="soft weighting")
    assert axes[0].get_title() == "write soft weighting: entropy per step"
    with pytest.raises(ValueError, match="head 1"):
        viz.entropy_over_time({"x": trace}, head=1)


def test_heatmap_grid_one_column_per_variant():
    traces = {"soft": _trace(seed=0), "hard_write": _trace(seed=1)}
    mask = torch.tensor([0, 0, 0, 1, 1, 1])
    axes = viz.heatmap_grid(traces, mask=mask)
    assert axes.shape == (2, 2)
    for ax in axes.ravel():
        assert len(ax.images) == 1 and ax.images[0].get_array().shape == (5, 6)  # (N, T)
    np.testing.assert_array_equal(axes[0, 1].images[0].get_array(),
                                  traces["hard_write"].write_weights[0, :, 0].T.numpy())
    assert axes[0, 1].get_title() == "hard write\nwrite"
    assert len(axes[1, 0].get_lines()) == 2  # dashed lines at the answer phase's ends
    with pytest.raises(ValueError, match="at least one"):
        viz.heatmap_grid({})


def _one_hot_trace(write_rows, read_rows, n=8):
    """A trace whose heads use exactly the given rows, one per step."""
    def weights(rows):
        return torch.nn.functional.one_hot(torch.tensor(rows), n).float()[None, :, None]  # (1, T, 1, N)
    return SimpleNamespace(write_weights=weights(write_rows), read_weights=weights(read_rows))


def test_used_rows_goes_round_the_memory():
    forward = _one_hot_trace([0, 1, 2], [0, 1, 2])
    assert viz.used_rows({"a": forward}) == (0, 3)
    backward = _one_hot_trace([0, 7, 6], [0, 7, 6])  # heads stepping backwards from row 0
    assert viz.used_rows({"a": backward}) == (6, 3)
    assert viz.used_rows({"a": forward, "b": backward}) == (6, 5)  # rows 6, 7, 0, 1, 2
    assert viz.used_rows({"a": _one_hot_trace([3, 3], [3, 3])}) == (3, 1)
    faint = _one_hot_trace([0], [0])
    faint.write_weights[0, 0, 0, 5] = 0.005  # below the threshold
    assert viz.used_rows({"a": faint}) == (0, 1)
    assert viz.used_rows({"a": faint}, threshold=0.001) == (5, 4)  # 5, 6, 7, 0


def test_heatmap_grid_crops_round_the_memory_with_true_row_labels():
    trace = _one_hot_trace([0, 7, 6], [6, 7, 0])
    axes = viz.heatmap_grid({"a": trace}, rows=(6, 3))
    image = axes[0, 0].images[0].get_array()  # (N, T), rolled so that row 6 is drawn first
    assert image[0].tolist() == [0.0, 0.0, 1.0] and image[2].tolist() == [1.0, 0.0, 0.0]
    assert axes[0, 0].get_ylim() == (2.5, -0.5)
    formatter = axes[0, 0].yaxis.get_major_formatter()
    assert [formatter(y, None) for y in (0, 1, 2)] == ["6", "7", "0"]
    with pytest.raises(ValueError, match="rows must be"):
        viz.heatmap_grid({"a": trace}, rows=(0, 0))


def test_phase_entropy_splits_the_steps_by_the_mask():
    read = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]])  # 1, 2, 0 bits
    write = torch.nn.functional.one_hot(torch.tensor([0, 1, 2]), 4).float()  # (T, N)
    soft_write = torch.full((3, 4), 0.25)  # 2 bits each, before hardening
    trace = SimpleNamespace(read_weights=read[None, :, None], write_weights=write[None, :, None],
                            stages=SimpleNamespace(sharpened=torch.stack([read, soft_write], 1)[None]))
    mask = torch.tensor([[0, 1, 1]])
    answer = viz.phase_entropy(trace, mask)
    assert answer == pytest.approx({"read": 1.0, "write": 0.0, "read_soft": 1.0, "write_soft": 2.0})
    assert viz.phase_entropy(trace, mask, answer=False)["read"] == pytest.approx(1.0)
    assert set(answer) == set(viz.ENTROPY_KINDS)
    with pytest.raises(ValueError, match="no answer steps"):
        viz.phase_entropy(trace, torch.zeros(1, 3))
    with pytest.raises(ValueError, match="shape"):
        viz.phase_entropy(trace, torch.ones(3))


def test_curves_by_variant_is_one_row_of_panels_in_thousands():
    summary, curves = synthetic()
    axes = viz.curves_by_variant(summary, curves)
    assert axes.shape == (1, 2)
    assert len(axes[0, 0].get_lines()) == 3  # soft's own seeds
    assert len(axes[0, 1].get_lines()) == 3 + 3  # hard_both's seeds over soft's in grey
    assert axes[0, 1].xaxis.get_major_formatter()(4000, None) == "4"
    assert "soft seeds" in axes[0, 0].figure._suptitle.get_text()
