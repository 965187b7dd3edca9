"""NLL, Brier, accuracy, top-k; risk-coverage, AURC, E-AURC; OOD scores and detection metrics."""

import math

import numpy as np
import pytest
import torch

from caltrain import metrics as M

from . import references as R


def _probs(rng, n, k):
    p = rng.dirichlet(np.ones(k) * 0.5, n)
    return p, rng.integers(0, k, n)


def test_nll_brier_accuracy_match_sklearn(rng):
    from sklearn.metrics import accuracy_score, log_loss, top_k_accuracy_score

    p, y = _probs(rng, 400, 5)
    assert float(M.negative_log_likelihood(p, y)) == pytest.approx(log_loss(y, p, labels=range(5)), rel=1e-12)
    brier = np.mean(np.sum((p - np.eye(5)[y]) ** 2, 1))
    assert float(M.brier_score(p, y)) == pytest.approx(brier, abs=1e-14)
    assert float(M.accuracy(p, y)) == accuracy_score(y, p.argmax(1))
    for k in (1, 2, 3):
        assert float(M.top_k_accuracy(p, y, k=k)) == pytest.approx(top_k_accuracy_score(y, p, k=k, labels=range(5)))


def test_nll_from_logits_and_zero_probability():
    z = torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64)
    y = torch.tensor([1])
    assert float(M.negative_log_likelihood(z, y, from_logits=True)) == pytest.approx(
        float(-torch.log_softmax(z, 1)[0, 1]), rel=1e-12
    )
    p = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    assert math.isfinite(float(M.negative_log_likelihood(p, torch.tensor([1]))))


def test_brier_range_and_perfect():
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    assert float(M.brier_score(p, torch.tensor([0, 1]))) == 0.0
    assert float(M.brier_score(p, torch.tensor([1, 0]))) == 2.0


def test_aurc_matches_reference_without_ties(rng):
    conf = rng.uniform(size=300)
    correct = (rng.uniform(size=300) < conf).astype(float)
    assert float(M.aurc(conf, correct)) == pytest.approx(R.aurc(conf, correct), abs=1e-14)


def test_aurc_ties_average_over_orders():
    conf = np.array([0.9, 0.5, 0.5, 0.5, 0.1])
    correct = np.array([1, 1, 0, 0, 1.0])
    import itertools

    refs = []
    for perm in itertools.permutations([1, 2, 3]):
        order = [0, *perm, 4]
        err = 1 - correct[order]
        refs.append(np.mean(np.cumsum(err) / np.arange(1, 6)))
    assert float(M.aurc(conf, correct)) == pytest.approx(np.mean(refs), abs=1e-14)
    perm = np.array([3, 1, 4, 0, 2])
    assert float(M.aurc(conf[perm], correct[perm])) == pytest.approx(float(M.aurc(conf, correct)), abs=1e-15)


def test_eaurc_zero_for_a_perfect_ranking_and_nonnegative(rng):
    correct = np.array([1, 1, 1, 0, 0.0])
    conf = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    assert float(M.eaurc(conf, correct)) == pytest.approx(0.0, abs=1e-15)
    c = rng.uniform(size=200)
    ok = rng.uniform(size=200) < 0.7
    assert float(M.eaurc(c, ok)) >= 0
    r = 1 - ok.mean()  # the finite optimum approaches the continuous formula for large N
    big = M.selective.optimal_aurc(100000, int(r * 100000))
    assert float(big) == pytest.approx(r + (1 - r) * math.log(1 - r), abs=1e-3)


def test_risk_at_coverage():
    conf = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([1, 0, 1, 0])
    got = M.risk_at_coverage(conf, correct, [1.0, 0.5, 0.25, 0.3])
    assert got.tolist() == pytest.approx([0.5, 0.5, 0.0, 0.5])
    with pytest.raises(ValueError, match="coverage"):
        M.risk_at_coverage(conf, correct, [0.0])


def test_ood_metrics_match_sklearn(rng):
    from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

    s_in = np.round(rng.normal(1.0, 1.0, 300), 1)  # rounding creates ties
    s_out = np.round(rng.normal(0.0, 1.0, 200), 1)
    y = np.r_[np.ones(300), np.zeros(200)]
    s = np.r_[s_in, s_out]
    res = M.ood_detection(s_in, s_out)
    assert res["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert res["aupr_in"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert res["aupr_out"] == pytest.approx(average_precision_score(1 - y, -s), abs=1e-12)
    fpr, tpr, _ = roc_curve(y, s)
    assert res["fpr_at_95_tpr"] == pytest.approx(fpr[np.searchsorted(tpr, 0.95)], abs=1e-12)


def test_ood_scores():
    z = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.0, 0.0]], dtype=torch.float64)
    p = torch.softmax(z, 1)
    assert torch.allclose(M.ood_score(p, "msp"), p.max(1).values)
    assert torch.allclose(M.ood_score(z, "msp", from_logits=True), p.max(1).values)
    assert torch.allclose(M.ood_score(p, "entropy"), (p * p.log()).sum(1))
    assert torch.allclose(M.ood_score(z, "energy", from_logits=True), torch.logsumexp(z, 1))
    with pytest.raises(ValueError, match="logits"):
        M.ood_score(p, "energy")
    onehot = torch.tensor([[1.0, 0.0]])
    assert float(M.ood_score(onehot, "entropy")) == 0.0
