"""Dense binary calibration: pooled pixel ECE / OE / UE against a NumPy reference, streaming, masks, errors."""

import numpy as np
import pytest
import torch

from caltrain.metrics import (
    DenseCalibration,
    binary_calibration_error,
    brier_score,
    dense_calibration_error,
    expected_calibration_error,
    negative_log_likelihood,
)
from caltrain.metrics.binning import quantile_bin_index


def reference(s, y, n_bins=10):
    """NumPy reference from the authors' ECE.py formulas (bins (lo, hi] by comparison with j / B)."""
    s, y = np.asarray(s, np.float64).ravel(), np.asarray(y).ravel().astype(int)
    pred = (s >= 0.5).astype(int)
    conf = np.maximum(s, 1 - s)
    correct = (pred == y).astype(float)
    edges = [j / n_bins for j in range(n_bins + 1)]
    ece = oe = ue = 0.0
    for b in range(n_bins):
        m = (conf > edges[b]) & (conf <= edges[b + 1]) if b else (conf <= edges[1])
        if m.any():
            w, c, a = m.mean(), conf[m].mean(), correct[m].mean()
            ece += w * abs(a - c)
            oe += w * c * max(c - a, 0)
            ue += w * (1 - c) * max(a - c, 0)
    p_y = np.where(y == 1, s, 1 - s)
    return {"ece": ece, "oe": oe, "ue": ue, "accuracy": correct.mean(), "confidence": conf.mean(),
            "nll": -np.log(np.maximum(p_y, np.finfo(float).tiny)).mean(), "brier": ((s - y) ** 2).mean(),
            "n": float(s.size)}


def maps(n=5, h=12, w=9, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, h, w, generator=g) < 0.3).long()
    z = 2.0 * (2 * y - 1) + 1.5 * torch.randn(n, h, w, generator=g, dtype=torch.float64)
    return torch.sigmoid(z).to(dtype), y, z


@pytest.mark.parametrize("n_bins", [1, 10, 15])
def test_matches_numpy_reference(n_bins):
    s, y, _ = maps()
    out = dense_calibration_error(s, y, n_bins)
    ref = reference(s.numpy(), y.numpy(), n_bins)
    for k, v in ref.items():
        assert out[k] == pytest.approx(v, abs=1e-12), k


def test_shapes_logits_and_numpy_agree():
    s, y, z = maps()
    base = dense_calibration_error(s, y)
    assert dense_calibration_error(s[:, None], y) == pytest.approx(base, abs=1e-15)
    assert dense_calibration_error(s[:, None], y[:, None]) == pytest.approx(base, abs=1e-15)
    assert dense_calibration_error(s.numpy(), y.numpy().astype(np.uint8)) == pytest.approx(base, abs=1e-15)
    assert dense_calibration_error(s, y.bool()) == pytest.approx(base, abs=1e-15)
    assert dense_calibration_error(s, y.double()) == pytest.approx(base, abs=1e-15)
    assert dense_calibration_error(z[:, None], y, from_logits=True) == pytest.approx(base, abs=1e-12)


def test_agrees_with_existing_binary_paths():
    s, y, _ = maps(seed=3)
    s = s[s != 0.5].reshape(-1)  # s = 0.5: argmax picks background, the dense convention foreground
    y = y.reshape(-1)[: s.numel()]
    out = dense_calibration_error(s[None], y[None], 15)
    p2 = torch.stack([1 - s, s], 1)
    assert out["ece"] == pytest.approx(float(expected_calibration_error(p2, y, 15)), abs=1e-12)
    assert out["nll"] == pytest.approx(float(negative_log_likelihood(p2, y)), abs=1e-12)
    assert out["brier"] == pytest.approx(float(brier_score(p2, y)) / 2, abs=1e-12)
    # binary_calibration_error bins s against y: the same pixels when every s > 0.5 and every y = 1
    hi = s.clamp(min=0.5 + 1e-9)
    assert dense_calibration_error(hi[None], torch.ones_like(y)[None], 1)["ece"] == pytest.approx(
        float(binary_calibration_error(hi, torch.ones_like(y), 1)), abs=1e-12)


