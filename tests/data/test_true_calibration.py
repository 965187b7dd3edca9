"""The true calibration error against a NumPy reference."""

import numpy as np
import pytest
import torch

from caltrain.data import true_calibration_error


def reference(probs, q, norm=1):
    pred = probs.argmax(1)
    gap = np.abs(q[np.arange(len(q)), pred] - probs.max(1))
    return gap.mean() if norm == 1 else np.sqrt((gap**2).mean())


@pytest.mark.parametrize("norm", [1, 2])
def test_matches_reference(rng, norm):
    probs = rng.dirichlet(np.ones(5), 300)
    q = rng.dirichlet(np.ones(5), 300)
    got = true_calibration_error(torch.from_numpy(probs), torch.from_numpy(q), norm=norm)
    assert got.dtype == torch.float64 and float(got) == pytest.approx(reference(probs, q, norm), rel=1e-12)


def test_zero_for_the_true_posterior_and_bounds_binned_ece(rng):
    q = rng.dirichlet(np.ones(4) * 0.5, 2000)
    assert float(true_calibration_error(torch.from_numpy(q), torch.from_numpy(q))) == 0.0
    # A confident model on ambiguous data: TCE >= |mean conf - mean P(correct)| (Jensen).
    sharp = np.eye(4)[q.argmax(1)] * 0.96 + 0.01
    tce = float(true_calibration_error(torch.from_numpy(sharp), torch.from_numpy(q)))
    assert tce >= abs(sharp.max(1).mean() - q.max(1).mean()) - 1e-12


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"true_posterior: expected shape \[3, 2\]"):
        true_calibration_error(torch.full((3, 2), 0.5), torch.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match="probs"):
        true_calibration_error(torch.full((3, 2), 0.7), torch.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="norm"):
        true_calibration_error(torch.full((3, 2), 0.5), torch.full((3, 2), 0.5), norm=3)
