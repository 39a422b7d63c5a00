"""The training-tricks ablation: variants, one tiny run, and the stored results."""

from __future__ import annotations

import dataclasses
import json

import matplotlib
import pytest
import torch

from neural_memory.experiments import ablation
from neural_memory.ntm import NTM
from neural_memory.training import LOG_COLUMNS

matplotlib.use("Agg")



def test_variants_build_valid_configs_and_change_one_thing():
    names = ablation.variant_names()
    assert names[0] == "baseline" and len(set(names)) == len(names)
    base_model = dataclasses.asdict(ablation.BASE_MODEL)
    base_recipe = dataclasses.asdict(ablation.BASE_RECIPE)
    for v in ablation.VARIANTS:
        model, recipe = v.model_config(), v.train_config()
        NTM(model)  # builds
        changed = [k for k, x in dataclasses.asdict(model).items() if base_model[k] != x]
        changed += [k for k, x in dataclasses.asdict(recipe).items() if base_recipe[k] != x]
        if v.name == "baseline":
            assert changed == []
        elif v.name == "all_off":
            assert len(changed) == 7
        else:
            assert len(changed) == 1, (v.name, changed)


def test_unknown_variant_and_bad_seed_raise():
    with pytest.raises(ValueError, match="unknown ablation variant"):
        ablation.run_one("no_such_trick", 0)
    with pytest.raises(ValueError, match="seed"):
        ablation.run_one("baseline", -1)


def test_tiny_run_writes_a_loadable_log(tmp_path):
    torch.set_num_threads(1)
    summary = ablation.run_all([0], 32, tmp_path, "test", variants=["baseline", "no_grad_clip"])
    assert set(summary["runs"]) == {"baseline-seed0", "no_grad_clip-seed0"}
    loaded, curves = ablation.load_results(tmp_path)
    assert loaded["budget_sequences"] == 32
    rows = curves["baseline-seed0"]
    assert [r["sequences"] for r in rows] == [32.0]
    # The same run again, in memory, reproduces the stored row exactly.
    again = ablation.run_one("baseline", 0, sequences=32)
    assert again["rows"][0][:3] == [rows[0][c] for c in LOG_COLUMNS[:3]]
    # A second call skips finished runs; a different budget in the same folder is refused.
    assert ablation.run_all([0], 32, tmp_path, "test", variants=["baseline"])["runs"] == summary["runs"]
    with pytest.raises(ValueError, match="budget"):
        ablation.run_all([0], 64, tmp_path, "test", variants=["baseline"])
    with pytest.raises(FileNotFoundError):
        ablation.load_results(tmp_path / "missing")


def test_stored_results_schema():
    summary, curves = ablation.load_results()
    for key in ("command", "code_version", "recipe", "budget_sequences", "seeds", "machine", "runs"):
        assert key in summary
    budget = summary["budget_sequences"]
    assert summary["recipe"]["sequences"] == budget
    for key, run in summary["runs"].items():
        assert key == f"{run['variant']}-seed{run['seed']}"
        assert run["variant"] in ablation.variant_names()
        assert run["converged"] == (run["eval_bit_errors"] < summary["converged_below"])
        rows = curves[key]
        assert rows and rows[-1]["sequences"] == run["sequences"]
        if not run["diverged"]:
            assert run["sequences"] == budget
    table = ablation.summarise(summary)
    assert table[0]["variant"] == "baseline" and table[0]["seeds"] >= 3
    assert all(0.0 <= row["converged"] <= 1.0 for row in table)


def test_plots_draw_the_stored_results():
    from neural_memory.viz.ablation import ablation_bars, ablation_curves

    summary, curves = ablation.load_results()
    axes = ablation_curves(summary, curves)
    assert axes[0, 0].get_lines()
    ax = ablation_bars(summary)
    assert len(ax.get_yticks()) == len(ablation.summarise(summary))
    with pytest.raises(ValueError, match="no stored runs"):
        ablation_bars(summary, variants=["not_a_variant"])
    matplotlib.pyplot.close("all")


def test_summary_json_is_plain_json():
    text = (ablation.STORED / "summary.json").read_text()
    assert isinstance(json.loads(text)["runs"], dict)
