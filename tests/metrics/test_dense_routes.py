"""The three routes of dense_bin_statistics (float32/16/bf16 keys, float64 arithmetic, 8-bit histogram) agree.

The low-precision route bins each pixel through a key made of two roundings (no comparison with the edges), so
these tests put pixels on and next to every edge, at s = 0.5, at 0 and 1 with either target (p_y = 0), at tiny
values (products of probabilities that underflow), in long runs of one key (saturated maps), across chunk
boundaries (a small chunk size) and in the tails the route treats apart (n not a multiple of 8 or 16); the
reference is the NumPy implementation of the authors' rule in test_dense.py, on the float64 values of the maps.
"""

import numpy as np
import pytest
import torch

import caltrain.metrics.dense as dense
from caltrain.metrics import DenseCalibration, dense_calibration_error
from caltrain.metrics.binning import uniform_bin_index
from caltrain.metrics.dense import dense_bin_statistics

from .test_dense import reference

LOWP = [torch.float32, torch.float16, torch.bfloat16]


def edge_maps(n_bins, dtype, n=3000, seed=0):
    """Random maps in ``dtype`` with every edge j / B, 1 - j / B, 0.5, 0, 1 and their float neighbours."""
    g = torch.Generator().manual_seed(seed)
    n = max(n, 6 * (2 * n_bins + 7) + 100)
    s = torch.rand(n, generator=g).to(dtype)
    e = torch.tensor([j / n_bins for j in range(n_bins + 1)] + [1 - j / n_bins for j in range(n_bins + 1)]
                     + [0.5, 153 / 255, 2.0**-30, 2.0**-140, 1 - 2.0**-24], dtype=torch.float64).to(dtype)
    up, down = torch.nextafter(e, torch.ones_like(e)), torch.nextafter(e, torch.zeros_like(e))
    special = torch.cat([e, up, down]).clamp(0, 1)
    k = special.numel()
    s[:k], s[k : 2 * k] = special, special
    y = torch.rand(n, generator=g) < 0.4
    y[k : 2 * k] = ~y[:k]  # every special value with both targets
    return s, y


@pytest.mark.parametrize("dtype", LOWP)
@pytest.mark.parametrize("n_bins", [1, 2, 3, 7, 10, 15, 16, 31, 100, 511, 512])
def test_low_precision_route_is_exact_on_edges(dtype, n_bins):
    s, y = edge_maps(n_bins, dtype, seed=n_bins)
    fast = dense_bin_statistics(s, y, n_bins)
    general = dense_bin_statistics(s.double(), y, n_bins)  # the float64 route on the same values
    for key in ("count", "acc_sum", "n"):
        assert torch.equal(fast[key], general[key]), key  # bins and outcomes to the pixel
    for key in ("conf_sum", "nll", "brier"):
        assert torch.allclose(fast[key], general[key], rtol=0, atol=1e-10), key
    out = dense_calibration_error(s[None], y[None], n_bins)
    ref = reference(s.double().numpy(), y.numpy(), n_bins)
    assert out == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("n_bins", [1, 2, 3, 10, 15, 16, 100])
def test_float64_route_is_exact_on_edges(n_bins):
    """The float64 route on every edge and its float64 neighbours, e.g. s = 0.5 - 2^-54 with y = 1 (predicted
    background, wrong; 1 - s rounds to 0.5, so p_y must be s itself, not 1 - (1 - s))."""
    s, y = edge_maps(n_bins, torch.float64, seed=n_bins)
    out = dense_calibration_error(s[None], y[None], n_bins)
    assert out == pytest.approx(reference(s.numpy(), y.numpy(), n_bins), abs=1e-12)
    k = torch.tensor([153, 127, 128], dtype=torch.uint8).repeat(50)  # the 8-bit route goes through it too
    t = torch.arange(150) % 2 == 0
    assert dense_calibration_error(k[None], t[None], n_bins) == pytest.approx(
        reference(k.double().numpy() / 255, t.numpy(), n_bins), abs=1e-12)


@pytest.mark.parametrize("n_bins", [513, 4096])
def test_more_bins_than_the_key_route_takes_the_float64_route(n_bins):
    s, y = edge_maps(n_bins, torch.float32)
    s, y = s[None], y[None]
    out = dense_calibration_error(s, y, n_bins)
    assert out == pytest.approx(dense_calibration_error(s.double(), y, n_bins), abs=1e-13)
    assert out == pytest.approx(reference(s.double().numpy(), y.numpy(), n_bins), abs=1e-12)


@pytest.mark.parametrize("chunk", [64, 96, 1 << 15])
@pytest.mark.parametrize("n", [1, 7, 16, 17, 63, 65, 200, 1001])
def test_chunks_tails_and_low_products(monkeypatch, chunk, n):
    """Chunk boundaries, a short last chunk, n % 16 and n % 8 tails, products of 16 that are 0 or underflow."""
    monkeypatch.setattr(dense, "_CHUNK", chunk)
    g = torch.Generator().manual_seed(n)
    s = torch.rand(n, generator=g)
    y = torch.rand(n, generator=g) < 0.5
    zero = torch.rand(n, generator=g) < 0.05
    s[zero & y], s[zero & ~y] = 0.0, 1.0  # p_y = 0: the NLL clamps at the smallest normal
    s[torch.rand(n, generator=g) < 0.05] = 2.0**-140  # a product of 16 such values underflows
    for dtype in (torch.float32, torch.float64):
        out = dense_calibration_error(s.to(dtype)[None], y[None], 10)
        assert out == pytest.approx(reference(s.double().numpy(), y.numpy(), 10), abs=1e-12, rel=1e-14)


