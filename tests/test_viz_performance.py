"""The appendix's stored benchmark results load as the appendix reads them, and each figure
draws what it says."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

import neural_memory  # noqa: E402
from neural_memory.experiments import performance as perf  # noqa: E402
from neural_memory.viz import performance as viz  # noqa: E402

REPO_RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def forty():
    return perf.load_seeds(perf.FORTY_SEEDS)


@pytest.fixture(scope="module")
def unbounded():
    return perf.load_seeds(perf.UNBOUNDED)


# ------------------------------------------------------------------------------------ loaders


def test_the_results_ship_inside_the_package():
    package = Path(neural_memory.__file__).resolve().parent
    assert package in perf.STORED.resolve().parents
    for name in (perf.THROUGHPUT, perf.GPU_THROUGHPUT, perf.FORTY_SEEDS, *perf.UNBOUNDED, *perf.HOLD):
        assert (perf.STORED / name).is_file(), name


@pytest.mark.skipif(not REPO_RESULTS.is_dir(), reason="outside the repository checkout")
def test_the_shipped_files_are_copies_of_the_benchmark_results():
    for path in sorted(perf.STORED.glob("*.json")):
        assert path.read_bytes() == (REPO_RESULTS / path.name).read_bytes(), path.name


def test_load_names_the_files_it_has_when_one_is_missing(tmp_path):
    assert perf.load(perf.THROUGHPUT.removesuffix(".json")) == perf.load(perf.THROUGHPUT)
    with pytest.raises(FileNotFoundError, match="cpu-throughput-fused-v3.json"):
        perf.load("no-such-file")
    (tmp_path / "mine.json").write_text(json.dumps({"a": 1}))
    assert perf.load("mine", folder=tmp_path) == {"a": 1}


def test_the_forty_seeds_summary_matches_the_stored_one(forty):
    stored = perf.load(perf.FORTY_SEEDS)["convergence"]["summary"]
    assert [s["seed"] for s in forty] == list(range(40))
    summary = perf.convergence_summary(forty)
    assert summary["converged"] == 40 and summary["relapsed"] == 0
    assert summary["sequences_to_converge"]["median"] == stored["median_sequences"]
    assert summary["sequences_to_converge"]["max"] == stored["worst_sequences"]
    assert summary["seconds_to_converge"]["median"] == stored["median_seconds"]
    assert summary["seconds_to_converge"]["max"] == stored["worst_seconds"]
    assert summary["within_targets"] == 30


def test_the_unbounded_runs_are_one_run_of_seeds_0_to_19(unbounded):
    assert [s["seed"] for s in unbounded] == list(range(20))
    assert perf.convergence_summary(unbounded)["relapsed"] == 8


def test_load_seeds_refuses_files_of_different_runs_or_repeated_seeds():
    with pytest.raises(ValueError, match="not one run"):
        perf.load_seeds([perf.UNBOUNDED[0], perf.FORTY_SEEDS])
    with pytest.raises(ValueError, match="appears twice"):
        perf.load_seeds([perf.UNBOUNDED[0], perf.UNBOUNDED[0]])
    with pytest.raises(ValueError, match="no convergence results"):
        perf.load_seeds(perf.THROUGHPUT)


def test_within_targets_is_part_iii_s_copy_targets():
    seed = {"eval_length_20": {"bit_errors": 0.05}, "eval_length_40": {"bit_error_rate": 0.01}}
    assert perf.within_targets(seed)
    assert not perf.within_targets({**seed, "eval_length_20": {"bit_errors": 0.051}})
    assert not perf.within_targets({**seed, "eval_length_40": {"bit_error_rate": 0.011}})


def test_throughput_rows_of_repeated_and_single_measurements():
    cpu = perf.throughput_rows(perf.load(perf.THROUGHPUT))
    assert [(r["batch"], r["mode"]) for r in cpu] == [
        (b, m) for b in (1, 8, 32, 128) for m in ("eager", "fused")]
    fused32 = next(r for r in cpu if r["batch"] == 32 and r["mode"] == "fused")
    assert fused32["repeats"] == 5 and fused32["vs_plain"] == 4.45
    assert fused32["train"]["min"] <= fused32["train"]["median"] <= fused32["train"]["max"]
    gpu = perf.throughput_rows(perf.load(perf.GPU_THROUGHPUT))
    assert {r["mode"] for r in gpu} == {"eager", "compiled"}
    assert all(r["repeats"] == 1 and r["train"]["min"] == r["train"]["max"] for r in gpu)


def test_hold_margins_one_row_per_seed_and_moment():
    rows = perf.hold_margins()
    assert len(rows) == 2 * 8
    assert {(r["seed"], r["gamma_max"]) for r in rows} == {
        (0, None), (8, None), (1, None), (5, None), (6, None), (7, None), (0, 2.5), (8, 2.5)}
    assert all(r["q01"] <= r["q05"] <= r["q50"] for r in rows)
    seed0 = {(r["gamma_max"], r["moment"]): r["q01"] for r in rows if r["seed"] == 0}
    assert seed0 == {(None, "drop"): -0.029, (None, "end"): -0.005,
                     (2.5, "drop"): 0.015, (2.5, "end"): 0.195}


def test_tables_have_one_line_per_row(forty):
    cpu = perf.throughput_rows(perf.load(perf.THROUGHPUT))
    assert len(perf.throughput_table(cpu).splitlines()) == 1 + len(cpu)
    table = perf.convergence_table({"a": perf.convergence_summary(forty)})
    assert len(table.splitlines()) == 3 and "30 of 40" in table
    assert len(perf.hold_table(perf.hold_margins()).splitlines()) == 1 + 16


# ------------------------------------------------------------------------------------ figures


def test_throughput_figure_draws_each_path_with_its_range():
    cpu = perf.throughput_rows(perf.load(perf.THROUGHPUT))
    gpu = perf.throughput_rows(perf.load(perf.GPU_THROUGHPUT))
    fig = viz.throughput_figure(cpu, gpu)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    for ax, kind in zip(fig.axes, ("train", "eval"), strict=True):
        assert len(ax.containers) == 4  # CPU plain, CPU fused, GPU plain, GPU compiled
        fused = ax.containers[1].lines[0]
        assert list(fused.get_xdata()) == [1, 8, 32, 128]
        assert list(fused.get_ydata()) == [r[kind]["median"] for r in cpu if r["mode"] == "fused"]
        assert ax.get_xscale() == ax.get_yscale() == "log"
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels == ["CPU core, plain path", "CPU core, fused unroll", "GPU, plain path",
                      "GPU, compiled step"]
    assert len(viz.throughput_figure(cpu).axes[0].containers) == 2
    with pytest.raises(ValueError, match="CPU row"):
        viz.throughput_figure([])


def test_convergence_figure_draws_every_seed(forty):
    fig = viz.convergence_figure(forty, perf.within_targets)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    left, right = fig.axes
    curves = [line for line in left.lines if len(line.get_xdata()) > 2]
    assert len(curves) == 40
    assert {tuple(line.get_ydata()) for line in left.lines if len(line.get_xdata()) == 2} == {
        (1.0, 1.0), (0.1, 0.1)}  # the relapse and convergence thresholds
    within, missed = right.collections
    assert len(within.get_offsets()) == 30 and len(missed.get_offsets()) == 10
    assert len(viz.convergence_figure(forty).axes[1].collections) == 1
    with pytest.raises(ValueError, match="converged"):
        viz.convergence_figure([{**forty[0], "converged": False}])


def test_relapse_figure_compares_the_same_seeds(forty, unbounded):
    fig = viz.relapse_figure(unbounded, forty, seed=0)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    left, right = fig.axes
    free, bounded = left.collections
    assert len(free.get_offsets()) == len(bounded.get_offsets()) == 20  # seeds 0-19 only
    assert [t.get_text() for t in left.get_legend().get_texts()] == [
        "unbounded γ: 8 of 20 relapse", "γ ≤ 2: 0 of 20 relapse"]
    curves = [line for line in right.lines if len(line.get_xdata()) > 2]
    assert [len(c.get_xdata()) for c in curves] == [len(unbounded[0]["curve"]), len(forty[0]["curve"])]
    with pytest.raises(ValueError, match="seed 25"):
        viz.relapse_figure(unbounded, forty, seed=25)


def test_hold_weight_is_shift_then_sharpen():
    margin = torch.tensor([-1.0, -0.3, 0.0, 0.3, 1.0], dtype=torch.float64)
    torch.testing.assert_close(viz.hold_weight(margin, 1.0), (1 + margin) / 2)
    stay, move = (1 + margin) / 2, (1 - margin) / 2
    torch.testing.assert_close(viz.hold_weight(margin, 7.0), stay**7 / (stay**7 + move**7))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        viz.hold_weight(torch.tensor([1.5]), 2.0)


def test_sharpening_figure_one_line_per_exponent():
    fig = viz.sharpening_figure(gammas=(1.0, 2.0, 7.0))
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["γ = 1", "γ = 2", "γ = 7"]
    assert len(ax.lines) == 3 + 1  # and the line at a margin of 0


def test_hold_margin_figure_draws_the_seeds_and_the_pairs():
    fig = viz.hold_margin_figure(perf.hold_margins(), pair_seeds=(0, 8), bound=2.5)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    left, middle, right = fig.axes
    assert [t.get_text() for t in left.get_xticklabels()] == ["8", "0", "1", "6", "7", "5"]
    pairs = middle.lines[:4]  # then the line at a margin of 0
    assert len(middle.lines) == 5
    assert [tuple(p.get_ydata()) for p in pairs][:2] == [(-0.029, -0.005), (0.015, 0.195)]
    assert [tuple(p.get_ydata()) for p in right.lines][:2] == [(17, 15), (11, 3)]
    with pytest.raises(ValueError, match="seed 3"):
        viz.hold_margin_figure(perf.hold_margins(), pair_seeds=(3,))
