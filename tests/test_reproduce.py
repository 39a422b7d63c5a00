"""tools/reproduce.py: every shipped model trained again from its manifest, then checked."""

import pytest
import torch

from neural_memory.checkpoint import load_checkpoint
from neural_memory.train import main as train_main
from tools import reproduce


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A folder of two exported tiny models, as the package ships its models."""
    root = tmp_path_factory.mktemp("ship")
    for task, model in (("copy", "ntm"), ("repeat_copy", "lstm")):
        assert train_main(["--task", task, "--model", model, "--preset", "tiny", "--no-progress",
                           "--sequences", "16", "--out", str(root / "runs" / model),
                           "--export", str(root / "ship")]) == 0
    return root / "ship"


@pytest.mark.parametrize("workers", [0, 1])
def test_reproduce_retrains_each_model_to_the_shipped_weights(shipped, tmp_path, capsys, workers):
    assert reproduce.main(["--directory", str(shipped), "--out", str(tmp_path), "--workers",
                           str(workers), "--episodes", "8"]) == 0
    out = capsys.readouterr().out
    for name in ("copy-ntm", "repeat_copy-lstm"):
        a = load_checkpoint(shipped / f"{name}.pt").model.state_dict()
        b = load_checkpoint(tmp_path / name / f"{name}.pt").model.state_dict()
        assert all(torch.equal(a[k], b[k].half().float()) for k in a)
    # the copy NTM has two criteria, the repeat-copy LSTM one; a tiny model meets none
    assert out.count("copy-ntm") == 2 and out.count("repeat_copy-lstm") == 1
    assert "length 40 bit_error_rate" in out and out.count(" NO") == 3
    assert "every NTM trained after" in out and "every LSTM trained after" in out
    # every row ends with the "as shipped" column: the retrained weights are the shipped ones
    rows = [line for line in out.splitlines() if line.lstrip().startswith(("copy-ntm", "repeat_copy-lstm"))]
    assert len(rows) == 3 and all(line.endswith("yes") for line in rows)
    # --table prints the same table again from the runs' folders, training nothing
    assert reproduce.main(["--directory", str(shipped), "--out", str(tmp_path), "--table",
                           "--episodes", "8"]) == 0
    again = capsys.readouterr().out
    assert "trained after" not in again
    assert again.splitlines() == out.splitlines()[-4:]


def test_reproduce_check_only_and_unknown_names(shipped, capsys):
    assert reproduce.main(["--directory", str(shipped), "--check-only", "--only", "copy-ntm",
                           "--episodes", "4"]) == 0
    assert "length 20 bit_errors" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no run copy-ntm in"):
        reproduce.main(["--directory", str(shipped), "--out", str(shipped), "--table",
                        "--only", "copy-ntm"])
    with pytest.raises(SystemExit, match="no shipped model named copy-dnc"):
        reproduce.main(["--directory", str(shipped), "--check-only", "--only", "copy-dnc"])
