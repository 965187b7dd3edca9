"""Temperature scaling: exact fit (vs a scipy reference), recovery of a known T, identity, bounds, grid-ECE."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from caltrain import posthoc
from caltrain.posthoc import TemperatureScaling, fit_temperature
from caltrain.posthoc.temperature import DEFAULT_GRID, _nll_derivatives

from .references import nll, np_ece, np_softmax, sample_logits


def np_nll_at(t: float, z: np.ndarray, y: np.ndarray) -> float:
    s = z / t
    return float(np.mean(logsumexp(s, axis=1) - s[np.arange(len(y)), y]))


@pytest.mark.parametrize("t0", [0.4, 1.0, 2.0, 3.5])
def test_recovers_a_known_temperature(t0):
    z, y = sample_logits(20000, 5, scale=2.0, seed=int(10 * t0))
    t = TemperatureScaling().fit(t0 * z, y).temperature_
    assert abs(t - t0) < 0.04 * t0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_scipy_reference_minimiser(seed):
    z, y = sample_logits(700, 7, scale=1.5, seed=seed)
    zz = (2.2 * z).numpy()
    ref = minimize_scalar(lambda b: np_nll_at(1 / b, zz, y.numpy()), bounds=(0.01, 100), method="bounded",
                          options={"xatol": 1e-12}).x
    t = TemperatureScaling().fit(zz, y.numpy()).temperature_
    assert abs(1 / t - ref) < 1e-6
    # the optimum is stationary: the NLL a hair away on either side is not lower
    assert np_nll_at(t, zz, y.numpy()) <= min(np_nll_at(t * (1 + 1e-4), zz, y.numpy()),
                                              np_nll_at(t * (1 - 1e-4), zz, y.numpy())) + 1e-15


def test_matches_netcal_temperature_scaling():
    netcal_scaling = pytest.importorskip("netcal.scaling")
    z, y = sample_logits(1500, 4, seed=5)
    z = 1.8 * z
    ours = TemperatureScaling().fit(z, y).temperature_
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = netcal_scaling.TemperatureScaling()
        ref.fit(np_softmax(z.numpy()), y.numpy())
    theirs_probs = ref.transform(np_softmax(z.numpy()))
    # netcal fits in float32 with a gradient method: agree on the NLL reached, to its precision
    ours_nll = nll(TemperatureScaling().fit(z, y).predict_proba(z), y)
    assert abs(ours_nll - nll(theirs_probs, y)) < 1e-4
    assert ours_nll <= nll(theirs_probs, y) + 1e-9
    assert 1.5 < ours < 2.1


def test_derivatives_match_autograd():
    z, y = sample_logits(200, 6, seed=7)
    beta = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(beta * z, y)
    (g,) = torch.autograd.grad(loss, beta, create_graph=True)
    (h,) = torch.autograd.grad(g, beta)
    ours = _nll_derivatives(z, y, 0.7)
    assert ours[0] == pytest.approx(float(g.detach()), abs=1e-12)
    assert ours[1] == pytest.approx(float(h), abs=1e-12)


def test_temperature_one_is_the_identity():
    z, y = sample_logits(300, 4, seed=2)
    cal = TemperatureScaling().fit(z, y)
    cal.temperature_ = 1.0
    assert torch.equal(cal.predict_proba(z), torch.softmax(z, 1))
    assert torch.equal(cal.transform(z), z)


def test_calibrated_logits_give_a_temperature_near_one():
    z, y = sample_logits(20000, 4, seed=8)
    assert abs(TemperatureScaling().fit(z, y).temperature_ - 1.0) < 0.04


def test_converges_in_a_few_passes_even_far_from_one():
    z, y = sample_logits(3000, 10, seed=3)
    cal = TemperatureScaling().fit(40.0 * z, y)
    assert abs(cal.temperature_ - 40.0) < 2.0
    assert cal.n_iter_ <= 40


def test_all_correct_validation_set_hits_the_lower_bound_with_a_warning():
    z, _ = sample_logits(200, 3, seed=4)
    with pytest.warns(RuntimeWarning, match="at the bound 0.01"):
        cal = TemperatureScaling().fit(z, z.argmax(1))
    assert cal.temperature_ == 0.01
    t, _, at_bound = fit_temperature(z, z.argmax(1), t_min=0.5, t_max=2.0)
    assert t == 0.5 and at_bound


def test_bad_bounds_raise():
    with pytest.raises(ValueError, match="t_min"):
        TemperatureScaling(t_min=0)
    with pytest.raises(ValueError, match="t_max"):
        TemperatureScaling(t_min=2.0, t_max=1.0)


def test_default_grid_is_point_one_to_ten():
    assert len(DEFAULT_GRID) == 100 and DEFAULT_GRID[0] == 0.1 and DEFAULT_GRID[-1] == 10.0
    assert all(abs(b - a - 0.1) < 1e-9 for a, b in zip(DEFAULT_GRID, DEFAULT_GRID[1:]))


def test_grid_ece_picks_the_grid_minimum_of_an_independent_ece():
    pytest.importorskip("caltrain.metrics")
    from caltrain import metrics

    if not hasattr(metrics, "expected_calibration_error"):
        pytest.skip("caltrain.metrics.expected_calibration_error not available yet")
    z, y = sample_logits(1500, 5, seed=6)
    z = 2.0 * z
    grid = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0)
    cal = posthoc.create("ts-grid-ece", grid=grid).fit(z, y)
    eces = [np_ece(np_softmax(z.numpy() / t), y.numpy()) for t in grid]
    assert cal.temperature_ == grid[int(np.argmin(eces))]
    assert cal.ece_ == pytest.approx(min(eces), abs=1e-9)
    assert cal.params_["temperature"] == cal.temperature_


def test_uninformative_logits_hit_the_upper_bound():
    z, _ = sample_logits(2000, 4, seed=12)
    y = torch.randint(0, 4, (2000,), generator=torch.Generator().manual_seed(1))
    y = y[torch.randperm(2000, generator=torch.Generator().manual_seed(2))]
    t, _, at_bound = fit_temperature(10 * z, y, t_min=0.1, t_max=5.0)
    assert t == 5.0 and at_bound
    # inside the bracket the same data gives an interior optimum once t_max is large enough
    t_free, _, at_bound_free = fit_temperature(10 * z, y, t_min=0.1, t_max=1e6)
    assert t_free > 5.0 and not at_bound_free


@pytest.mark.parametrize("bounds", [(0.01, 100.0), (0.05, 20.0), (0.1, 10.0)])
def test_regression_converged_newton_step_does_not_fall_back_to_bisection(bounds):
    # A final Newton step below float resolution used to fail the strict bracket test and restart bisection
    # (30+ extra passes over the data).
    for seed in range(4):
        z, y = sample_logits(3000, 30, seed=seed)
        t, n_iter, at_bound = fit_temperature((2.5 * z).float().double(), y, t_min=bounds[0], t_max=bounds[1])
        assert not at_bound and n_iter <= 10 and abs(t - 2.5) < 0.2
