"""Platt and beta calibration: scikit-learn logistic-regression references, the beta constraint rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from caltrain import posthoc


def _binary(n: int, seed: int, a: float = 2.5, b: float = 0.4):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, generator=g, dtype=torch.float64) * 2
    y = torch.bernoulli(torch.sigmoid(s), generator=g).long()
    return a * s + b, y  # over-confident and shifted observed logits


def _sk(features: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    lr = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10000).fit(features, y)
    return lr.coef_[0], float(lr.intercept_[0])


def test_platt_matches_unregularised_logistic_regression():
    s, y = _binary(2000, 0)
    cal = posthoc.create("platt").fit(s, y)
    coef, intercept = _sk(s.numpy()[:, None], y.numpy())
    assert cal.a_ == pytest.approx(coef[0], abs=1e-5)
    assert cal.b_ == pytest.approx(intercept, abs=1e-5)
    assert cal.a_ == pytest.approx(1 / 2.5, abs=0.05)


def test_beta_matches_logistic_regression_on_log_features():
    s, y = _binary(2000, 1)
    cal = posthoc.create("beta").fit(s, y)
    p = 1 / (1 + np.exp(-s.numpy()))
    coef, intercept = _sk(np.stack([np.log(p), -np.log1p(-p)], 1), y.numpy())
    assert coef.min() >= 0  # unconstrained fit already feasible here
    np.testing.assert_allclose([cal.a_, cal.b_, cal.c_], [coef[0], coef[1], intercept], atol=1e-5)


def test_beta_constraint_drops_a_negative_coefficient():
    g = torch.Generator().manual_seed(2)
    s = torch.randn(4000, generator=g, dtype=torch.float64) * 2
    log_p, minus_log_1mp = -torch.nn.functional.softplus(-s), torch.nn.functional.softplus(s)
    y = torch.bernoulli(torch.sigmoid(-0.8 * log_p + 1.0 * minus_log_1mp - 0.5), generator=g).long()  # a = -0.8
    feats = torch.stack([log_p, minus_log_1mp], 1).numpy()
    coef, _ = _sk(feats, y.numpy())
    assert coef[0] < 0  # the unconstrained fit is infeasible ...
    cal = posthoc.create("beta").fit(s, y)
    ref, intercept = _sk(feats[:, 1:], y.numpy())  # ... so a = 0 and the refit on the other feature
    assert cal.a_ == 0.0
    assert cal.b_ == pytest.approx(ref[0], abs=1e-5) and cal.c_ == pytest.approx(intercept, abs=1e-5)


def test_beta_calibration_is_monotone_in_the_logit():
    s, y = _binary(1000, 3)
    cal = posthoc.create("beta").fit(s, y)
    grid = torch.linspace(-30, 30, 601, dtype=torch.float64)
    q = cal.predict_proba(grid)[:, 1]
    assert bool((q[1:] >= q[:-1] - 1e-15).all())
    assert bool(torch.isfinite(cal.transform(grid)).all())


def test_platt_identity_on_calibrated_logits():
    g = torch.Generator().manual_seed(4)
    s = torch.randn(40000, generator=g, dtype=torch.float64) * 2
    y = torch.bernoulli(torch.sigmoid(s), generator=g).long()
    cal = posthoc.create("platt").fit(s, y)
    assert cal.a_ == pytest.approx(1.0, abs=0.05) and cal.b_ == pytest.approx(0.0, abs=0.05)
