"""Checkpoints: round trip, manifest contents, sha256 and config checks, atomic files, export."""

import json

import pytest
import torch

import neural_memory
from neural_memory.baselines import LSTMBaseline, LSTMConfig
from neural_memory.checkpoint import (
    CheckpointError,
    atomic_write_text,
    export_checkpoint,
    load_checkpoint,
    manifest_path,
    read_csv,
    save_checkpoint,
    sha256_file,
    write_csv,
)


def _save(tmp_path, **kw):
    torch.manual_seed(0)
    config = LSTMConfig.preset("tiny")
    model = LSTMBaseline(config)
    path = tmp_path / "copy-lstm.pt"
    args = dict(task="copy", model_kind="lstm", seed=3, sequences_seen=40, metrics={"cost_bits": 1.5},
                command="python -m neural_memory.train --task copy")
    args.update(kw)
    save_checkpoint(path, model, config, **args)
    return path, model, config


def test_round_trip_rebuilds_the_same_model_and_manifest(tmp_path):
    path, model, config = _save(tmp_path)
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["sha256"] == sha256_file(path)
    assert manifest["config"] == {"input_size": 9, "output_size": 8, "hidden_size": 16, "num_layers": 1}
    assert (manifest["task"], manifest["model_kind"], manifest["seed"]) == ("copy", "lstm", 3)
    assert manifest["sequences_seen"] == 40 and manifest["metrics"] == {"cost_bits": 1.5}
    assert manifest["package_version"] == neural_memory.__version__
    assert manifest["command"].startswith("python -m neural_memory.train")
    ckpt = load_checkpoint(path, expected_config=config, task="copy", model_kind="lstm")
    assert ckpt.config == config and not ckpt.model.training
    x = torch.randn(2, 5, 9)
    torch.testing.assert_close(ckpt.model(x), model(x), rtol=0, atol=0)
    assert set(tmp_path.iterdir()) == {path, manifest_path(path)}  # no temporary files left


def test_corrupt_and_truncated_files_name_the_file(tmp_path):
    path, _, _ = _save(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"copy-lstm\.pt is corrupt or truncated"):
        load_checkpoint(path)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)


def test_missing_files_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")
    path, _, _ = _save(tmp_path)
    manifest_path(path).unlink()
    with pytest.raises(CheckpointError, match="no manifest"):
        load_checkpoint(path)


def test_config_mismatch_lists_the_differing_fields(tmp_path):
    path, _, config = _save(tmp_path)
    other = LSTMConfig.preset("tiny", hidden_size=32, num_layers=2)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path, expected_config=other)
    message = str(info.value)
    assert "hidden_size: checkpoint=16, expected=32" in message
    assert "num_layers: checkpoint=1, expected=2" in message
    assert "input_size" not in message


def test_task_and_kind_mismatch(tmp_path):
    path, _, _ = _save(tmp_path)
    with pytest.raises(CheckpointError, match="task='copy', expected 'priority_sort'"):
        load_checkpoint(path, task="priority_sort")
    with pytest.raises(CheckpointError, match="model_kind='lstm', expected 'ntm'"):
        load_checkpoint(path, model_kind="ntm")


def test_resume_state_is_kept(tmp_path):
    g = torch.Generator().manual_seed(5)
    path, model, _ = _save(
        tmp_path,
        optimizer_state={"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]},
        rng_state={"data": g.get_state(), "torch": torch.get_rng_state()},
        train_state={"step": 7},
    )
    ckpt = load_checkpoint(path)
    assert ckpt.state["train_state"] == {"step": 7}
    assert torch.equal(ckpt.state["rng"]["data"], g.get_state())
    assert ckpt.manifest["resumable"] is True


def test_export_stores_half_precision_weights_only(tmp_path):
    path, model, config = _save(tmp_path, optimizer_state={"state": {}, "param_groups": []})
    shipped = tmp_path / "ship" / "copy-lstm.pt"
    export_checkpoint(path, shipped, metrics={"cost_bits": 2.0})
    manifest = json.loads(manifest_path(shipped).read_text())
    assert manifest["weights_dtype"] == "float16" and manifest["resumable"] is False
    assert manifest["metrics"] == {"cost_bits": 2.0}
    assert shipped.stat().st_size < path.stat().st_size
    ckpt = load_checkpoint(shipped, expected_config=config)
    assert ckpt.state == {}
    for name, value in model.state_dict().items():
        torch.testing.assert_close(ckpt.model.state_dict()[name], value.half().float(), rtol=0, atol=0)


def test_atomic_writes_leave_no_temporary_files(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "one")
    atomic_write_text(tmp_path / "a.txt", "two")
    write_csv(tmp_path / "log.csv", ["x", "y"], [[1, 2.5], [2, 3.5]])
    assert (tmp_path / "a.txt").read_text() == "two"
    assert read_csv(tmp_path / "log.csv") == [{"x": "1", "y": "2.5"}, {"x": "2", "y": "3.5"}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "log.csv"]
