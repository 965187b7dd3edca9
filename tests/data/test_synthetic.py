"""The Gaussian-mixture dataset: exact posterior, calibration of the posterior, OOD sets, determinism."""

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from caltrain import data
from caltrain.data.synthetic import GaussianMixture


def reference_posterior(x, means, prior, eta):
    """Bayes' rule with scipy's Gaussian densities, then the symmetric-noise channel."""
    identity = np.eye(means.shape[1])
    dens = np.stack([prior[k] * multivariate_normal(means[k], identity).pdf(x) for k in range(len(prior))], 1)
    clean = dens / dens.sum(1, keepdims=True)
    return (1 - eta) * clean + eta / len(prior)


def test_posterior_matches_scipy_reference():
    mix = GaussianMixture.random(4, 3, separation=2.0, imbalance=5.0, label_noise=0.1, seed=1)
    x, _ = mix.sample(50, torch.Generator().manual_seed(0))
    ref = reference_posterior(x.double().numpy(), mix.means.numpy(), mix.prior.numpy(), 0.1)
    np.testing.assert_allclose(mix.posterior(x).numpy(), ref, rtol=1e-9, atol=1e-12)


def test_true_posterior_is_calibrated_on_samples():
    # If q is the true posterior, P(y = k | q_k in bin) = mean q_k in the bin (up to sampling noise).
    mix = GaussianMixture.random(3, 2, separation=2.0, label_noise=0.1, seed=0)
    x, y = mix.sample(60_000, torch.Generator().manual_seed(1))
    q = mix.posterior(x).numpy()
    onehot = np.eye(3)[y.numpy()]
    bins = np.minimum((q * 10).astype(int), 9).ravel()
    for b in range(10):
        m = bins == b
        if m.sum() > 2000:
            assert abs(onehot.ravel()[m].mean() - q.ravel()[m].mean()) < 0.015


def test_separation_sets_the_distance_between_means():
    mix = GaussianMixture.random(10, 500, separation=4.0, seed=0)
    dists = torch.cdist(mix.means, mix.means)[~torch.eye(10, dtype=torch.bool)]
    assert float(dists.mean()) == pytest.approx(4.0, rel=0.05)


def test_dataset_defaults_deterministic_and_seed_dependent():
    a = data.create("synthetic", seed=0, train_size=100, val_size=50, test_size=80)
    b = data.create("synthetic", seed=0, train_size=100, val_size=50, test_size=80)
    c = data.create("synthetic", seed=1, train_size=100, val_size=50, test_size=80)
    assert a.train.x.equal(b.train.x) and a.test.y.equal(b.test.y) and not a.train.x.equal(c.train.x)
    # Each split is drawn independently: changing one size leaves the others as they were.
    d = data.create("synthetic", seed=0, train_size=300, val_size=50, test_size=80)
    assert d.test.x.equal(a.test.x) and d.val.x.equal(a.val.x)
    assert a.kind == "features" and a.input_shape == (32,) and a.num_classes == 10
    assert torch.allclose(a.test.true_posterior.sum(1), torch.ones(80, dtype=torch.float64))


def test_imbalance_sets_the_class_prior():
    ds = data.create("synthetic", imbalance=100.0, train_size=20_000, val_size=10, test_size=10)
    counts = torch.bincount(ds.train.y, minlength=10).double()
    assert float(counts[0] / counts[-1]) == pytest.approx(100, rel=0.35)


def test_ood_shifted_keeps_labels_and_posterior_of_unshifted_point():
    ds = data.create("synthetic", train_size=50, val_size=10, test_size=40)
    shifted = ds.ood("shifted")["shifted"]
    delta = (shifted.x.double() - ds.test.x.double()).mean(0)
    assert float(delta.norm()) == pytest.approx(2.0, rel=1e-4)  # ood_shift default
    assert shifted.y.equal(ds.test.y)
    assert torch.allclose(shifted.true_posterior, ds.test.true_posterior, atol=1e-5)
    far = ds.ood("far")["far"]
    assert bool((far.y == data.NO_LABEL).all()) and far.true_posterior is None
    far_dist = torch.cdist(far.x.double().mean(0, keepdim=True), ds.test.x.double().mean(0, keepdim=True))
    assert float(far_dist) > 8.0


def test_ood_selection():
    ds = data.create("synthetic", train_size=10, val_size=10, test_size=10, ood="far")
    assert ds.ood_names == ("far",)
    with pytest.raises(ValueError, match="unknown OOD set.*'near'.*valid names: shifted, far"):
        data.create("synthetic", train_size=10, val_size=10, test_size=10, ood=["near"])


@pytest.mark.parametrize(
    "options, match",
    [
        ({"label_noise": 1.5}, "label_noise"),
        ({"separation": -1.0}, "separation"),
        ({"train_size": 0}, "train_size"),
        ({"num_classes": 1}, "num_classes"),
        ({"imbalance": 0.5}, "imbalance_factor"),
    ],
)
def test_bad_options_fail_clearly(options, match):
    with pytest.raises(ValueError, match=match):
        data.create("synthetic", **options)
