"""Vector / matrix scaling and Dirichlet-ODIR: the objective and its gradient, stationarity, the CV choice of the
regularisation, the reduction to TS, quasi-separation, old files, the K = 100 warning."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from caltrain import posthoc
from caltrain.posthoc import linear, linear_calibration_loss

from .references import nll, sample_logits


def np_penalty(weight: np.ndarray, bias: np.ndarray, lam: float, mu: float, nu: float = 0.0) -> float:
    """ODIR (off-diagonal, intercepts) plus the diagonal-spread term, NumPy."""
    k = bias.shape[0]
    diag = np.diag(weight) if weight.ndim == 2 else weight
    off = weight[~np.eye(k, dtype=bool)] if weight.ndim == 2 else np.zeros(0)
    return lam * np.sum(off**2) / (k * (k - 1)) + mu * np.sum(bias**2) / k + nu * np.sum((diag - diag.mean()) ** 2) / k


def np_nll(features: np.ndarray, labels: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> float:
    s = features * weight + bias if weight.ndim == 1 else features @ weight.T + bias
    s = s - s.max(1, keepdims=True)
    return float(np.mean(np.log(np.exp(s).sum(1)) - s[np.arange(len(labels)), labels]))


def test_loss_is_nll_plus_the_penalties():
    z, y = sample_logits(50, 4, seed=1)
    g = torch.Generator().manual_seed(2)
    w = torch.randn(4, 4, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    got = float(linear_calibration_loss(z, y, w, b, reg_lambda=0.3, reg_mu=0.2, reg_nu=0.7))
    ref = np_nll(z.numpy(), y.numpy(), w.numpy(), b.numpy()) + np_penalty(w.numpy(), b.numpy(), 0.3, 0.2, 0.7)
    assert got == pytest.approx(ref, abs=1e-12)
    # a diagonal weight (vector scaling) has no off-diagonal term
    got_vec = float(linear_calibration_loss(z, y, w.diagonal(), b, reg_lambda=5.0, reg_mu=0.0, reg_nu=0.4))
    ref_vec = np_nll(z.numpy(), y.numpy(), w.diagonal().numpy(), b.numpy()) + np_penalty(
        w.diagonal().numpy(), b.numpy(), 0.0, 0.0, 0.4)
    assert got_vec == pytest.approx(ref_vec, abs=1e-12)
    s = z.numpy() * w.diagonal().numpy() + b.numpy()
    assert float(linear_calibration_loss(z, y, w.diagonal(), b)) == pytest.approx(
        nll(np.exp(s) / np.exp(s).sum(1, keepdims=True), y), abs=1e-12)


@pytest.mark.parametrize("diagonal", [True, False])
def test_analytic_gradient_of_several_maps_equals_autograd(diagonal):
    """The fitter's hand-written gradient (centred coordinates, two maps on different data) against autograd."""
    from caltrain.posthoc.linear import _Coordinates, _loss_and_grad

    k = 5
    z, y = sample_logits(300, k, seed=11)
    z = 2 * z + 1.5  # uncentred, as log-probabilities are
    coords = _Coordinates(z)
    data = [(coords.centre(z[:200]), y[:200]), (coords.centre(z[120:]), y[120:])]
    g = torch.Generator().manual_seed(3)
    shape = (2, k) if diagonal else (2, k, k)
    w = (torch.randn(shape, generator=g, dtype=torch.float64) * 0.3 + (1.0 if diagonal else torch.eye(k)))
    c = torch.randn(2, k, generator=g, dtype=torch.float64)
    loss, gw, gc = _loss_and_grad(data, coords.mean, w, c, 0.7, 0.3, 0.5)
    w_, c_ = w.clone().requires_grad_(True), c.clone().requires_grad_(True)
    ref = 0
    for i, (start, stop) in enumerate(((0, 200), (120, 300))):
        bias = c_[i] - (w_[i] * coords.mean if diagonal else w_[i] @ coords.mean)
        ref = ref + linear_calibration_loss(z[start:stop], y[start:stop], w_[i], bias, reg_lambda=0.7, reg_mu=0.3,
                                            reg_nu=0.5)
    rw, rc = torch.autograd.grad(ref, [w_, c_])
    assert float(loss) == pytest.approx(float(ref.detach()), abs=1e-12)
    torch.testing.assert_close(gw, rw, atol=1e-12, rtol=1e-10)
    torch.testing.assert_close(gc, rc, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("name", ["vector", "matrix", "dirichlet"])
@pytest.mark.parametrize("given", [True, False])
def test_fit_is_stationary_at_the_recorded_regularisation(name, given):
    z, y = sample_logits(1500, 4, seed=3)
    options = ({"reg_mu": 0.05, "reg_nu": 0.02} if name == "vector" else {"reg_lambda": 0.1}) if given else {}
    cal = posthoc.create(name, tol=1e-9, **options).fit(2 * z, y)
    assert cal.params_["cv_folds"] == (0 if given else 5)
    if given and name != "vector":
        assert (cal.reg_lambda_, cal.reg_mu_, cal.reg_nu_) == (0.1, 0.1, 0.0)  # mu defaults to lambda, nu to 0
    w = cal.weight_.clone().requires_grad_(True)
    b = cal.bias_.clone().requires_grad_(True)
    feats = 2 * z if name != "dirichlet" else torch.log_softmax(2 * z, 1)
    loss = linear_calibration_loss(feats, y, w, b, reg_lambda=cal.reg_lambda_, reg_mu=cal.reg_mu_,
                                   reg_nu=cal.reg_nu_)
    gw, gb = torch.autograd.grad(loss, [w, b])
    if gw.ndim == 2 and math.isinf(cal.reg_lambda_):  # off-diagonals fixed at 0: stationary in the free entries
        assert bool((cal.weight_ == torch.diag(torch.diagonal(cal.weight_))).all())
        gw = torch.diagonal(gw)
    assert float(gw.abs().max()) < 1e-6 and float(gb.abs().max()) < 1e-6
    assert cal.loss_ == pytest.approx(float(loss.detach()), abs=1e-12)


def test_richer_unregularised_families_reach_lower_validation_nll():
    z, y = sample_logits(2000, 5, seed=4)
    z = 2 * z + torch.tensor([0.5, 0.0, -0.5, 0.2, 0.0], dtype=torch.float64)
    fitted = {
        "ts": posthoc.create("ts").fit(z, y),
        "vector": posthoc.create("vector", reg_mu=0.0, tol=1e-8).fit(z, y),
        "matrix": posthoc.create("matrix", reg_lambda=0.0, tol=1e-8).fit(z, y),
    }
    val = {n: nll(c.predict_proba(z), y) for n, c in fitted.items()}
    assert val["matrix"] <= val["vector"] + 1e-10 <= val["ts"] + 2e-10


def test_vector_scaling_recovers_a_known_affine_map():
    z, y = sample_logits(30000, 3, scale=1.5, seed=5)
    w0 = torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64)
    b0 = torch.tensor([0.3, -0.2, 0.0], dtype=torch.float64)
    observed = (z - b0) / w0  # so that w0 * observed + b0 = z, the calibrated logits
    cal = posthoc.create("vector", reg_mu=0.0).fit(observed, y)
    # the map is identified up to a common additive shift of the bias
    torch.testing.assert_close(cal.weight_, w0, atol=0.12, rtol=0)
    torch.testing.assert_close(cal.bias_ - cal.bias_.mean(), b0 - b0.mean(), atol=0.06, rtol=0)


