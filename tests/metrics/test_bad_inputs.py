"""Bad inputs to caltrain.metrics: clear errors, never a silently wrong number or an 8 GB allocation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caltrain import metrics as M
from caltrain.utils.checks import MAX_BINS


def _data(n=200, k=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.softmax(torch.randn(n, k, generator=g, dtype=torch.float64) * 2, 1)
    y = torch.multinomial(p, 1, generator=g)[:, 0]
    return p, y


# every metric function and streaming class taking n_bins, called with n_bins = value
N_BINS_USERS = {
    "expected_calibration_error": lambda p, y, b: M.expected_calibration_error(p, y, n_bins=b),
    "adaptive_calibration_error": lambda p, y, b: M.adaptive_calibration_error(p, y, n_bins=b),
    "classwise_calibration_error": lambda p, y, b: M.classwise_calibration_error(p, y, n_bins=b),
    "debiased_calibration_error": lambda p, y, b: M.debiased_calibration_error(p, y, n_bins=b),
    "binary_calibration_error": lambda p, y, b: M.binary_calibration_error(p[:, 0], (y == 0).long(), n_bins=b),
    "reliability_curve": lambda p, y, b: M.reliability_curve(p, y, n_bins=b),
    "summarize": lambda p, y, b: M.summarize(p, y, n_bins=b),
    "bootstrap": lambda p, y, b: M.bootstrap("ece", p, y, n=2, n_bins=b),
    "uniform_edges": lambda p, y, b: M.binning.uniform_edges(b),
    "binned_statistics": lambda p, y, b: M.binned_statistics(p.max(1).values, y == 0, b),
    "CalibrationError": lambda p, y, b: M.CalibrationError(n_bins=b),
    "ClasswiseCalibrationError": lambda p, y, b: M.ClasswiseCalibrationError(n_bins=b),
    "StreamingSummary": lambda p, y, b: M.StreamingSummary(n_bins=b),
}


@pytest.mark.parametrize("name", sorted(N_BINS_USERS))
def test_every_n_bins_user_rejects_more_than_the_cap_before_allocating(name):
    p, y = _data()
    call = N_BINS_USERS[name]
    call(p, y, MAX_BINS)  # the cap itself is accepted (and cheap)
    for bad in (MAX_BINS + 1, 10**9, 0, 15.5):
        with pytest.raises(ValueError, match=r"n_bins: expected an integer in \[1, 10000\]"):
            call(p, y, bad)


def test_true_posterior_must_have_one_column_per_real_class():
    p5, y = _data(k=5)
    q3, _ = _data(k=3, seed=1)
    with pytest.raises(ValueError, match=r"true_posterior: expected shape \[200, 5\] .*probs has 5 classes.*got \[200, 3\]"):
        M.summarize(p5, y, true_posterior=q3)
    with pytest.raises(ValueError, match=r"true_posterior: expected shape \[200, 5\]"):
        M.summarize(p5, y, true_posterior=torch.cat([q3, q3], 1)[:, :6] / 2)  # more columns than classes
    with pytest.raises(ValueError, match=r"true_posterior: expected shape \[200, 5\].*got \[200, 3\]"):
        M.true_calibration_error(p5, q3)
    with pytest.raises(ValueError, match=r"true_posterior: expected shape \[200, 5\]"):
        M.summarize(p5.numpy(), y.numpy(), true_posterior=q3.numpy())  # NumPy inputs too


@pytest.mark.parametrize("abstention", ["with_unknown", "without_unknown", "renormalized"])
def test_with_an_abstention_convention_the_posterior_has_k_columns(abstention):
    """K + 1 probabilities and a convention: the posterior is over the K real classes (unknown has none)."""
    p5, y = _data(k=5)
    y = y.clamp(max=3)
    q4, _ = _data(k=4, seed=2)
    s = M.summarize(p5, y, true_posterior=q4, abstention=abstention)
    assert 0.0 <= s["true_ece"] <= 1.0
    for bad in (p5, q4[:, :3] / q4[:, :3].sum(1, keepdim=True)):  # K + 1 or K - 1 columns
        with pytest.raises(ValueError, match=rf"true_posterior: expected shape \[200, 4\].*abstention='{abstention}'"):
            M.summarize(p5, y, true_posterior=bad, abstention=abstention)


def test_dense_true_posterior_width_is_checked_too():
    p, y = _data(n=2 * 4 * 4, k=3)
    dense = p.reshape(2, 4, 4, 3).permute(0, 3, 1, 2)
    q = torch.full((2, 2, 4, 4), 0.5, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"true_posterior: expected shape \[2, 3, 4, 4\]"):
        M.summarize(dense, y.reshape(2, 4, 4), true_posterior=q)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_probabilities_are_evaluated(dtype):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(300, 100, generator=g) * 3
    y = torch.randint(0, 100, (300,), generator=g)
    p = torch.softmax(z.to(dtype), dim=1)
    s = M.summarize(p, y)
    ref = M.summarize(p.double() / p.double().sum(1, keepdim=True), y)
    assert s["accuracy"] == ref["accuracy"] and s["ece"] == pytest.approx(ref["ece"], abs=1e-2)
    assert float(M.expected_calibration_error(p, y)) == pytest.approx(s["ece"], abs=1e-6)


def test_bad_shapes_dtypes_and_empties_raise():
    p, y = _data()
    with pytest.raises(ValueError, match="labels: expected class indices"):
        M.expected_calibration_error(p, torch.full_like(y, 9))
    with pytest.raises(ValueError, match="probs: expected at least one sample"):
        M.expected_calibration_error(p[:0], y[:0])
    with pytest.raises(ValueError, match=r"probs: expected shape \[N, K\]"):
        M.expected_calibration_error(p[:, 0], y)
    with pytest.raises(TypeError, match="probs: expected a floating-point"):
        M.brier_score(np.ones((3, 2), dtype=np.int64), np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match="labels: expected integer class indices"):
        M.summarize(p, y.double())
