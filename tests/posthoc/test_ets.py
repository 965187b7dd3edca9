"""Ensemble temperature scaling: simplex weights, exact QP vs brute force, NLL weights vs a grid, authors' recipe."""

from __future__ import annotations


import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from caltrain import posthoc
from caltrain.posthoc.ets import simplex_quadratic_minimum

from .references import nll, np_softmax, sample_logits


def _simplex_grid(step: float = 0.01) -> np.ndarray:
    n = int(round(1 / step))
    return np.array([(i * step, j * step, 1 - (i + j) * step) for i in range(n + 1) for j in range(n + 1 - i)])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_simplex_quadratic_minimum_beats_a_dense_grid(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(3, 3))
    gram = a @ a.T + (0 if seed % 2 else 1e-3) * np.eye(3)
    lin = rng.normal(size=3)
    w = simplex_quadratic_minimum(gram, lin)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
    grid = _simplex_grid()
    values = np.einsum("ni,ij,nj->n", grid, gram, grid) - 2 * grid @ lin
    assert w @ gram @ w - 2 * lin @ w <= values.min() + 1e-12


def test_mse_fit_matches_the_authors_recipe():
    z, y = sample_logits(1200, 5, seed=4)
    z = 2.0 * z
    cal = posthoc.create("ets", loss="mse").fit(z, y)
    onehot = np.eye(5)[y.numpy()]
    # the authors' recipe, independently: T by bounded L-BFGS-B on the MSE, then SLSQP on the simplex
    def mse_t(t):
        return np.mean((np_softmax(z.numpy() / t[0]) - onehot) ** 2)

    t = minimize(mse_t, [1.0], method="L-BFGS-B", bounds=[(0.05, 5.0)], tol=1e-12).x[0]
    assert cal.temperature_ == pytest.approx(t, rel=1e-3)
    comps = [np_softmax(z.numpy() / cal.temperature_), np_softmax(z.numpy()), np.full((1200, 5), 0.2)]

    def mse_w(w):
        return np.mean((sum(wi * c for wi, c in zip(w, comps)) - onehot) ** 2)

    ref = minimize(mse_w, [1.0, 0.0, 0.0], method="SLSQP", bounds=[(0, 1)] * 3,
                   constraints={"type": "eq", "fun": lambda w: np.sum(w) - 1}, tol=1e-14).x
    assert mse_w(cal.weights_.numpy()) <= mse_w(ref) + 1e-12
    assert cal.weights_.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_nll_weights_maximise_the_likelihood_on_a_grid():
    z, y = sample_logits(800, 4, seed=5)
    z = torch.cat([3.0 * z[:400], 0.2 * z[400:]])  # a mixture that wants the uniform component
    cal = posthoc.create("ets", loss="nll").fit(z, y)
    t = cal.temperature_
    comps = np.stack([np_softmax(z.numpy() / t), np_softmax(z.numpy()), np.full((800, 4), 0.25)])
    py = comps[:, np.arange(800), y.numpy()].T  # [N, 3]
    grid = _simplex_grid(0.02)
    ll = np.log(np.clip(py @ grid.T, 1e-300, None)).mean(axis=0)
    ours = np.log(py @ cal.weights_.numpy()).mean()
    assert ours >= ll.max() - 1e-9
    assert nll(cal.predict_proba(z), y) == pytest.approx(-ours, abs=1e-12)


def test_weights_are_a_distribution_and_params_name_them():
    z, y = sample_logits(600, 3, seed=6)
    for loss in ("mse", "nll"):
        cal = posthoc.create("ets", loss=loss).fit(2 * z, y)
        w = cal.weights_
        assert bool((w >= 0).all()) and float(w.sum()) == pytest.approx(1.0, abs=1e-12)
        assert set(cal.params_) == {"temperature", "weight_ts", "weight_identity", "weight_uniform"}


def test_the_default_is_the_likelihood_fit():
    """Issue 17: the authors' MSE fit raised held-out NLL on real CIFAR-100 outputs; the default fits the NLL."""
    assert posthoc.create("ets").loss == "nll"


def test_bad_loss_raises():
    with pytest.raises(ValueError, match="loss: expected one of 'mse', 'nll'"):
        posthoc.create("ets", loss="brier")
