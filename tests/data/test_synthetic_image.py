"""The pattern-image dataset: exact posterior of quantised, clipped images; calibration; determinism."""

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import norm

from caltrain import data
from caltrain.data.long_tail import exponential_profile
from caltrain.data.synthetic_image import PatternImages, log_bin_probs, stripe_patterns


def _model(k=3, size=8, contrasts=(20.0, 60.0), noise=30.0, eta=0.0, rho=1.0):
    prior = exponential_profile(k, rho)
    return PatternImages(stripe_patterns(k, size // 2), contrasts, noise, prior / prior.sum(), eta)


def reference_log_pixel(v, mu, sigma):
    """log P(clip(round(mu + sigma e)) = v) with scipy's normal CDF (survival function above the mean)."""
    lo = np.where(v == 0, -np.inf, (v - 0.5 - mu) / sigma)
    hi = np.where(v == 255, np.inf, (v + 0.5 - mu) / sigma)
    return np.log(np.where(v > mu, norm.sf(lo) - norm.sf(hi), norm.cdf(hi) - norm.cdf(lo)))


def reference_posterior(x, model):
    """Brute force: the full-image likelihood of every (class, contrast, position), summed."""
    k, size = model.num_classes, x.shape[-1]
    patch, stride = model.patch, model.stride
    places = [(r, c) for r in range(0, size - patch + 1, stride) for c in range(0, size - patch + 1, stride)]
    patterns = model.patterns.numpy()
    out = []
    for img in x.numpy().astype(np.float64):
        log_lik = np.empty(k)
        for cls in range(k):
            terms = []
            for a in model.contrasts:
                for r, c in places:
                    mean = np.full(img.shape, 128.0)
                    mean[:, r : r + patch, c : c + patch] += a * patterns[cls]
                    terms.append(reference_log_pixel(img, mean, model.noise).sum())
            log_lik[cls] = logsumexp(terms) - math.log(len(terms))
        logits = np.log(model.prior.numpy()) + log_lik
        p = np.exp(logits - logsumexp(logits))
        out.append((1 - model.label_noise) * p + model.label_noise / k)
    return np.array(out)


def test_log_bin_probs_sum_to_one_and_match_scipy():
    for mu in (0.0, 128.0, 250.0):
        lp = log_bin_probs(mu, 25.0).numpy()
        assert math.isclose(np.exp(lp).sum(), 1.0, rel_tol=1e-12)
        np.testing.assert_allclose(lp, reference_log_pixel(np.arange(256.0), mu, 25.0), rtol=1e-9)
    # Far tails stay finite (no log(0)) where a naive difference of CDFs would underflow.
    assert np.isfinite(log_bin_probs(128.0, 2.0).numpy()).all()


@pytest.mark.parametrize("eta, rho", [(0.0, 1.0), (0.2, 4.0)])
def test_posterior_matches_brute_force_reference(eta, rho):
    model = _model(eta=eta, rho=rho)
    x, _ = model.sample(12, 8, torch.Generator().manual_seed(0))
    expected = reference_posterior(x, model)
    np.testing.assert_allclose(model.posterior(x, batch=5).numpy(), expected, rtol=1e-8, atol=1e-12)


def test_true_posterior_is_calibrated_on_samples():
    model = _model(contrasts=(8.0, 20.0), noise=40.0, eta=0.1)
    x, y = model.sample(20_000, 8, torch.Generator().manual_seed(1))
    q = model.posterior(x).numpy()
    onehot = np.eye(3)[y.numpy()]
    bins = np.minimum((q * 10).astype(int), 9).ravel()
    checked = 0
    for b in range(10):
        m = bins == b
        if m.sum() > 1500:
            checked += 1
            assert abs(onehot.ravel()[m].mean() - q.ravel()[m].mean()) < 0.02
    assert checked >= 3


def test_patterns_are_distinct_binary_images():
    p = stripe_patterns(10, 16)
    assert p.shape == (10, 3, 16, 16) and set(p.unique().tolist()) == {0.0, 1.0}
    flat = p.flatten(1)
    assert (torch.cdist(flat, flat) + torch.eye(10) > 0).all()


def test_dataset_shapes_determinism_and_augmentation():
    kw = dict(train_size=30, val_size=10, test_size=20)
    a, b = data.create("synthetic_image", **kw), data.create("synthetic_image", **kw)
    assert a.train.x.equal(b.train.x) and a.train.x.dtype == torch.uint8 and a.input_shape == (3, 32, 32)
    assert a.train.augment == ("crop",) and a.kind == "image"
    assert not a.train.x.equal(data.create("synthetic_image", seed=1, **kw).train.x)
    corrupted = {f"{c}-{s}" for c in ("gaussian_noise", "gaussian_blur", "contrast") for s in range(1, 6)}
    assert set(a.ood_names) == {"uniform_noise"} | corrupted
    blurred = a.ood("gaussian_blur-3")["gaussian_blur-3"]
    assert blurred.x.shape == a.test.x.shape and blurred.y.equal(a.test.y)
    with pytest.raises(ValueError, match="multiple of 4"):
        data.create("synthetic_image", image_size=30, **kw)
    with pytest.raises(ValueError, match="contrasts"):
        data.create("synthetic_image", contrasts=(300.0,), **kw)