def test_dirichlet_at_identity_data_stays_near_identity():
    z, y = sample_logits(6000, 3, seed=6)
    cal = posthoc.create("dirichlet").fit(z, y)
    torch.testing.assert_close(cal.weight_, torch.eye(3, dtype=torch.float64), atol=0.1, rtol=0)


def test_given_weak_regularisation_on_k100_with_little_data_warns_and_the_cv_default_does_not():
    z, y = sample_logits(300, 100, seed=7)
    with pytest.warns(RuntimeWarning, match="10100 parameters fitted on 300 validation samples"):
        posthoc.create("matrix", reg_lambda=0.0, max_iter=3).fit(z, y)
    with pytest.warns(RuntimeWarning, match="with reg_lambda=0.01: expect over-fitting"):
        posthoc.create("dirichlet", reg_lambda=0.01, max_iter=3).fit(z, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        cal = posthoc.create("vector").fit(z, y)
    assert cal.params_["cv_folds"] == 5 and cal.params_["max_gain"] < 50


def test_odir_shrinks_off_diagonals_and_intercepts():
    z, y = sample_logits(800, 8, seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        strong = posthoc.create("dirichlet", reg_lambda=10.0).fit(z, y)
        weak = posthoc.create("dirichlet", reg_lambda=1e-2).fit(z, y)
    assert strong.params_["off_diagonal_l2"] < weak.params_["off_diagonal_l2"]
    assert strong.params_["bias_l2"] < weak.params_["bias_l2"]
    assert strong.params_["n_parameters"] == 72


def test_vector_scaling_warns_only_when_data_is_very_small():
    z, y = sample_logits(50, 10, seed=9)
    with pytest.warns(RuntimeWarning, match="20 parameters fitted on 50"):
        posthoc.create("vector", reg_mu=0.0).fit(z, y)


def test_the_cv_choice_is_recorded_seeded_and_reproducible():
    z, y = sample_logits(600, 4, seed=12)
    z = 2.5 * z
    cal = posthoc.create("dirichlet").fit(z, y)
    params = cal.params_
    assert params["cv_folds"] == 5 and params["cv_nll"] > 0
    assert {"reg_mu", "reg_nu", "max_gain", "train_nll", "diagonal_only"} <= set(params)
    assert ("reg_lambda" in params) == (params["diagonal_only"] == 0) == math.isfinite(cal.reg_lambda_)
    stages = [stage for stage, _, _ in cal.cv_path_]
    assert stages[0] == "diagonal" and stages[-1] == "lambda"
    # the path stops at the first value that does not improve on its stage's best, and the choice is the best
    for stage in ("diagonal", "lambda"):
        scores = [s for st, _, s in cal.cv_path_ if st == stage]
        assert all(b < a for a, b in zip(scores[:-2], scores[1:-1]))
        assert len(scores) >= len(linear.CV_GRID) or scores[-1] >= min(scores[:-1])
    assert params["cv_nll"] == pytest.approx(min(s for st, _, s in cal.cv_path_ if st == "lambda"))
    again = posthoc.create("dirichlet").fit(z, y)
    assert again.params_ == params  # seeded folds: the same choice and fit
    # passing the recorded values back reproduces the fit without cross-validation
    fixed = posthoc.create("dirichlet", reg_lambda=cal.reg_lambda_, reg_mu=params["reg_mu"],
                           reg_nu=params["reg_nu"], tol=1e-9).fit(z, y)
    torch.testing.assert_close(fixed.predict_proba(z), cal.predict_proba(z), atol=1e-4, rtol=0)  # tol 1e-5 vs 1e-9
    assert fixed.params_["cv_folds"] == 0 and "cv_nll" not in fixed.params_
    other_seed = posthoc.create("dirichlet", cv_seed=1).fit(z, y)
    assert other_seed.cv_path_ != cal.cv_path_


def test_stratified_folds_spread_every_class_evenly():
    y = torch.tensor([0] * 17 + [1] * 5 + [2] * 40)[torch.randperm(62, generator=torch.Generator().manual_seed(0))]
    folds = linear.stratified_folds(y, 5, seed=3)
    counts = torch.stack([torch.bincount(folds[y == c], minlength=5) for c in range(3)])
    assert (counts.amax(1) - counts.amin(1) <= 1).all()
    assert torch.equal(folds, linear.stratified_folds(y, 5, seed=3))


@pytest.mark.parametrize("name", ["vector", "dirichlet"])
def test_the_strongest_setting_is_temperature_scaling(name):
    """With every penalty pinned (g huge) vector scaling and Dirichlet calibration reduce to TS."""
    z, y = sample_logits(1500, 5, seed=13)
    z = 2.5 * z
    feats = torch.log_softmax(z, 1) if name == "dirichlet" else z
    units = linear.penalty_units(feats)
    w, b, _, _ = linear.fit_linear_calibration(
        feats, y, structure="vector" if name == "vector" else "matrix", reg_lambda=1e7 * units["lambda"],
        reg_mu=1e7 * units["mu"], reg_nu=1e7 * units["nu"], tol=1e-9, max_iter=2000)
    ts = posthoc.create("ts").fit(z, y)
    probs = torch.softmax(linear._apply(feats, w, b), 1)
    torch.testing.assert_close(probs, ts.predict_proba(z), atol=2e-4, rtol=0)


def test_quasi_separation_warns():
    # class 0's logit separates its samples from the others by a margin of 0.1 over a spread of ~6: without
    # regularisation its weight runs away (the loss keeps falling as it grows), the case of issue 17
    g = torch.Generator().manual_seed(14)
    y = torch.randint(0, 3, (300,), generator=g)
    z = torch.randn(300, 3, generator=g, dtype=torch.float64)
    side = torch.rand(300, generator=g, dtype=torch.float64) * 10 + 0.05
    z[:, 0] = torch.where(y == 0, side, -side)
    with pytest.warns(RuntimeWarning, match="quasi-separation"):
        cal = posthoc.create("vector", reg_mu=0.0).fit(z, y)
    assert cal.params_["max_gain"] > linear.GAIN_LIMIT
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        posthoc.create("vector", reg_mu=0.0, reg_nu=100.0).fit(z, y)  # the diagonal tied: no runaway


def test_too_few_samples_to_cross_validate_take_the_strongest_setting():
    z, y = sample_logits(7, 3, seed=15)
    with pytest.warns(RuntimeWarning, match="too few to cross-validate"):
        cal = posthoc.create("dirichlet").fit(z, y)
    assert cal.params_["cv_folds"] == 0 and "cv_nll" not in cal.params_
    units = linear.penalty_units(torch.log_softmax(z, 1))
    assert cal.reg_lambda_ == math.inf and cal.reg_mu_ == pytest.approx(linear.CV_GRID[0] * units["mu"])
    assert bool((cal.weight_ == torch.diag(torch.diagonal(cal.weight_))).all())  # off-diagonals exactly 0


def test_files_saved_before_the_cv_default_still_load(tmp_path):
    z, y = sample_logits(400, 4, seed=16)
    cal = posthoc.create("dirichlet", reg_lambda=0.01).fit(z, y)
    state = cal.state_dict()
    for key in ("reg_lambda_", "reg_mu_", "reg_nu_", "cv_folds_", "cv_nll_", "max_gain_", "train_nll_"):
        del state["fitted"][key]
    state["hyperparameters"] = {"reg_lambda": 0.01, "reg_mu": None, "max_iter": 500, "tol": 1e-7, "abstention": None}
    old = posthoc.DirichletCalibration.from_state_dict(state)
    torch.testing.assert_close(old.predict_proba(z), cal.predict_proba(z))
    assert (old.reg_lambda_, old.reg_mu_, old.reg_nu_, old.params_["cv_folds"]) == (0.01, 0.01, 0.0, 0)
    del state["fitted"]["weight_"]  # a file missing an old field still fails, naming it
    with pytest.raises(ValueError, match="missing fitted attribute"):
        posthoc.DirichletCalibration.from_state_dict(state)


def test_off_diagonals_fixed_at_zero_round_trip(tmp_path):
    """reg_lambda = inf: the diagonal map; params_ stays finite (diagonal_only), the file holds Infinity."""
    z, y = sample_logits(500, 4, seed=17)
    cal = posthoc.create("dirichlet", reg_lambda=math.inf).fit(2 * z, y)
    assert bool((cal.weight_ == torch.diag(torch.diagonal(cal.weight_))).all())
    assert cal.reg_mu_ == 0.0 and cal.params_["diagonal_only"] == 1 and "reg_lambda" not in cal.params_
    vector = posthoc.create("vector", reg_mu=0.0).fit(torch.log_softmax(2 * z, 1), y)
    torch.testing.assert_close(torch.diagonal(cal.weight_), vector.weight_, atol=1e-4, rtol=0)
    cal.save(tmp_path / "d.json")
    assert "Infinity" in (tmp_path / "d.json").read_text()
    loaded = posthoc.load(tmp_path / "d.json")
    assert loaded.reg_lambda_ == math.inf and torch.equal(loaded.predict_proba(z), cal.predict_proba(z))


def test_bad_regularisation_raises():
    for bad in (-1.0, -math.inf, float("nan"), "1"):
        with pytest.raises(ValueError, match="reg_lambda"):
            posthoc.create("dirichlet", reg_lambda=bad)
    with pytest.raises(ValueError, match="reg_nu"):
        posthoc.create("vector", reg_nu=float("nan"))
    with pytest.raises(ValueError, match="cv_folds"):
        posthoc.create("matrix", cv_folds=1)
    with pytest.raises(ValueError, match="max_iter"):
        posthoc.create("matrix", max_iter=0)


def test_lbfgs_solves_an_ill_conditioned_quadratic_and_keeps_shapes():
    from caltrain.posthoc._optim import minimize_lbfgs

    g = torch.Generator().manual_seed(0)
    a = torch.randn(30, 30, generator=g, dtype=torch.float64)
    h = a @ a.T + torch.diag(torch.logspace(-2, 3, 30, dtype=torch.float64))  # condition number ~1e5+
    c = torch.randn(30, generator=g, dtype=torch.float64)
    (x,), n_eval, value = minimize_lbfgs(lambda x: 0.5 * x @ h @ x - c @ x, [torch.zeros(30, dtype=torch.float64)],
                                         max_iter=2000, tol=1e-9)
    exact = torch.linalg.solve(h, c)
    assert float((h @ x - c).abs().max()) <= 1e-6  # the loss stops improving (ftol) before tol here
    assert value == pytest.approx(float(-0.5 * c @ exact), abs=1e-9)
    assert n_eval < 2000
    # shapes of several parameters are kept
    (w, b), _, _ = minimize_lbfgs(lambda w, b: (w - 2).square().sum() + (b + 1).square().sum(),
                                  [torch.zeros(2, 3, dtype=torch.float64), torch.zeros((), dtype=torch.float64)])
    assert w.shape == (2, 3) and b.shape == ()
    torch.testing.assert_close(w, torch.full((2, 3), 2.0, dtype=torch.float64))
    assert float(b) == pytest.approx(-1.0)
