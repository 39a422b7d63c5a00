"""The NTM block diagram: a figure with a labelled box for every part and arrows between them."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

from neural_memory.viz.diagram import STAGES, ntm_diagram  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def box_labels(fig: Figure) -> list[str]:
    """The labels of the boxes: texts tagged ``box:<label>``, in drawing order."""
    return [t.get_text() for ax in fig.axes for t in ax.texts if (t.get_gid() or "").startswith("box:")]


def test_ntm_diagram_returns_a_figure():
    fig = ntm_diagram()
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1 and not fig.axes[0].axison


def test_every_part_of_the_machine_has_a_labelled_box():
    labels = box_labels(ntm_diagram())
    for part in ("input", "controller", "read head", "write head", "memory", "output"):
        assert labels.count(part) == 1, part
    # each head holds the four addressing stages, in order
    stages = [name for name, _ in STAGES]
    assert stages == ["content", "interpolation", "shift", "sharpening"]
    assert [label for label in labels if label in stages] == stages * 2
    boxes = [p for p in ntm_diagram().axes[0].patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == len(labels) == 6 + 2 * len(stages)


def test_arrows_carry_the_data_flow():
    fig = ntm_diagram()
    ax = fig.axes[0]
    arrows = [p for p in ax.patches if isinstance(p, FancyArrowPatch)]
    # input -> controller, controller -> each head and the output, 3 arrows inside each head,
    # each head -> memory, memory -> output and back to the controller
    assert len(arrows) == 1 + 3 + 2 * (len(STAGES) - 1) + 2 + 2
    texts = " ".join(t.get_text() for t in ax.texts)
    for symbol in (r"\mathbf{h}_t", r"\mathbf{r}_t", r"\mathbf{x}_t", r"\mathbf{y}_t", "Mealy"):
        assert symbol in texts, symbol
