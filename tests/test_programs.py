"""Program analysis (rows in use, head locations, priority fits, baselines) and its figures."""

import matplotlib

matplotlib.use("Agg")

from types import SimpleNamespace  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from neural_memory.baselines import LSTMBaseline, LSTMConfig  # noqa: E402
from neural_memory.experiments import programs as pg  # noqa: E402
from neural_memory.ntm import NTM, NTMConfig  # noqa: E402
from neural_memory.tasks import get_task  # noqa: E402
from neural_memory.tasks.metrics import sequence_bit_errors  # noqa: E402
from neural_memory.viz import programs as viz  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def one_hot(rows: list[int], n: int) -> torch.Tensor:
    """(T, N) weightings, all weight on ``rows[t]`` at step t."""
    w = torch.zeros(len(rows), n)
    w[torch.arange(len(rows)), torch.tensor(rows)] = 1.0
    return w


def make_trace(write_rows, read_rows, n=16, m=4, answer_from=None, inputs=3, outputs=2):
    """An EpisodeTrace with one-hot heads: ``write_rows``/``read_rows`` list each head's rows."""
    steps = len(write_rows[0])
    mask = torch.zeros(steps)
    if answer_from is not None:
        mask[answer_from:] = 1.0
    write = torch.stack([one_hot(r, n) for r in write_rows], dim=1)  # (T, W, N)
    read = torch.stack([one_hot(r, n) for r in read_rows], dim=1)  # (T, R, N)
    gen = torch.Generator().manual_seed(0)
    return pg.EpisodeTrace(
        inputs=torch.rand(steps, inputs, generator=gen),
        targets=(torch.rand(steps, outputs, generator=gen) > 0.5).float() * mask[:, None],
        mask=mask,
        outputs=torch.rand(steps, outputs, generator=gen),
        read_weights=read,
        write_weights=write,
        adds=torch.rand(steps, len(write_rows), m, generator=gen) * 2 - 1,
        erases=torch.rand(steps, len(write_rows), m, generator=gen),
        read_vectors=torch.randn(steps, len(read_rows), m, generator=gen),
        memory=torch.randn(steps + 1, n, m, generator=gen),
    )


# ---------------------------------------------------------------------------------------------
# Rows in use and locations
# ---------------------------------------------------------------------------------------------


def test_rows_in_use_keeps_rows_above_the_threshold_padded_by_the_margin():
    write = one_hot([3, 4, 5, 5], 16)[:, None]  # (T, 1, N)
    read = torch.zeros(4, 1, 16)
    read[:, 0, 10] = read[:, 0, 11] = 0.48
    read[:, 0, 14] = 0.04  # below the threshold
    trace = SimpleNamespace(write_weights=write, read_weights=read)
    assert pg.rows_in_use(trace, margin=0) == [3, 4, 5, 10, 11]
    assert pg.rows_in_use(trace) == [2, 3, 4, 5, 6, 9, 10, 11, 12]
    assert pg.rows_in_use(trace, threshold=0.03, margin=0) == [3, 4, 5, 10, 11, 14]


def test_rows_in_use_wraps_the_margin_and_reads_a_batch_axis():
    write = one_hot([0, 1], 16)[None, :, None]  # (1, T, 1, N)
    read = torch.cat([one_hot([7, 7], 16)[None, :, None], one_hot([0, 0], 16)[None, :, None]])
    trace = SimpleNamespace(write_weights=write.expand(2, -1, -1, -1), read_weights=read)
    assert pg.rows_in_use(trace, index=0) == [0, 1, 2, 6, 7, 8, 15]
    assert pg.rows_in_use(trace, index=1) == [0, 1, 2, 15]
    uniform = torch.full((2, 1, 8), 1 / 8)
    flat = SimpleNamespace(write_weights=uniform, read_weights=uniform)
    assert pg.rows_in_use(flat, threshold=0.2) == list(range(8))


def test_circular_order_starts_after_the_widest_gap():
    assert pg.circular_order([0, 1, 2, 14, 15], 16) == [14, 15, 0, 1, 2]
    assert pg.circular_order([9, 3, 4], 16) == [3, 4, 9]
    assert pg.circular_order([5], 16) == [5]


