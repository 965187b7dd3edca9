"""Bootstrap: vectorised paths equal the per-resample loop, intervals contain the estimate, seeding."""

import pytest
import torch

from caltrain import metrics as M


def _data(n=300, k=4, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = 2 * torch.randn(n, k, generator=gen, dtype=torch.float64)
    return torch.softmax(z, 1), torch.randint(0, k, (n,), generator=gen)


@pytest.mark.parametrize(
    "name, function, kwargs",
    [
        ("ece", M.expected_calibration_error, {"n_bins": 10}),
        ("ece", M.expected_calibration_error, {"norm": "max"}),
        ("adaece", M.adaptive_calibration_error, {"n_bins": 10}),
        ("classwise_ece", M.classwise_calibration_error, {}),
        ("nll", M.negative_log_likelihood, {}),
        ("brier", M.brier_score, {}),
        ("accuracy", M.accuracy, {}),
    ],
)
def test_vectorised_path_equals_loop(name, function, kwargs):
    p, y = _data()
    fast = M.bootstrap(name, p, y, n=40, seed=3, chunk_elements=5000, **kwargs)
    slow = M.bootstrap(lambda a, b, **kw: function(a, b, **kw), p, y, n=40, seed=3, **kwargs)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_interval_contains_estimate_and_is_seeded():
    p, y = _data(500)
    est, lo, hi = M.bootstrap(M.expected_calibration_error, p, y, n=300, seed=0)
    assert lo < est < hi and est == pytest.approx(float(M.expected_calibration_error(p, y)))
    assert M.bootstrap("ece", p, y, n=300, seed=0) == (est, lo, hi)
    assert M.bootstrap("ece", p, y, n=300, seed=1) != (est, lo, hi)
    _, lo90, hi90 = M.bootstrap("ece", p, y, n=300, seed=0, alpha=0.1)
    assert lo <= lo90 and hi90 <= hi


def test_bad_arguments():
    p, y = _data(20)
    with pytest.raises(ValueError, match="alpha"):
        M.bootstrap("ece", p, y, alpha=1.5)
    with pytest.raises(KeyError, match="Valid names"):
        M.bootstrap("ecee", p, y)
    with pytest.raises(TypeError, match="n_bin"):
        M.bootstrap("ece", p, y, n_bin=3)
    with pytest.raises(ValueError, match="n:"):
        M.bootstrap("ece", p, y, n=0)
