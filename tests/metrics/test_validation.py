"""Bad input raises ValueError (TypeError for dtypes) naming the argument and the expectation."""

import numpy as np
import pytest
import torch

from caltrain import metrics as M

P = torch.tensor([[0.7, 0.3], [0.4, 0.6]], dtype=torch.float64)
Y = torch.tensor([0, 1])


@pytest.mark.parametrize(
    "probs, labels, match",
    [
        (torch.tensor([0.7, 0.3]), Y, "probs: expected shape"),
        (P, torch.tensor([0, 1, 1]), "labels: expected shape"),
        (torch.tensor([[0.7, float("nan")], [0.4, 0.6]]), Y, "probs: expected finite"),
        (torch.tensor([[0.7, float("inf")], [0.4, 0.6]]), Y, "probs: expected finite"),
        (P, torch.tensor([0, 2]), r"labels: expected class indices in \[0, 1\]"),
        (P, torch.tensor([-1, 0]), "labels"),
        (torch.tensor([[0.7, 0.2], [0.4, 0.6]]), Y, "rows must sum to 1"),
        (torch.empty(0, 2), torch.empty(0, dtype=torch.long), "probs: expected at least one sample"),
    ],
)
def test_bad_inputs_raise_value_error(probs, labels, match):
    for f in (M.expected_calibration_error, M.classwise_calibration_error, M.negative_log_likelihood, M.summarize):
        with pytest.raises(ValueError, match=match):
            f(probs, labels)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_bins"):
        M.expected_calibration_error(P, Y, n_bins=0)
    with pytest.raises(ValueError, match="n_bins"):
        M.summarize(P, Y, n_bins=1.5)
    with pytest.raises(ValueError, match="norm"):
        M.expected_calibration_error(P, Y, norm="l3")
    with pytest.raises(ValueError, match="binning"):
        M.expected_calibration_error(P, Y, binning="equal")
    with pytest.raises(TypeError, match="labels"):
        M.expected_calibration_error(P, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match="ignore_index"):
        M.expected_calibration_error(P, torch.tensor([-1, -1]), ignore_index=-1)
    with pytest.raises(ValueError, match="k:"):
        M.top_k_accuracy(P, Y, k=3)
    with pytest.raises(ValueError, match="correct"):
        M.aurc(np.array([0.5, 0.2]), np.array([2, 0]))
    with pytest.raises(ValueError, match="confidence"):
        M.aurc(np.array([[0.5, 0.2]]), np.array([1, 0]))
    with pytest.raises(ValueError, match="true_posterior"):
        M.summarize(P, Y, true_posterior=torch.ones(2, 2))


def test_validate_args_false_skips_value_checks_only():
    bad = torch.tensor([[0.7, 0.2], [0.4, 0.6]], dtype=torch.float64)
    M.expected_calibration_error(bad, Y, validate_args=False)
    with pytest.raises(ValueError, match="labels: expected shape"):
        M.expected_calibration_error(bad, torch.tensor([0]), validate_args=False)