def test_head_locations_take_the_mean_around_the_peak_on_the_circle():
    w = torch.zeros(2, 1, 16)  # (S, H, N)
    w[0, 0, 15] = w[0, 0, 0] = 0.5  # straddles the wrap: mean 15.5, not 7.5
    w[1, 0, 3] = 1.0
    loc = pg.head_locations(w)
    assert loc.mean[:, 0].tolist() == pytest.approx([15.5, 3.0])
    assert loc.peak[1, 0] == 3
    moved = pg.head_locations(w, origin=10)  # unwrapped into [10, 26)
    assert moved.mean[:, 0].tolist() == pytest.approx([15.5, 19.0])


def test_write_locations_unwrap_a_head_crossing_row_zero():
    trace = make_trace([[14, 15, 0, 1, 2]], [[14, 14, 14, 14, 14]])
    loc = pg.write_locations(trace, range(4))
    assert loc.mean[:, 0].tolist() == pytest.approx([14.0, 15.0, 16.0, 17.0])
    assert loc.peak[:, 0].tolist() == [14, 15, 16, 17]
    assert pg.write_locations(trace, slice(2, 4), origin=0).peak[:, 0].tolist() == [0, 1]
    with pytest.raises(ValueError, match="steps"):
        pg.write_locations(trace, [7])


# ---------------------------------------------------------------------------------------------
# Priority sort analysis
# ---------------------------------------------------------------------------------------------


def test_priority_fit_recovers_an_exact_line_and_its_reverse():
    p = torch.linspace(-1, 1, 9)
    up = pg.priority_fit(p, 3 * p + 7)
    assert tuple(up) == pytest.approx((3.0, 7.0, 1.0, 1.0))
    down = pg.priority_fit(p, -2 * p + 5)
    assert tuple(down) == pytest.approx((-2.0, 5.0, 1.0, -1.0))
    flat = pg.priority_fit(p, torch.full_like(p, 4.0))
    assert flat.slope == pytest.approx(0.0, abs=1e-9) and flat.r2 == 0.0


def test_rank_correlation_sees_order_not_linearity():
    p = torch.tensor([0.3, -0.9, 0.1, 0.8, -0.2])
    assert pg.rank_correlation(p, p**3) == pytest.approx(1.0)
    fit = pg.priority_fit(p, p**3)
    assert fit.spearman == pytest.approx(1.0) and fit.r2 < 1.0
    swapped = pg.rank_correlation(torch.tensor([1.0, 2, 3, 4]), torch.tensor([1.0, 3, 2, 4]))
    assert swapped == pytest.approx(0.8)


def test_read_order_measures_direction_monotonicity_and_speed():
    rows = [[5, 5, 5, 6, 7, 8, 9], [5, 5, 5, 9, 8, 7, 6], [5, 5, 5, 4, 4, 4, 4]]
    trace = make_trace([[5] * 7], rows, answer_from=3)
    order = pg.read_order(trace)
    assert order.locations.shape == (4, 3)
    assert order.direction.tolist() == [1, -1, 1]  # no movement counts as +1
    assert order.monotone.tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert order.speed.tolist() == pytest.approx([1.0, 1.0, 0.0])
    trace.read_weights[6, 0] = 1 / 16  # spread over all rows: mean row 15.5 (around row 0)
    spread = pg.read_order(trace, min_weight=0.1)  # the last move does not count
    assert spread.monotone[0] == pytest.approx(1.0) and spread.speed[0] == pytest.approx(1.0)
    counted = pg.read_order(trace, min_weight=0.01)  # it does: 8 -> 15.5
    assert counted.speed[0] == pytest.approx((1 + 1 + 7.5) / 3)


