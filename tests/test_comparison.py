"""The Part III chapters' steps as library calls: NTM against the LSTM on one task."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from neural_memory.checkpoint import SHIPPED_DIR  # noqa: E402
from neural_memory.experiments.comparison import (  # noqa: E402
    CRITERIA,
    check_criteria,
    curve_paths,
    describe_models,
    generalisation,
    generalisation_table,
    load_models,
    model_size,
    tiny_live_run,
    training_command,
)
from neural_memory.training import evaluate_model  # noqa: E402
from neural_memory.viz.tasks import sweep_plot  # noqa: E402


def test_the_live_run_trains_the_tiny_ntm_and_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    live = tiny_live_run("copy", sequences=64)
    assert [int(r[0]) for r in live.rows] == [32, 64]
    assert live.metrics["eval_sequences"] == 32 and not live.checkpoint.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_shipped_pair_its_description_curves_and_generalisation():
    models = load_models("copy")
    assert list(models) == ["NTM", "LSTM"]
    text = describe_models(models).splitlines()
    assert text[0].startswith("NTM: controller 100, 1 read + 1 write head, ") and "training sequences" in text[0]
    assert "(paper: controller 100, 1 head, 67,561)" in text[0] and "(paper: 3 x 256, 1,352,969)" in text[2]
    assert text[1].strip().startswith("python -m neural_memory.train --task copy --model ntm")
    assert curve_paths("copy") == {"NTM": SHIPPED_DIR / "copy-ntm.csv", "LSTM": SHIPPED_DIR / "copy-lstm.csv"}
    assert curve_paths("copy", retrain=True)["LSTM"].as_posix() == "runs/copy-lstm/copy-lstm.csv"
    sweep = generalisation(models, "copy", "length", [5, 30], sequences=4)
    import torch

    from neural_memory.tasks import get_task

    direct = evaluate_model(models["LSTM"].model, get_task("copy"), 4,
                            torch.Generator().manual_seed(7), length=30)
    assert sweep["LSTM"][1] == {"length": 30, **direct}  # the same fresh sequences for each model
    table = generalisation_table(sweep, "length").splitlines()
    assert table[0].split() == ["length", "NTM", "errors", "NTM", "BER", "LSTM", "errors", "LSTM", "BER"]
    assert [line.split()[0] for line in table[1:]] == ["5", "30"]
    assert float(table[2].split()[3]) == pytest.approx(direct["bit_errors"], abs=5e-4)
    ax = sweep_plot(sweep, "length", training_range=(1, 20))
    assert [list(line.get_xdata()) for line in ax.lines] == [[5, 30], [5, 30]]
    plt.close("all")


def test_training_command_keeps_what_trains_and_drops_where_files_went():
    manifest = {"command": "python -m neural_memory.train --task copy --model ntm --out runs/a b "
                           "--no-progress --seed 1 --export 'dir x' --fused --checkpoint-every 5 --resume"}
    assert training_command(manifest) == "python -m neural_memory.train --task copy --model ntm b --seed 1 --fused"
    assert training_command({}) == ""


def test_training_differences_name_what_was_trained_differently():
    from neural_memory.experiments.comparison import TRAINING_FIELDS, training_differences
    from neural_memory.training import TrainConfig

    base = {"seed": 1, "sequences_seen": 100, "train_config": dict.fromkeys(TRAINING_FIELDS, 0) | {"log_every": 5}}
    other = {**base, "train_config": {**base["train_config"], "log_every": 7}}
    assert training_differences(base, other) == []  # how often a run logged does not count
    other = {**base, "seed": 2, "train_config": {**base["train_config"], "lr": 1e-3}}
    assert training_differences(base, other) == ["seed", "lr"]
    assert training_differences(base, {"seed": 1, "sequences_seen": 100}) == [
        k for k in TRAINING_FIELDS if getattr(TrainConfig(), k) != 0]  # missing fields: the defaults


def test_criteria_measure_the_shipped_copy_ntm():
    assert {c.task for c in CRITERIA} == {"copy", "repeat_copy", "associative_recall", "priority_sort",
                                          "multi_copy"}
    rows = check_criteria(load_models("copy")["NTM"].model, "copy", episodes=16)
    assert [r["label"] for r in rows] == ["length 20", "length 40"]
    assert all(r["met"] and r["value"] <= r["at_most"] for r in rows)
    lstm = check_criteria(load_models("copy")["LSTM"].model, "copy", episodes=16)
    assert not lstm[1]["met"] and lstm[1]["value"] > 0.01


def test_model_size_names_each_kind_in_its_own_terms():
    from neural_memory.training import load_or_train

    sizes = {kind: model_size(load_or_train("copy", kind, progress=False)) for kind in ("ntm", "lstm", "dnc")}
    assert sizes == {"ntm": "controller 100, 1 read + 1 write head", "lstm": "3 x 256",
                     "dnc": "controller 100, 2 read heads, memory 128 x 20"}
