"""Histogram binning and isotonic regression: netcal / scikit-learn references, valid distributions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from caltrain import posthoc
from caltrain.posthoc.histogram import one_vs_rest_normalize
from caltrain.posthoc.isotonic import batched_interp

from .references import nll, np_softmax, sample_logits


def np_histogram_binning(p_val, y_val, p_test, n_bins):
    """One-vs-rest histogram binning, bins (lo, hi], empty bins at their midpoint, renormalised."""
    k = p_val.shape[1]
    edges = np.linspace(0, 1, n_bins + 1)
    out = np.zeros_like(p_test)
    for c in range(k):
        idx_val = np.clip(np.searchsorted(edges, p_val[:, c], side="left") - 1, 0, n_bins - 1)
        idx_test = np.clip(np.searchsorted(edges, p_test[:, c], side="left") - 1, 0, n_bins - 1)
        theta = (edges[:-1] + edges[1:]) / 2
        for b in range(n_bins):
            m = idx_val == b
            if m.any():
                theta[b] = np.mean(y_val[m] == c)
        out[:, c] = theta[idx_test]
    s = out.sum(1, keepdims=True)
    return np.where(s > 0, out / np.where(s > 0, s, 1), 1.0 / k)


@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_histogram_binning_matches_a_numpy_reference(n_bins):
    z, y = sample_logits(1500, 4, seed=n_bins)
    zt, _ = sample_logits(400, 4, seed=100 + n_bins)
    cal = posthoc.create("histogram", n_bins=n_bins, smoothing=0.0).fit(2 * z, y)
    ref = np_histogram_binning(np_softmax(2 * z.numpy()), y.numpy(), np_softmax(2 * zt.numpy()), n_bins)
    np.testing.assert_allclose(cal.predict_proba(2 * zt).numpy(), ref, atol=1e-12)
    # the default mixes in the uniform distribution: (1 - eps) q + eps / K
    smoothed = posthoc.create("histogram", n_bins=n_bins).fit(2 * z, y).predict_proba(2 * zt).numpy()
    np.testing.assert_allclose(smoothed, (1 - 1e-3) * ref + 1e-3 / 4, atol=1e-12)


def test_histogram_binning_matches_netcal():
    netcal_binning = pytest.importorskip("netcal.binning")
    z, y = sample_logits(2000, 3, seed=3)
    zt, _ = sample_logits(500, 3, seed=4)
    ours = posthoc.create("histogram", n_bins=10, smoothing=0.0).fit(z, y).predict_proba(zt).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = netcal_binning.HistogramBinning(bins=10)
        ref.fit(np_softmax(z.numpy()), y.numpy())
        theirs = ref.transform(np_softmax(zt.numpy()))
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_isotonic_matches_scikit_learn_one_vs_rest():
    from sklearn.isotonic import IsotonicRegression

    z, y = sample_logits(1200, 4, seed=5)
    zt, _ = sample_logits(300, 4, seed=6)
    cal = posthoc.create("isotonic", smoothing=0.0).fit(1.7 * z, y)
    p, pt = np_softmax(1.7 * z.numpy()), np_softmax(1.7 * zt.numpy())
    scores = np.stack(
        [IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p[:, c], y.numpy() == c).predict(pt[:, c])
         for c in range(4)], axis=1)
    s = scores.sum(1, keepdims=True)
    np.testing.assert_allclose(cal.predict_proba(1.7 * zt).numpy(), scores / s, atol=1e-12)


def test_batched_interp_matches_numpy_interp_with_padding():
    rng = np.random.default_rng(0)
    xp = [np.sort(rng.uniform(size=n)) for n in (1, 4, 7)]
    fp = [np.sort(rng.uniform(size=len(x))) for x in xp]
    xp[2][3] = xp[2][2]  # a repeated knot
    length = 7
    pad_x = np.stack([np.pad(x, (0, length - len(x)), mode="edge") for x in xp])
    pad_f = np.stack([np.pad(f, (0, length - len(f)), mode="edge") for f in fp])
    x = rng.uniform(-0.1, 1.1, size=(3, 50))
    got = batched_interp(torch.from_numpy(x), torch.from_numpy(pad_x), torch.from_numpy(pad_f)).numpy()
    for k in range(3):
        np.testing.assert_allclose(got[k], np.interp(x[k], xp[k], fp[k]), atol=1e-12)


@pytest.mark.parametrize("name", ["histogram", "isotonic"])
def test_outputs_are_distributions_even_when_every_score_is_zero(name):
    z, y = sample_logits(200, 5, seed=7)
    y = torch.where(y == 0, torch.ones_like(y), y)  # class 0 never occurs: its scores are 0
    cal = posthoc.create(name).fit(z, y)
    zt = torch.zeros(3, 5, dtype=torch.float64)
    zt[:, 0] = 50.0  # all mass on the class never seen
    p = cal.predict_proba(torch.cat([zt, z]))
    assert bool((p >= 0).all())
    torch.testing.assert_close(p.sum(1), torch.ones(len(p), dtype=torch.float64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["histogram", "isotonic"])
def test_smoothing_floors_every_probability_and_bounds_the_nll(name):
    """Regression (issue 17): binning calibrators gave a true class probability 0, an NLL of ~708 per sample."""
    z, y = sample_logits(300, 6, seed=8)
    y = torch.where(y == 0, torch.ones_like(y), y)  # class 0 never occurs in the fitting set
    zt, _ = sample_logits(200, 6, seed=9)
    yt = torch.zeros(200, dtype=torch.long)  # ... but it does at test time
    raw = posthoc.create(name, smoothing=0.0).fit(z, y).predict_proba(zt)
    assert bool((raw.gather(1, yt[:, None]) == 0).any())  # a zero probability on the true class
    cal = posthoc.create(name).fit(z, y)
    p = cal.predict_proba(zt)
    assert float(p.min()) >= 1e-3 / 6 * (1 - 1e-12)
    assert nll(p, yt) <= -np.log(1e-3 / 6) + 1e-9  # at most log(K / eps) nats per sample
    assert cal.params_["smoothing"] == 1e-3
    torch.testing.assert_close(p, (1 - 1e-3) * raw + 1e-3 / 6, atol=1e-12, rtol=0)


@pytest.mark.parametrize("name", ["histogram", "isotonic"])
def test_bad_smoothing_raises(name):
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(ValueError, match="smoothing"):
            posthoc.create(name, smoothing=bad)


def test_one_vs_rest_normalize_all_zero_rows_are_uniform():
    out = one_vs_rest_normalize(torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 3.0, 0.0, 0.0]], dtype=torch.float64))
    assert out.tolist() == [[0.25] * 4, [0.25, 0.75, 0.0, 0.0]]


def test_histogram_bad_bins_raise():
    with pytest.raises(ValueError, match=r"n_bins: expected an integer in \[1, 10000\]"):
        posthoc.create("histogram", n_bins=0)
