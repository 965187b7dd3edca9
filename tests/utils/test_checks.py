import numpy as np
import pytest
import torch

from caltrain.utils import checks


def test_as_tensor_accepts_numpy_without_copy():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = checks.as_tensor(a, "x")
    assert t.shape == (2, 3) and t.dtype == torch.float32
    a[0, 0] = 42
    assert t[0, 0] == 42  # shares memory


def test_as_tensor_rejects_object_arrays():
    with pytest.raises(TypeError, match="x: expected a numeric array"):
        checks.as_tensor(np.array([object()]), "x")


def test_probabilities_errors_name_argument_and_expectation():
    with pytest.raises(ValueError, match=r"probs: rows must sum to 1.*off by 0.1"):
        checks.check_probabilities(torch.tensor([[0.5, 0.4], [0.5, 0.5]]), "probs")
    with pytest.raises(ValueError, match=r"probs: expected probabilities in \[0, 1\].*from_logits=True"):
        checks.check_probabilities(torch.tensor([[3.0, -2.0]]), "probs")
    with pytest.raises(ValueError, match="probs: expected finite values, found 1 NaN and 0 infinite"):
        checks.check_probabilities(torch.tensor([[float("nan"), 1.0]]), "probs")
    checks.check_probabilities(torch.tensor([[0.25, 0.75]]), "probs")


def test_labels_range_and_ignore_index():
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 2\], got values in \[0, 3\]"):
        checks.check_labels(torch.tensor([0, 3]), 3)
    checks.check_labels(torch.tensor([0, 255, 2]), 3, ignore_index=255)
    with pytest.raises(TypeError, match="labels: expected integer class indices"):
        checks.check_labels(torch.tensor([0.0, 1.0]), 3)


def test_number_and_int_checks():
    assert checks.check_number(0.5, "momentum", low=0, high=1) == 0.5
    with pytest.raises(ValueError, match=r"momentum: expected a finite number in \[0, 1\], got 1.5"):
        checks.check_number(1.5, "momentum", low=0, high=1)
    with pytest.raises(ValueError, match=r"gamma: expected a finite number in \[0, inf\)"):
        checks.check_number(-1, "gamma", low=0)
    with pytest.raises(ValueError, match="n_bins: expected an integer >= 1, got 0"):
        checks.check_positive_int(0, "n_bins")
    with pytest.raises(ValueError, match="n_bins: expected an integer >= 1, got True"):
        checks.check_positive_int(True, "n_bins")