def test_ignore_index_and_valid_mask():
    s, y, _ = maps(seed=1)
    drop = torch.rand(y.shape, generator=torch.Generator().manual_seed(2)) < 0.2
    ref = reference(s[~drop].numpy(), y[~drop].numpy())
    y255 = y.masked_fill(drop, 255)
    assert dense_calibration_error(s, y255, ignore_index=255) == pytest.approx(ref, abs=1e-12)
    assert dense_calibration_error(s, y, valid_mask=~drop) == pytest.approx(ref, abs=1e-12)
    both = drop | (torch.arange(y.numel()).reshape(y.shape) % 7 == 0)
    ref2 = reference(s[~both].numpy(), y[~both].numpy())
    assert dense_calibration_error(s, y255, ignore_index=255, valid_mask=~both) == pytest.approx(ref2, abs=1e-12)
    with pytest.raises(ValueError, match="no valid pixel"):
        dense_calibration_error(s, y, valid_mask=torch.zeros_like(drop))


@pytest.mark.parametrize("splits", [[5], [1, 1, 1, 1, 1], [2, 3], [4, 1]])
def test_streaming_equals_function_on_concatenation(splits):
    s, y, _ = maps(n=5, seed=4)
    metric = DenseCalibration(n_bins=12)
    for ps, ys in zip(s[:, None].split(splits), y.split(splits)):
        metric.update(ps, ys)
    expected = dense_calibration_error(s, y, 12)
    assert metric.compute() == pytest.approx(expected, abs=1e-13)
    curve = metric.curve()
    assert float(curve.count.sum()) == s.numel()
    other = DenseCalibration(n_bins=12)
    half = DenseCalibration(n_bins=12)
    other.update(s[:2], y[:2]); half.update(s[2:], y[2:])
    assert other.merge(half).compute() == pytest.approx(expected, abs=1e-13)
    metric.reset()
    with pytest.raises(ValueError, match="no samples"):
        metric.compute()


def test_streaming_state_is_o_of_bins():
    metric = DenseCalibration(n_bins=10, validate_args=False)
    for seed in range(3):
        s, y, _ = maps(n=2, h=64, w=64, seed=seed)
        metric.update(s, y)
    assert sum(v.numel() for v in metric._state.values()) == 3 * 10 + 3


def test_streaming_mask_and_logits():
    s, y, z = maps(seed=5)
    keep = s > 0.1
    metric = DenseCalibration(n_bins=10, from_logits=True)
    metric.update(z[:2], y[:2], valid_mask=keep[:2]); metric.update(z[2:], y[2:], valid_mask=keep[2:])
    assert metric.compute() == pytest.approx(dense_calibration_error(s, y, valid_mask=keep), abs=1e-12)


def test_quantile_binning():
    s, y, _ = maps(seed=6, dtype=torch.float64)
    out = dense_calibration_error(s, y, 10, binning="quantile")
    conf = torch.maximum(s, 1 - s).reshape(-1)
    correct = ((s >= 0.5).long() == y).reshape(-1).double()
    idx = quantile_bin_index(conf, 10)  # continuous scores: no ties
    ece = sum(abs(float(correct[idx == b].sum() - conf[idx == b].sum())) for b in range(10)) / conf.numel()
    assert out["ece"] == pytest.approx(ece, abs=1e-12)
    assert out["accuracy"] == dense_calibration_error(s, y)["accuracy"]


def test_per_image_mean_is_a_separate_convention():
    s, y, _ = maps(n=4, seed=7)
    s[0] = 0.99  # one very different image
    per = dense_calibration_error(s, y, per_image_mean=True)
    refs = [reference(s[i].numpy(), y[i].numpy()) for i in range(4)]
    assert per["ece"] == pytest.approx(np.mean([r["ece"] for r in refs]), abs=1e-12)
    assert per["n"] == 4.0
    assert per["ece"] != pytest.approx(dense_calibration_error(s, y)["ece"], abs=1e-6)
    mask = torch.ones_like(y, dtype=torch.bool)
    mask[1] = False  # an image with no valid pixel is left out
    per3 = dense_calibration_error(s, y, valid_mask=mask, per_image_mean=True)
    assert per3["n"] == 3.0
    assert per3["ece"] == pytest.approx(np.mean([refs[i]["ece"] for i in (0, 2, 3)]), abs=1e-12)


