"""The LSTM baseline: shapes, presets, parameter counts and errors."""

import pytest
import torch

from neural_memory.baselines import LSTMBaseline, LSTMConfig, count_parameters


def test_forward_shape_and_trace_is_none():
    model = LSTMBaseline(LSTMConfig.preset("tiny"))
    x = torch.zeros(2, 7, 9)
    assert model(x).shape == (2, 7, 8)
    logits, trace = model(x, return_trace=True)
    assert logits.shape == (2, 7, 8) and trace is None


def test_paper_presets_match_table_3_sizes():
    sizes = {n: (c.num_layers, c.hidden_size) for n in ("copy", "repeat_copy", "associative_recall", "priority_sort") for c in [LSTMConfig.preset(n)]}
    assert sizes == {
        "copy": (3, 256),
        "repeat_copy": (3, 512),
        "associative_recall": (3, 256),
        "priority_sort": (3, 128),
    }


def test_parameter_counts_follow_the_lstm_formula():
    # nn.LSTM layer: 4C(I + C) weights + 8C biases; read-out: C*O + O
    c = LSTMConfig.preset("copy")
    expected = 4 * 256 * (9 + 256) + 8 * 256 + 2 * (4 * 256 * 512 + 8 * 256) + 256 * 8 + 8
    assert count_parameters(LSTMBaseline(c)) == expected == 1_328_136
    small = count_parameters(LSTMBaseline(LSTMConfig.preset("small")))
    assert small * 2 < 1_000_000  # shipped in float16: under 1 MB each


def test_preset_overrides_and_unknown_names():
    c = LSTMConfig.preset("small", input_size=10, output_size=9)
    assert (c.input_size, c.output_size, c.hidden_size) == (10, 9, 128)
    with pytest.raises(ValueError, match="unknown LSTM preset 'huge'"):
        LSTMConfig.preset("huge")
    with pytest.raises(ValueError, match="hidden_size must be a positive integer"):
        LSTMConfig(hidden_size=0)


def test_wrong_input_width_is_a_clear_error():
    model = LSTMBaseline(LSTMConfig.preset("tiny"))
    with pytest.raises(ValueError, match=r"\(B, T, 9\), got \(2, 7, 10\)"):
        model(torch.zeros(2, 7, 10))


def test_outputs_depend_only_on_the_past():
    torch.manual_seed(0)
    model = LSTMBaseline(LSTMConfig.preset("tiny"))
    x = torch.randn(1, 6, 9)
    y = x.clone()
    y[:, 4:] += 1.0
    torch.testing.assert_close(model(x)[:, :4], model(y)[:, :4])
    assert not torch.allclose(model(x)[:, 4:], model(y)[:, 4:])
