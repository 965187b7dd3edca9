import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from caltrain.analysis import margin_tail, margin_tail_from_margins, margins

from .references import np_ece, np_margins, np_softmax


def test_margins_match_numpy_reference(rng):
    z = rng.normal(size=(200, 7)) * 3
    y = rng.integers(0, 7, size=200)
    got = margins(torch.from_numpy(z), torch.from_numpy(y))
    np.testing.assert_allclose(got.numpy(), np_margins(z, y), rtol=0, atol=1e-12)
    assert got.dtype == torch.float64


def test_margins_hand_computed_and_ties():
    z = torch.tensor([[2.0, 0.5, 1.0], [0.0, 3.0, 1.0], [1.0, 1.0, 0.0]])
    assert margins(z, torch.tensor([0, 0, 1])).tolist() == [1.0, -3.0, 0.0]  # a tie gives margin 0


def test_margin_tail_matches_numpy_logsumexp(rng):
    z = rng.normal(size=(500, 10)) * 4
    y = rng.integers(0, 10, size=500)
    tail = margin_tail(torch.from_numpy(z).float(), torch.from_numpy(y))
    m = np_margins(z.astype(np.float32).astype(np.float64), y)
    assert tail.q.dtype == torch.float64 and tail.log_q.dtype == torch.float64
    np.testing.assert_allclose(float(tail.log_q), logsumexp(-m) - math.log(len(m)), rtol=1e-12)
    np.testing.assert_allclose(float(tail.q), np.mean(np.exp(-m)), rtol=1e-12)


def test_margin_tail_log_space_survives_where_float32_overflows():
    # margins of -1000: exp(1000) overflows even in float64, log Q is still exact
    z = torch.tensor([[0.0, 1000.0], [0.0, 1000.0]])
    tail = margin_tail(z, torch.tensor([0, 0]))
    assert math.isinf(float(tail.q))
    assert float(tail.log_q) == pytest.approx(1000.0)
    # huge positive margins: exp(-m) underflows to 0 in float32, log Q keeps the value
    tail = margin_tail(torch.tensor([[200.0, 0.0]]), torch.tensor([0]))
    assert float(tail.log_q) == pytest.approx(-200.0)
    assert torch.exp(-torch.tensor(200.0)).item() == 0.0


def test_margin_tail_from_margins_hand_computed():
    tail = margin_tail_from_margins(torch.tensor([0.0, math.log(3.0)]))
    assert float(tail.q) == pytest.approx((1 + 1 / 3) / 2)


def _random_logits(rng, n, k, scale):
    return rng.normal(size=(n, k)) * scale, rng.integers(0, k, size=n)


@pytest.mark.parametrize("k", [2, 3, 10])
@pytest.mark.parametrize("scale", [0.1, 1.0, 5.0, 20.0])
def test_ece_at_most_k_minus_one_times_q_always(rng, k, scale):
    """ECE <= (K-1) Q for any logits and labels, correct or not.

    docs/methods.md#calmo-and-the-calibration-curvature-link
    """
    for _ in range(5):
        z, y = _random_logits(rng, 300, k, scale)
        q = float(margin_tail(torch.from_numpy(z), torch.from_numpy(y)).q)
        for n_bins in (1, 15, 100):
            assert np_ece(np_softmax(z), y, n_bins) <= (k - 1) * q + 1e-12


@pytest.mark.parametrize("k", [2, 4, 10])
@pytest.mark.parametrize("scale", [0.3, 2.0, 8.0])
def test_positive_margins_bound_and_binning_free_ece(rng, k, scale):
    """When every margin is positive, Q/K <= ECE <= (K-1) Q and ECE = mean(1 - p_y) for any binning.

    docs/methods.md#calmo-and-the-calibration-curvature-link
    """
    z, _ = _random_logits(rng, 400, k, scale)
    y = z.argmax(axis=1)  # every sample correct: all margins > 0 (ties have probability 0)
    tail = margin_tail(torch.from_numpy(z), torch.from_numpy(y))
    assert (margins(torch.from_numpy(z), torch.from_numpy(y)) > 0).all()
    p = np_softmax(z)
    binning_free = np.mean(1 - p[np.arange(len(y)), y])
    for n_bins in (1, 10, 15, 50):
        ece = np_ece(p, y, n_bins)
        assert ece == pytest.approx(binning_free, rel=1e-12, abs=1e-15)
        assert float(tail.q) / k <= ece <= (k - 1) * float(tail.q)


def test_margins_errors_name_argument_and_expectation():
    z = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"logits: expected shape \[N, K\]"):
        margins(torch.zeros(4), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels: expected class indices in \[0, 2\], got values in \[0, 3\]"):
        margins(z, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(TypeError, match="labels: expected integer class indices"):
        margins(z, torch.zeros(4))
    with pytest.raises(ValueError, match="logits: expected finite values, found 1 NaN"):
        margins(torch.tensor([[float("nan"), 0.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="logits and labels must have the same number of samples"):
        margins(z, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="logits: expected K >= 2 classes"):
        margins(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="logits: expected a floating-point tensor"):
        margin_tail(torch.zeros(4, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="logits: expected at least one sample"):
        margin_tail(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))