def test_ood_empty_masks():
    """OOD split of texture images with empty masks: mean confidence and ECE just work."""
    g = torch.Generator().manual_seed(8)
    s = torch.rand(3, 1, 16, 16, generator=g, dtype=torch.float64) * 0.3  # mostly confident background
    y = torch.zeros(3, 16, 16, dtype=torch.long)
    out = dense_calibration_error(s, y)
    ref = reference(s.numpy(), y.numpy())
    assert out == pytest.approx(ref, abs=1e-12)
    assert out["accuracy"] == 1.0 and out["confidence"] == pytest.approx(float((1 - s).mean()), abs=1e-12)
    assert out["oe"] == 0.0 and out["ece"] == pytest.approx(1 - out["confidence"], abs=1e-12)


def test_bad_inputs():
    s, y, _ = maps()
    with pytest.raises(ValueError, match=r"targets: expected values in \{0, 1\}.*binarise"):
        dense_calibration_error(s, y * 0.5)
    with pytest.raises(ValueError, match=r"targets: expected values in \{0, 1\}"):
        dense_calibration_error(s, y * 2)
    with pytest.raises(ValueError, match="targets: expected shape"):
        dense_calibration_error(s, y[:, :-1])
    with pytest.raises(ValueError, match="targets: expected shape"):
        dense_calibration_error(s[:, None], y[:, None, :, :].expand(-1, 2, -1, -1))
    with pytest.raises(ValueError, match="n_bins"):
        dense_calibration_error(s, y, 10**6)
    with pytest.raises(ValueError, match="from_logits"):
        dense_calibration_error(s * 3 - 1, y)
    with pytest.raises(ValueError, match="NaN"):
        dense_calibration_error(s.masked_fill(y == 1, float("nan")), y)
    with pytest.raises(TypeError, match="floating-point"):
        dense_calibration_error(y, y)
    with pytest.raises(ValueError, match="binning"):
        dense_calibration_error(s, y, binning="equal")
    with pytest.raises(TypeError, match="valid_mask"):
        dense_calibration_error(s, y, valid_mask=y)
    with pytest.raises(ValueError, match="valid_mask"):
        dense_calibration_error(s, y, valid_mask=torch.ones(3, dtype=torch.bool))


def test_uint8_maps_are_k_over_255():
    """8-bit maps (PNG predictions) take the histogram shortcut and equal the float64 path on k / 255."""
    g = torch.Generator().manual_seed(9)
    k = torch.randint(0, 256, (3, 1, 20, 17), generator=g, dtype=torch.uint8)
    k[0, 0, :3] = 255; k[1, 0, :3] = 0; k[2, 0, 0, :5] = 128; k[2, 0, 1, :5] = 127  # saturated and threshold
    y = (torch.rand(3, 20, 17, generator=g) < 0.4).long()
    s = k.double() / 255
    for n_bins in (1, 10, 15):
        assert dense_calibration_error(k, y, n_bins) == pytest.approx(dense_calibration_error(s, y, n_bins), abs=1e-12)
        expected = reference(s.numpy(), y.numpy(), n_bins)
        assert dense_calibration_error(k, y, n_bins) == pytest.approx(expected, abs=1e-12)
    metric = DenseCalibration(n_bins=10)
    metric.update(k[:1], y[:1]); metric.update(k[1:], y[1:], valid_mask=y[1:] >= 0)
    assert metric.compute() == pytest.approx(dense_calibration_error(s, y), abs=1e-12)
    assert dense_calibration_error(k, y, binning="quantile") == pytest.approx(
        dense_calibration_error(s, y, binning="quantile"), abs=1e-12)
    with pytest.raises(TypeError, match="uint8"):
        dense_calibration_error(k, y, from_logits=True)