def test_sort_analysis_of_a_program_that_sorts():
    priorities = torch.tensor([0.5, -0.8, 0.9, 0.1])  # ranks (highest first): 1, 3, 0, 2
    slots = [1, 3, 0, 2]  # write item i to row 10 + its rank
    write = [[10 + s for s in slots] + [13] * 5]
    read = [[10] * 5 + [10, 11, 12, 13]]  # the delimiter, then the answers in rank order
    trace = make_trace(write, read, answer_from=5)
    analysis = pg.sort_analysis(trace, priorities)
    assert analysis.origin == 10
    assert analysis.locations.peak[:, 0].tolist() == [11, 13, 10, 12]
    assert analysis.fits[0].spearman == pytest.approx(-1.0)
    assert analysis.fits[0].slope < 0
    assert analysis.reads.monotone.tolist() == [1.0]


def test_sort_baselines_guessing_is_half_and_the_majority_vote_about_forty_percent():
    result = pg.sort_baselines(n_episodes=300, seed=3)
    assert result["scored_bits"] == 128.0
    assert result["guess_cost_bits"] == pytest.approx(128.0)
    assert result["guess_bit_error_rate"] == pytest.approx(0.5, abs=0.02)
    assert result["guess_bit_errors"] == pytest.approx(64.0, abs=3.0)
    assert 0.3 < result["majority_bit_error_rate"] < 0.45
    assert result["majority_bit_errors"] < result["guess_bit_errors"]
    assert pg.sort_baselines(n_episodes=20, seed=3) == pg.sort_baselines(n_episodes=20, seed=3)


# ---------------------------------------------------------------------------------------------
# A real forward pass
# ---------------------------------------------------------------------------------------------


def test_episode_trace_keeps_one_episode_of_a_tiny_ntm():
    torch.manual_seed(0)
    model = NTM(NTMConfig.preset("tiny"))
    model.train()
    batch = get_task("copy").sample(2, torch.Generator().manual_seed(1), length=3)
    trace = pg.episode_trace(model, batch, index=1)
    steps = batch.inputs.shape[1]
    assert model.training
    assert trace.inputs.shape == (steps, 9) and trace.outputs.shape == (steps, 8)
    assert trace.read_weights.shape == trace.write_weights.shape == (steps, 1, 16)
    assert trace.adds.shape == trace.erases.shape == (steps, 1, 8)
    assert trace.memory.shape == (steps + 1, 16, 8) and trace.final_memory.shape == (16, 8)
    assert trace.answer_steps() == batch.mask[1].nonzero().flatten().tolist()
    assert torch.equal(trace.targets, batch.targets[1])
    assert ((trace.outputs > 0) & (trace.outputs < 1)).all()
    with torch.no_grad():
        logits, full = model.eval()(batch.inputs[1:], return_trace=True)
    torch.testing.assert_close(trace.adds, full.heads.add[0])
    torch.testing.assert_close(trace.outputs, torch.sigmoid(logits[0]))
    assert pg.rows_in_use(trace) == pg.rows_in_use(full)
    # wrong bits: only at scored steps, and as many as the task metric counts
    assert not trace.wrong_bits()[~trace.mask.bool()].any()
    assert trace.bit_errors() == int(sequence_bit_errors(logits, batch.targets[1:], batch.mask[1:]))


def test_episode_trace_refuses_a_model_without_memory():
    model = LSTMBaseline(LSTMConfig(input_size=9, output_size=8, hidden_size=4, num_layers=1))
    batch = get_task("copy").sample(1, torch.Generator().manual_seed(1), length=2)
    with pytest.raises(ValueError, match="needs an NTM"):
        pg.episode_trace(model, batch)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------


def axes_by_title(fig):
    return {ax.get_title(): ax for ax in fig.axes if ax.get_title()}


