"""Long-tailed variants: the exponential profile of Cui et al. 2019 / Cao et al. 2019."""

import numpy as np
import pytest
import torch

from caltrain import data
from caltrain.data.splits import channel_stats
from caltrain.data.long_tail import exponential_profile, long_tailed_counts, long_tailed_indices


def reference_counts(n_max, num_classes, rho):
    """Cui et al.'s get_img_num_per_cls: n_max * (1/rho)^(k / (K - 1)), floored."""
    return [int(n_max * (1.0 / rho) ** (k / (num_classes - 1.0))) for k in range(num_classes)]


@pytest.mark.parametrize("rho", [10, 50, 100])
def test_counts_match_the_reference_formula(rho):
    counts = long_tailed_counts(torch.full((10,), 5000), rho)
    ref = reference_counts(5000, 10, rho)
    # Floating point may put the reference one below an exact integer; we never are.
    assert all(r <= c <= r + 1 for c, r in zip(counts.tolist(), ref))
    assert counts[0] == 5000 and counts[-1] == 5000 // rho


def test_profile_endpoints():
    p = exponential_profile(5, 100.0)
    assert p[0] == 1.0 and abs(p[-1] - 0.01) < 1e-15 and bool((p[1:] < p[:-1]).all())
    with pytest.raises(ValueError, match="imbalance_factor"):
        exponential_profile(5, 0.5)


def test_indices_keep_each_class_quota_and_are_deterministic(rng):
    labels = torch.from_numpy(rng.integers(0, 4, 1000))
    idx = long_tailed_indices(labels, 4, 10.0, seed=1)
    kept = torch.bincount(labels[idx], minlength=4)
    assert kept.tolist() == long_tailed_counts(torch.bincount(labels, minlength=4), 10.0).tolist()
    assert idx.equal(torch.unique(idx)) and idx.equal(long_tailed_indices(labels, 4, 10.0, seed=1))
    assert not idx.equal(long_tailed_indices(labels, 4, 10.0, seed=2))


def test_create_long_tailed_train_and_val_balanced_test():
    base = data.create("synthetic", train_size=1000, val_size=500, test_size=300)
    ds = data.create("synthetic", train_size=1000, val_size=500, test_size=300, imbalance_factor=10)
    counts = torch.bincount(ds.train.y, minlength=10)
    assert counts[0] / counts[-1] == pytest.approx(10, rel=0.15)
    assert torch.bincount(ds.val.y, minlength=10)[-1] < torch.bincount(ds.val.y, minlength=10)[0]
    assert ds.test.y.equal(base.test.y)  # test untouched
    assert ds.train.true_posterior is None and ds.test.true_posterior is not None
    assert ds.options["imbalance_factor"] == 10
    sizes = dict(train_size=1000, val_size=500, test_size=300)
    balanced_val = data.create("synthetic", **sizes, imbalance_factor=10, balanced_val=True)
    assert balanced_val.val.y.equal(base.val.y)
    np.testing.assert_allclose(ds.mean, channel_stats(ds.train.x)[0])  # statistics of the long-tailed split
