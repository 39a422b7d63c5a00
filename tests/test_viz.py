import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from neural_memory.viz import bar_weights  # noqa: E402


def test_bar_weights_draws_one_bar_per_row():
    ax = bar_weights(torch.tensor([0.1, 0.2, 0.7]), title="w")
    assert len(ax.patches) == 3
    assert [p.get_height() for p in ax.patches] == pytest.approx([0.1, 0.2, 0.7])
    assert ax.get_title() == "w"


def test_bar_weights_rejects_a_matrix():
    with pytest.raises(ValueError, match=r"shape \(N,\).*\(2, 2\)"):
        bar_weights(torch.ones(2, 2))