def test_program_figure_crops_the_weightings_to_the_rows_in_use():
    # two write heads, one read head; rows 14, 15, 0, 1 and 6 touched (N = 16)
    trace = make_trace([[14, 15, 0, 1, 1, 1], [14, 14, 14, 14, 14, 14]], [[15, 15, 15, 14, 15, 0]],
                       answer_from=4)
    fig = viz.program_figure(trace, margin=0)
    axes = axes_by_title(fig)
    main = ["inputs", "targets", "adds $\\mathbf{a}_t$", "reads $\\mathbf{r}_t$",
            "memory at the end",
            "write weightings (4 of 16 rows)", "read weightings (4 of 16 rows)",
            "outputs $\\sigma(z_t)$ (wrong bits marked)"]
    assert sorted(axes) == sorted(main)
    assert len(fig.axes) == 2 * len(main)  # one colour bar per heat map
    assert all(axes[name].images[0].colorbar is not None for name in main)
    write = axes["write weightings (4 of 16 rows)"]
    assert write.images[0].get_array().shape == (8, 6)  # 2 heads x 4 rows, 6 steps
    assert [t.get_text() for t in write.get_yticklabels()][:4] == ["14", "15", "0", "1"]
    assert axes["read weightings (4 of 16 rows)"].images[0].get_array().shape == (4, 6)
    assert axes["adds $\\mathbf{a}_t$"].images[0].get_array().shape == (8, 6)  # 2 heads x M = 4
    assert axes["memory at the end"].images[0].get_array().shape == (4, 4)
    assert write.get_xlim() == pytest.approx((-0.5, 5.5))


def test_program_figure_options_and_errors():
    trace = make_trace([[2, 3, 4, 9]], [[2, 2, 3, 9]], answer_from=2)
    fig = viz.program_figure(trace, rows=[2, 3, 4], memory=False)
    axes = axes_by_title(fig)
    assert "memory at the end" not in axes and len(fig.axes) == 14
    assert axes["write weightings (3 of 16 rows)"].images[0].get_array().shape == (3, 4)
    gapped = axes_by_title(viz.program_figure(trace, margin=0))["write weightings (4 of 16 rows)"]
    assert any(line.get_linestyle() == ":" for line in gapped.lines)  # rows 4 and 9 are apart
    with pytest.raises(ValueError, match="rows"):
        viz.program_figure(trace, rows=[20])
    with pytest.raises(ValueError, match="write heads"):
        viz.program_figure(trace, write_heads=[1])
    with pytest.raises(ValueError, match="EpisodeTrace"):
        viz.program_figure(SimpleNamespace())


def test_sort_program_figure_draws_the_fit_and_the_answer_reads():
    priorities = torch.tensor([0.5, -0.8, 0.9, 0.1])
    write = [[11, 13, 10, 12] + [13] * 5, [5, 5, 5, 5] + [5] * 5]
    read = [[10] * 5 + [10, 11, 12, 13], [10] * 5 + [13, 12, 11, 10]]
    trace = make_trace(write, read, answer_from=5)
    analysis = pg.sort_analysis(trace, priorities)
    fig = viz.sort_program_figure(trace, analysis, write_heads=[0], margin=0)
    scatter, image = fig.axes[0], fig.axes[1]
    assert len(fig.axes) == 3  # two panels and a colour bar
    assert "$\\rho$ = -1.00" in scatter.get_title() and "$R^2$ = 0.95" in scatter.get_title()
    assert len(scatter.collections) == 1 and len(scatter.lines) == 1
    # 2 read heads x 5 rows (5, 10-13), 4 answer steps
    assert image.images[0].get_array().shape == (2 * 5, 4)
    assert image.images[0].colorbar is not None
    both = viz.sort_program_figure(trace, analysis)
    assert len(both.axes[0].collections) == 2
    with pytest.raises(ValueError, match="SortAnalysis"):
        viz.sort_program_figure(trace, None)


def test_sort_statistics_pools_write_rows_against_priorities():
    from neural_memory.experiments.programs import sort_statistics
    from neural_memory.ntm import NTM, NTMConfig

    torch.manual_seed(0)
    model = NTM(NTMConfig.preset("tiny", input_size=10, output_size=8, read_heads=2, write_heads=3))
    stats = sort_statistics(model, episodes=6, seed=1, length=5, outputs=3)
    assert len(stats.fits) == 3 and 0 <= stats.best < 3
    assert all(-1.0 <= f.spearman <= 1.0 and f.r2 <= 1.0 for f in stats.fits)
    assert abs(stats.fits[stats.best].spearman) == max(abs(f.spearman) for f in stats.fits)
    assert stats.read_monotone.shape == (2,) and bool(((stats.read_monotone >= 0) & (stats.read_monotone <= 1)).all())
    assert model.training  # the mode is put back
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        sort_statistics(model, episodes=0)