def test_saturated_maps():
    """Long runs of one key (the lanes keep the sums exact, not only fast)."""
    y = torch.zeros(4, 256, 256, dtype=torch.bool)
    y[:, 64:192, 64:192] = True
    s = torch.where(y, 1.0, 0.0)
    s[:, :, :8] = 0.5
    s[1] = 1 - s[1]  # everything wrong: p_y = 0
    for dtype in (torch.float32, torch.float64, torch.uint8):
        maps = (s * 255).to(torch.uint8) if dtype == torch.uint8 else s.to(dtype)
        out = dense_calibration_error(maps, y)
        assert out == pytest.approx(reference((maps.double() / (255 if dtype == torch.uint8 else 1)).numpy(),
                                              y.numpy()), abs=1e-12)


def test_half_is_foreground_and_edge_conventions():
    """s = 0.5 is predicted foreground, confidence 0.5 in the bin (0.4, 0.5]; 153/255 depends on the dtype."""
    s = torch.tensor([[0.5, 0.5, 0.7, 0.3]])
    y = torch.tensor([[1, 0, 1, 0]])
    for dtype in LOWP + [torch.float64]:
        m = DenseCalibration(n_bins=10)
        m.update(s.to(dtype), y)
        curve = m.curve()
        assert curve.count[4] == 2 and m.compute()["accuracy"] == 0.75
        # 0.7 and 0.3 land in the bin of their value in this dtype, e.g. 0.7 is the edge e_7 itself in float64
        # (bin 6) and float16(0.7) = 0.70019531 (bin 7)
        conf = torch.stack([s[0, 2].to(dtype).double(), 1 - s[0, 3].to(dtype).double()])
        expected = torch.bincount(uniform_bin_index(conf, 10), minlength=10).double()
        expected[4] += 2
        assert torch.equal(curve.count, expected), dtype
        assert int(uniform_bin_index(conf[:1], 10)) == (7 if dtype == torch.float16 else 6)
    # the 8-bit level 153 is 153 / 255 = 0.6 = the edge e_6 in float64 (bin 5); float32(0.6) > e_6 (bin 6)
    k = torch.tensor([[153]], dtype=torch.uint8)
    one = torch.ones(1, 1, dtype=torch.long)
    for maps, expected in ((k, 5), (k.float() / 255, 6), (k.double() / 255, 5)):
        m = DenseCalibration(n_bins=10)
        m.update(maps, one)
        assert int(torch.nonzero(m.curve().count)) == expected


@pytest.mark.parametrize("dtype", LOWP)
def test_masks_and_streaming_on_low_precision_maps(dtype):
    g = torch.Generator().manual_seed(3)
    s = torch.rand(6, 1, 33, 35, generator=g).to(dtype)
    y = (torch.rand(6, 33, 35, generator=g) < 0.3).long()
    drop = torch.rand(6, 33, 35, generator=g) < 0.2
    ref = reference(s[:, 0][~drop].double().numpy(), y[~drop].numpy())
    assert dense_calibration_error(s, y.masked_fill(drop, 255), ignore_index=255) == pytest.approx(ref, abs=1e-12)
    assert dense_calibration_error(s, y, valid_mask=~drop) == pytest.approx(ref, abs=1e-12)
    metric = DenseCalibration(n_bins=10)
    for i in range(0, 6, 4):
        metric.update(s[i : i + 4], y[i : i + 4], valid_mask=~drop[i : i + 4])
    assert metric.compute() == pytest.approx(ref, abs=1e-12)


@pytest.mark.parametrize("dtype", LOWP + [torch.float64])
def test_range_checks(dtype):
    s = torch.rand(2, 40, 40)
    y = torch.rand(2, 40, 40) < 0.5
    for bad, match in ((s * 1.5, r"\[0, 1\]"), (s - 0.5, r"\[0, 1\]"), (s.masked_fill(y, float("nan")), "NaN"),
                       (s.masked_fill(y, float("inf")), "infinite")):
        with pytest.raises(ValueError, match=match):
            dense_calibration_error(bad.to(dtype), y)
        with pytest.raises(ValueError, match=match):
            DenseCalibration().update(bad.to(dtype), y)
    z = s.clone()
    z[0, 0, 0] = -0.0  # a negative zero is a probability (the bit test fails, the exact check passes)
    assert dense_calibration_error(z.to(dtype), y)["n"] == s.numel()


def test_nll_of_products_matches_log_of_each():
    """The NLL takes one log per product of 16 probabilities: the same number to ~1e-15 per pixel."""
    g = torch.Generator().manual_seed(11)
    z = 6 * torch.randn(200_003, generator=g)
    s = torch.sigmoid(z)  # float32, many saturated values
    y = torch.rand(200_003, generator=g) < torch.sigmoid(z / 2)
    out = dense_calibration_error(s[None], y[None])
    p = np.where(y.numpy(), s.double().numpy(), 1 - s.double().numpy())
    nll = -np.log(np.maximum(p, np.finfo(float).tiny)).mean()
    assert out["nll"] == pytest.approx(nll, abs=1e-14, rel=1e-13)
