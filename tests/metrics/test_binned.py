"""Binned calibration metrics: NumPy references, hand-computed edge cases, library parity, properties."""

import math

import numpy as np
import pytest
import torch

from caltrain import metrics as M

from . import references as R


def _model(rng, n, k, sharp=3.0):
    z = rng.normal(size=(n, k)) * sharp
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    q = np.exp(z / sharp - (z / sharp).max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    labels = (q.cumsum(1) > rng.uniform(size=(n, 1))).argmax(1)
    return p, labels


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
@pytest.mark.parametrize("binning", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [1, 7, 15])
def test_ece_matches_numpy_reference(rng, norm, binning, n_bins):
    p, y = _model(rng, 503, 4)
    got = M.expected_calibration_error(p, y, n_bins=n_bins, norm=norm, binning=binning)
    assert got.dtype == torch.float64
    assert float(got) == pytest.approx(R.ece(p, y, n_bins, norm, binning), abs=1e-12)


def test_hand_computed_edges_zero_one_and_empty_bins():
    # confidences 0.5 (K=2 tie -> class 0), exactly on edge 0.6, 1.0 (last bin), 0.8; 5 bins (lo, hi]
    p = torch.tensor([[0.5, 0.5], [0.6, 0.4], [0.0, 1.0], [0.2, 0.8]], dtype=torch.float64)
    y = torch.tensor([1, 0, 1, 1])
    curve = M.reliability_curve(p, y, n_bins=5)
    # 0.5 -> bin 2 (0.4, 0.6]; 0.6 -> bin 2 (edge, lower bin); 1.0 -> bin 4; 0.8 -> bin 3 (0.6, 0.8]
    assert curve.count.tolist() == [0.0, 0.0, 2.0, 1.0, 1.0]
    assert math.isnan(curve.accuracy[0]) and math.isnan(curve.confidence[1])
    assert curve.confidence[2] == pytest.approx(0.55) and curve.accuracy[2] == 0.5
    expected = (2 * abs(0.5 - 0.55) + abs(1 - 0.8) + abs(1 - 1.0)) / 4
    assert float(M.expected_calibration_error(p, y, n_bins=5)) == pytest.approx(expected, abs=1e-15)
    assert float(M.expected_calibration_error(p, y, n_bins=5, norm="max")) == pytest.approx(0.2)
    assert curve.edges.tolist() == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_confidence_zero_goes_to_first_bin_and_one_to_last():
    idx = M.binning.uniform_bin_index(torch.tensor([0.0, 1.0, 0.1, 0.1 + 1e-12], dtype=torch.float64), 10)
    assert idx.tolist() == [0, 9, 0, 1]


def test_single_sample_and_binary():
    p = torch.tensor([[0.3, 0.7]], dtype=torch.float64)
    assert float(M.expected_calibration_error(p, torch.tensor([1]))) == pytest.approx(0.3)
    assert float(M.expected_calibration_error(p, torch.tensor([0]))) == pytest.approx(0.7)
    ada = M.expected_calibration_error(p, torch.tensor([0]), binning="quantile", n_bins=15)
    assert float(ada) == pytest.approx(0.7)
    assert float(M.classwise_calibration_error(p, torch.tensor([1]))) == pytest.approx(0.3)


def test_quantile_keeps_every_sample_and_equalises_mass(rng):
    p, y = _model(rng, 103, 3)
    conf = torch.from_numpy(p.max(1))
    stats = M.binned_statistics(conf, torch.from_numpy(p.argmax(1) == y), 10, "quantile")
    assert stats.count.sum() == 103 and set(stats.count.tolist()) == {10.0, 11.0}
    assert torch.all(stats.edges[1:] >= stats.edges[:-1])


def test_quantile_ties_are_order_invariant():
    conf = torch.tensor([0.5] * 6 + [0.9] * 2, dtype=torch.float64)
    correct = torch.tensor([1, 1, 1, 0, 0, 0, 1, 1])
    a = M.binned_statistics(conf, correct, 2, "quantile")
    perm = torch.tensor([3, 4, 5, 0, 1, 2, 6, 7])
    b = M.binned_statistics(conf[perm], correct[perm], 2, "quantile")
    assert torch.equal(a.acc_sum, b.acc_sum)
    assert a.acc_sum.tolist() == [2.0, 3.0]  # 4 of the 6 ties in bin 0, at their mean outcome 1/2


def test_classwise_matches_reference(rng):
    p, y = _model(rng, 400, 5)
    for n_bins in (1, 10):
        got = float(M.classwise_calibration_error(p, y, n_bins=n_bins))
        assert got == pytest.approx(R.classwise_ece(p, y, n_bins), abs=1e-12)


def test_binary_matches_sklearn_calibration_curve(rng):
    from sklearn.calibration import calibration_curve

    s = rng.uniform(size=1000)
    y = (rng.uniform(size=1000) < s**2).astype(int)
    curve_true, curve_pred = calibration_curve(y, s, n_bins=10, strategy="uniform")
    counts = np.histogram(s, bins=np.linspace(0, 1, 11))[0]
    counts = counts[counts > 0]
    expected = float(np.sum(counts / 1000 * np.abs(curve_true - curve_pred)))
    assert float(M.binary_calibration_error(s, y, n_bins=10)) == pytest.approx(expected, abs=1e-12)
    stacked = np.stack([1 - s, s], 1)
    curve = M.reliability_curve(stacked, y, n_bins=10)  # top-label differs; positive-class bins via classwise
    assert curve.count.sum() == 1000


def test_debiased_matches_reference_and_is_below_plugin(rng):
    p, y = _model(rng, 600, 3)
    got = float(M.debiased_calibration_error(p, y, n_bins=10))
    assert got == pytest.approx(R.debiased_l2(p, y, 10), abs=1e-12)
    assert got <= float(M.expected_calibration_error(p, y, n_bins=10, norm="l2", binning="quantile")) + 1e-12


def test_parity_with_torchmetrics(rng):
    from torchmetrics.functional.classification import multiclass_calibration_error

    p, y = _model(rng, 2000, 6)
    pt, yt = torch.from_numpy(p), torch.from_numpy(y)
    for norm in ("l1", "l2", "max"):
        ref = multiclass_calibration_error(pt.double(), yt, num_classes=6, n_bins=15, norm=norm)
        assert float(M.expected_calibration_error(pt, yt, norm=norm)) == pytest.approx(float(ref), abs=1e-6)


def test_parity_with_netcal(rng):
    from netcal.metrics import ECE

    p, y = _model(rng, 2000, 4)
    ref = ECE(bins=15).measure(p, y)
    assert float(M.expected_calibration_error(p, y)) == pytest.approx(float(ref), abs=1e-9)


@pytest.mark.parametrize("n", [2000, 20000])
def test_ece_vanishes_on_calibrated_data(n):
    gen = torch.Generator().manual_seed(n)
    conf = 0.5 + 0.5 * torch.rand(n, generator=gen, dtype=torch.float64)
    correct = torch.rand(n, generator=gen, dtype=torch.float64) < conf
    probs = torch.stack([conf, 1 - conf], 1)
    labels = torch.where(correct, 0, 1)
    ece = float(M.expected_calibration_error(probs, labels, n_bins=15))
    assert ece < 3 * math.sqrt(15 / n)


def test_invariant_to_sample_order(rng):
    p, y = _model(rng, 300, 4)
    perm = rng.permutation(300)
    for f in (M.expected_calibration_error, M.adaptive_calibration_error, M.classwise_calibration_error):
        assert float(f(p, y)) == pytest.approx(float(f(p[perm], y[perm])), abs=1e-14)


def test_float64_exact_at_ten_million_samples():
    # 10^7 float32 predictions at confidence 0.75, exactly 75% correct: the ECE is exactly 0.
    n = 10_000_000
    probs = torch.empty(n, 2, dtype=torch.float32)
    probs[:, 0] = 0.75
    probs[:, 1] = 0.25
    labels = torch.zeros(n, dtype=torch.long)
    labels[: n // 4] = 1
    assert float(M.expected_calibration_error(probs, labels, validate_args=False)) < 1e-12


def test_dense_inputs_pool_every_pixel_and_ignore_index(rng):
    p, y = _model(rng, 2 * 3 * 4, 3)
    dense = torch.from_numpy(p).reshape(2, 3, 4, 3).permute(0, 3, 1, 2)  # [N, K, H, W]
    labels = torch.from_numpy(y).reshape(2, 3, 4).clone()
    flat = float(M.expected_calibration_error(p, y))
    assert float(M.expected_calibration_error(dense, labels)) == pytest.approx(flat, abs=1e-14)
    labels[0, 0, :] = 255
    keep = labels.reshape(-1) != 255
    got = float(M.expected_calibration_error(dense, labels, ignore_index=255))
    assert got == pytest.approx(R.ece(p[keep.numpy()], y[keep.numpy()]), abs=1e-14)


def test_numpy_and_float32_inputs_give_float64(rng):
    p, y = _model(rng, 50, 3)
    out = M.expected_calibration_error(p.astype(np.float32), y)
    assert out.dtype == torch.float64


def test_from_logits_is_explicit(rng):
    z = rng.normal(size=(100, 4)) * 3
    y = rng.integers(0, 4, 100)
    p = torch.softmax(torch.from_numpy(z), 1)
    assert float(M.expected_calibration_error(z, y, from_logits=True)) == pytest.approx(
        float(M.expected_calibration_error(p, y)), abs=1e-14
    )
    with pytest.raises(ValueError, match="from_logits=True"):
        M.expected_calibration_error(z, y)
