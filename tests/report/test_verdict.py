"""The verdict: resample statistics against caltrain.metrics, the choice of the best objective, the interval."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caltrain import metrics
from caltrain.report.verdict import bootstrap_values, choose_reference, verdict, weighted_top_label

from .helpers import predictions


def test_weighted_statistics_equal_the_metrics_on_the_resampled_data():
    """A row of draw counts gives the ECE and accuracy of the data with each sample repeated that often."""
    probs, labels = predictions(n=300, k=4, seed=1)
    rng = np.random.default_rng(0)
    index = rng.integers(0, 300, size=(3, 300))
    weights = np.stack([np.bincount(i, minlength=300) for i in index] + [np.ones(300)])
    ece, acc = weighted_top_label(probs, labels, weights, n_bins=10)
    for r, i in enumerate([*index, np.arange(300)]):
        p, y = probs[torch.from_numpy(i)], labels[torch.from_numpy(i)]
        assert ece[r].item() == pytest.approx(metrics.expected_calibration_error(p, y, n_bins=10).item(), abs=1e-12)
        assert acc[r].item() == pytest.approx((p.argmax(1) == y).double().mean().item(), abs=1e-12)


def test_interval_of_one_objective_agrees_with_metrics_bootstrap():
    """Same percentile bootstrap, other random draws: the intervals agree to a fraction of their width."""
    probs, labels = predictions(n=800, k=4, seed=2)
    values, paired, n_test = bootstrap_values({"a": {0: (probs, labels)}}, n_bins=15, n=2000, seed=0)
    lo, hi = np.quantile(values["ece"]["a"][0, 1:], [0.025, 0.975])
    est, lo_ref, hi_ref = metrics.bootstrap("ece", probs, labels, n=2000, seed=1)
    assert values["ece"]["a"][0, 0] == pytest.approx(est, abs=1e-12) and paired and n_test == 800
    width = hi_ref - lo_ref
    assert abs(lo - lo_ref) < 0.15 * width and abs(hi - hi_ref) < 0.15 * width


def _sharpen(probs: torch.Tensor, t: float) -> torch.Tensor:
    return torch.softmax(torch.log(probs) / t, dim=1)


def test_the_best_objective_at_no_accuracy_cost_and_its_interval():
    probs, labels = predictions(n=3000, k=4, seed=3, temperature=1.0)  # calibrated by construction
    over = _sharpen(probs, 0.5)  # same arg-max, over-confident
    worse = probs.clone()
    flip = torch.arange(3000) % 4 == 0  # a quarter of the predictions moved to another class: less accurate
    worse[flip] = worse[flip].roll(1, dims=1)
    preds = {"ce": {0: (over, labels), 1: (over, labels)}, "good": {0: (probs, labels), 1: (probs, labels)},
             "cheap": {0: (_sharpen(worse, 3.0), labels), 1: (_sharpen(worse, 3.0), labels)}}
    v = verdict("toy", preds, n_bins=15, n=500)
    assert v.reference == "ce" and v.best == "good" and "cheap" not in v.eligible and v.paired
    ece = {o: metrics.expected_calibration_error(p[0][0], labels).item() for o, p in preds.items()}
    assert v.value == pytest.approx(ece, abs=1e-12)
    assert v.delta == pytest.approx(ece["good"] - ece["ce"], abs=1e-12) and v.lo < v.delta < v.hi < 0
    assert v.per_seed_delta == pytest.approx([v.delta, v.delta], abs=1e-12)
    text = v.sentence()
    assert text.startswith("good is the best calibrated at no accuracy cost (mean accuracy ≥ ce's − 0.5 pp)")
    assert "95% CI" in text
    if v.lowest == "cheap":
        assert "less accuracy" in text


def test_the_reference_can_stay_best_and_no_ce_means_the_most_accurate():
    probs, labels = predictions(n=500, k=3, seed=4, temperature=1.0)
    v = verdict("toy", {"ce": {0: (probs, labels)}, "hot": {0: (_sharpen(probs, 0.4), labels)}}, n=200)
    assert v.best == "ce" and v.runner_up[0] == "hot" and v.runner_up[1] > 0 and "stays the best" in v.sentence()
    assert choose_reference(["a", "b"], {"a": 0.7, "b": 0.9}) == "b"
    assert choose_reference(["a", "ce"], {"a": 0.9, "ce": 0.1}) == "ce"
    with pytest.raises(ValueError, match="at least two"):
        verdict("toy", {"ce": {0: (probs, labels)}})
    with pytest.raises(ValueError, match="no seed"):
        verdict("toy", {"ce": {0: (probs, labels)}, "x": {1: (probs, labels)}})


def test_unpaired_test_sets_get_their_own_draws():
    p1, y1 = predictions(n=200, k=3, seed=5)
    p2, y2 = predictions(n=250, k=3, seed=6)
    values, paired, _ = bootstrap_values({"a": {0: (p1, y1)}, "b": {0: (p2, y2)}}, n=50)
    assert not paired and values["ece"]["b"][0, 0] == pytest.approx(
        metrics.expected_calibration_error(p2, y2).item(), abs=1e-12)
