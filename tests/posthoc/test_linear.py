"""Vector / matrix scaling and Dirichlet-ODIR: stationarity, family ordering, recovery, ODIR, the K=100 warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from caltrain import posthoc
from caltrain.posthoc import linear_calibration_loss

from .references import nll, sample_logits


def np_odir(weight: np.ndarray, bias: np.ndarray, lam: float, mu: float) -> float:
    k = weight.shape[0]
    off = weight[~np.eye(k, dtype=bool)]
    return lam * np.sum(off**2) / (k * (k - 1)) + mu * np.sum(bias**2) / k


def test_loss_is_nll_plus_the_odir_penalty():
    z, y = sample_logits(50, 4, seed=1)
    g = torch.Generator().manual_seed(2)
    w = torch.randn(4, 4, generator=g, dtype=torch.float64)
    b = torch.randn(4, generator=g, dtype=torch.float64)
    got = float(linear_calibration_loss(z, y, w, b, reg_lambda=0.3, reg_mu=0.2))
    s = z.numpy() @ w.numpy().T + b.numpy()
    s = s - s.max(1, keepdims=True)
    ref_nll = float(np.mean(np.log(np.exp(s).sum(1)) - s[np.arange(50), y.numpy()]))
    assert got == pytest.approx(ref_nll + np_odir(w.numpy(), b.numpy(), 0.3, 0.2), abs=1e-12)
    # a diagonal weight (vector scaling) has no off-diagonal term
    got_vec = float(linear_calibration_loss(z, y, w.diagonal(), b, reg_lambda=5.0, reg_mu=0.0))
    s = z.numpy() * w.diagonal().numpy() + b.numpy()
    assert got_vec == pytest.approx(nll(np.exp(s) / np.exp(s).sum(1, keepdims=True), y), abs=1e-12)


@pytest.mark.parametrize("name", ["vector", "matrix", "dirichlet"])
def test_fit_is_stationary(name):
    z, y = sample_logits(1500, 4, seed=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cal = posthoc.create(name).fit(2 * z, y)
    w = cal.weight_.clone().requires_grad_(True)
    b = cal.bias_.clone().requires_grad_(True)
    feats = 2 * z if name != "dirichlet" else torch.log_softmax(2 * z, 1)
    lam = cal.reg_lambda if name != "vector" else 0.0
    mu = cal.reg_mu if cal.reg_mu is not None else lam
    loss = linear_calibration_loss(feats, y, w, b, reg_lambda=lam, reg_mu=mu)
    gw, gb = torch.autograd.grad(loss, [w, b])
    assert float(gw.abs().max()) < 1e-6 and float(gb.abs().max()) < 1e-6
    assert cal.loss_ == pytest.approx(float(loss.detach()), abs=1e-12)


def test_richer_families_reach_lower_validation_nll():
    z, y = sample_logits(2000, 5, seed=4)
    z = 2 * z + torch.tensor([0.5, 0.0, -0.5, 0.2, 0.0], dtype=torch.float64)
    fitted = {n: posthoc.create(n).fit(z, y) for n in ("ts", "vector", "matrix")}
    val = {n: nll(c.predict_proba(z), y) for n, c in fitted.items()}
    assert val["matrix"] <= val["vector"] + 1e-10 <= val["ts"] + 2e-10


def test_vector_scaling_recovers_a_known_affine_map():
    z, y = sample_logits(30000, 3, scale=1.5, seed=5)
    w0 = torch.tensor([2.0, 0.5, 1.0], dtype=torch.float64)
    b0 = torch.tensor([0.3, -0.2, 0.0], dtype=torch.float64)
    observed = (z - b0) / w0  # so that w0 * observed + b0 = z, the calibrated logits
    cal = posthoc.create("vector").fit(observed, y)
    # the map is identified up to a common additive shift of the bias
    torch.testing.assert_close(cal.weight_, w0, atol=0.12, rtol=0)
    torch.testing.assert_close(cal.bias_ - cal.bias_.mean(), b0 - b0.mean(), atol=0.06, rtol=0)


def test_dirichlet_at_identity_data_stays_near_identity():
    z, y = sample_logits(20000, 3, seed=6)
    cal = posthoc.create("dirichlet").fit(z, y)
    torch.testing.assert_close(cal.weight_, torch.eye(3, dtype=torch.float64), atol=0.08, rtol=0)


def test_matrix_scaling_on_k100_with_little_data_warns():
    z, y = sample_logits(300, 100, seed=7)
    with pytest.warns(RuntimeWarning, match="10100 parameters fitted on 300 validation samples"):
        posthoc.create("matrix", max_iter=3).fit(z, y)
    with pytest.warns(RuntimeWarning, match="reg_lambda=0.01: expect over-fitting"):
        posthoc.create("dirichlet", max_iter=3).fit(z, y)


def test_fits_with_enough_data_do_not_warn_and_odir_shrinks_off_diagonals():
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
        posthoc.create("vector").fit(z, y)


def test_bad_regularisation_raises():
    with pytest.raises(ValueError, match="reg_lambda"):
        posthoc.create("dirichlet", reg_lambda=-1.0)
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
