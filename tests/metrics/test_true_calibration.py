"""True calibration error, pointwise error and grouping loss with a known posterior (dense and streaming too)."""

import math
from functools import lru_cache

import numpy as np
import pytest
import torch

from caltrain import metrics as M
from caltrain.metrics.true_calibration import true_calibration_bins


def reference_pointwise(probs, q, norm=1):
    pred = probs.argmax(1)
    gap = np.abs(q[np.arange(len(q)), pred] - probs.max(1))
    return gap.mean() if norm == 1 else np.sqrt((gap**2).mean())


def reference_true(probs, q, n_bins, norm=1):
    """Equal-mass bins by rank (no tied confidences), then |sum (q - c)| per bin, written from the formula."""
    conf, qy = probs.max(1), q[np.arange(len(q)), probs.argmax(1)]
    order = np.argsort(conf, kind="stable")
    n = len(conf)
    total = 0.0
    for b in range(n_bins):
        members = [order[i] for i in range(n) if i * n_bins // n == b]
        if not members:
            continue
        gap = sum(qy[i] - conf[i] for i in members)
        total += abs(gap) if norm == 1 else gap**2 / len(members)
    return total / n if norm == 1 else math.sqrt(total / n)


CURVES = {  # R(C) = E[Q | C] of the analytic model
    "calibrated": lambda c: c,                                        # calibrated, coarse: TCE 0, PCE 0.125
    "wiggle": lambda c: c + 0.1 * np.sin(4 * np.pi * (c - 0.5)),      # R - C changes sign twice
    "overconfident": lambda c: 0.5 + 0.6 * (c - 0.5),
}


@lru_cache(maxsize=None)
def closed_form(kind):
    """(TCE_1, PCE_1) of the analytic model by the float64 midpoint rule on U(0.5, 1): E|R - C|, E max(|R - C|, a)."""
    grid = 0.5 + 0.5 * (np.arange(10**6) + 0.5) / 10**6
    r = CURVES[kind](grid)
    a = 0.5 * np.minimum(r, 1 - r)
    return float(np.abs(r - grid).mean()), float(np.maximum(np.abs(r - grid), a).mean())


def analytic_model(kind, n, rng):
    """K = 2: confidence C ~ U(0.5, 1) on class 0, R(C) known, Q = R(C) +- a(C) (a fair coin), a = min(R, 1 - R) / 2.

    Returns probs, true_posterior and the closed forms (TCE_1, PCE_1).
    """
    c = rng.uniform(0.5, 1.0, n)
    r = CURVES[kind](c)
    q = r + rng.choice([-1.0, 1.0], n) * 0.5 * np.minimum(r, 1 - r)
    probs = np.stack([c, 1 - c], 1)
    return (torch.from_numpy(probs), torch.from_numpy(np.stack([q, 1 - q], 1)), *closed_form(kind))


@pytest.mark.parametrize("norm", [1, 2])
def test_pointwise_matches_reference(rng, norm):
    probs = rng.dirichlet(np.ones(5), 300)
    q = rng.dirichlet(np.ones(5), 300)
    got = M.pointwise_calibration_error(torch.from_numpy(probs), torch.from_numpy(q), norm=norm)
    assert got.dtype == torch.float64 and float(got) == pytest.approx(reference_pointwise(probs, q, norm), rel=1e-12)


@pytest.mark.parametrize(("norm", "n_bins"), [(1, None), (1, 7), (2, None), (2, 40), (1, 500)])
def test_true_matches_reference(rng, norm, n_bins):
    probs = rng.dirichlet(np.ones(5), 300)
    q = rng.dirichlet(np.ones(5), 300)
    got = M.true_calibration_error(torch.from_numpy(probs), torch.from_numpy(q), norm=norm, n_bins=n_bins)
    bins = true_calibration_bins(300) if n_bins is None else n_bins
    assert got.dtype == torch.float64 and float(got) == pytest.approx(reference_true(probs, q, bins, norm), rel=1e-12)


def test_bin_rule():
    assert [true_calibration_bins(n) for n in (1, 2, 8, 9, 1000, 1001, 2000, 10**6)] == [1, 2, 2, 3, 10, 11, 13, 100]
    assert true_calibration_bins(10**15) == 10_000  # MAX_BINS


@pytest.mark.parametrize("seed", range(5))
def test_decomposition_properties(seed):
    """grouping >= 0 always (triangle inequality / Jensen); norm 2 is an exact sum of squares; TCE >= |mean gap|."""
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(1, 400)), int(rng.integers(2, 6))
    probs = torch.from_numpy(rng.dirichlet(np.ones(k) * rng.uniform(0.2, 3), n))
    q = torch.from_numpy(rng.dirichlet(np.ones(k) * rng.uniform(0.2, 3), n))
    if seed == 0:  # tied confidences straddling bins
        probs = torch.from_numpy(np.round(probs.numpy(), 1))
        probs = probs / probs.sum(1, keepdim=True)
    for n_bins in (None, 1, 3, 50):
        d1 = M.true_calibration_decomposition(probs, q, n_bins=n_bins)
        assert set(d1) == set(M.TRUE_CALIBRATION_KEYS)
        assert float(d1["grouping_loss"]) >= 0 and float(d1["true_ece"]) <= float(d1["pointwise_ce"]) + 1e-12
        assert float(d1["grouping_loss"]) == pytest.approx(float(d1["pointwise_ce"] - d1["true_ece"]), abs=1e-15)
        conf, pred = probs.max(1)
        mean_gap = (q.gather(1, pred[:, None]).squeeze(1) - conf).mean().abs()
        assert float(d1["true_ece"]) >= float(mean_gap) - 1e-12  # one bin is the coarsest partition
        d2 = M.true_calibration_decomposition(probs, q, n_bins=n_bins, norm=2)
        assert float(d2["pointwise_ce"] ** 2) == pytest.approx(float(d2["true_ece"] ** 2 + d2["grouping_loss"]), abs=1e-14)
        assert float(d2["grouping_loss"]) >= 0


def test_order_of_tied_confidences_does_not_matter():
    probs = torch.tensor([[0.6, 0.4]] * 4 + [[0.9, 0.1]] * 2, dtype=torch.float64)
    q = torch.tensor([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5], [0.6, 0.4], [0.9, 0.1], [0.7, 0.3]], dtype=torch.float64)
    perm = torch.tensor([3, 0, 5, 2, 4, 1])
    for n_bins in (1, 2, 3, 4):
        a = M.true_calibration_error(probs, q, n_bins=n_bins)
        b = M.true_calibration_error(probs[perm], q[perm], n_bins=n_bins)
        assert float(a) == pytest.approx(float(b), abs=1e-15)


def test_zero_for_the_true_posterior_and_large_pointwise_for_a_calibrated_coarse_model(rng):
    q = rng.dirichlet(np.ones(4) * 0.5, 2000)
    assert float(M.true_calibration_error(torch.from_numpy(q), torch.from_numpy(q))) == 0.0
    # regression (issue 17): true_ece used to be the pointwise error, 0.125 for this calibrated model
    probs, post, tce, pce = analytic_model("calibrated", 20_000, rng)
    out = M.true_calibration_decomposition(probs, post)
    assert tce == 0.0 and pce == pytest.approx(0.125, abs=1e-9)
    assert float(out["true_ece"]) < 0.01 and float(out["pointwise_ce"]) == pytest.approx(pce, abs=0.005)
    assert float(out["grouping_loss"]) > 0.11


@pytest.mark.parametrize("kind", ["calibrated", "wiggle", "overconfident"])
def test_converges_in_n_to_the_closed_form(kind):
    """The estimate approaches the population value as N grows (mean absolute error over seeds)."""
    seeds, errors = {1_000: 8, 10_000: 4, 100_000: 2, 1_000_000: 1}, []
    for n, n_seeds in seeds.items():
        errs = []
        for seed in range(n_seeds):
            probs, post, tce, pce = analytic_model(kind, n, np.random.default_rng(seed))
            out = M.true_calibration_decomposition(probs, post)
            errs.append(abs(float(out["true_ece"]) - tce))
            assert float(out["pointwise_ce"]) == pytest.approx(pce, abs=6 / math.sqrt(n))  # a plain sample mean
        errors.append(float(np.mean(errs)))
    assert errors[-1] < 0.0015 and errors[-1] < errors[0] / 4 and errors[2] < errors[0]
    if kind == "calibrated":  # the only error left is the noise of the bin means: ~0.8 sigma N^(-1/3), decreasing
        assert all(a > b for a, b in zip(errors, errors[1:]))


def test_summary_keys_equal_the_functions():
    gen = torch.Generator().manual_seed(0)
    z = 2 * torch.randn(3000, 6, generator=gen, dtype=torch.float64)
    q = torch.softmax(z, 1)
    y = torch.multinomial(q, 1, generator=gen).squeeze(1)
    p = torch.softmax(2 * z, 1)
    s = M.summarize(p, y, true_posterior=q, n_bins=7)
    d = M.true_calibration_decomposition(p, q)
    for key in M.TRUE_CALIBRATION_KEYS:
        assert s[key] == pytest.approx(float(d[key]), abs=1e-14), key
    assert s["pointwise_ce"] == pytest.approx(float(M.pointwise_calibration_error(p, q)), abs=1e-14)
    assert "true_ece" not in M.summarize(p, y)


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"true_posterior: expected shape \[3, 2\]"):
        M.true_calibration_error(torch.full((3, 2), 0.5), torch.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match="probs"):
        M.true_calibration_error(torch.full((3, 2), 0.7), torch.full((3, 2), 0.5))
    with pytest.raises(ValueError, match="norm"):
        M.true_calibration_error(torch.full((3, 2), 0.5), torch.full((3, 2), 0.5), norm=3)
    with pytest.raises(ValueError, match="n_bins"):
        M.true_calibration_error(torch.full((3, 2), 0.5), torch.full((3, 2), 0.5), n_bins=0)
    with pytest.raises(ValueError, match="norm"):
        M.pointwise_calibration_error(torch.full((3, 2), 0.5), torch.full((3, 2), 0.5), norm=0)


def test_the_former_data_re_export_names_the_new_owner():
    with pytest.raises(ImportError, match="caltrain.metrics.pointwise_calibration_error"):
        from caltrain.data import true_calibration_error  # noqa: F401


# -- dense binary maps -------------------------------------------------------------------------------------------


def _maps(rng, n=3, h=6, w=7):
    s = rng.uniform(0, 1, (n, 1, h, w))
    s[np.abs(s - 0.5) < 1e-3] = 0.6  # s = 0.5 exactly: dense predicts foreground, argmax background
    t = np.clip(s + rng.normal(0, 0.2, s.shape), 0, 1)
    return torch.from_numpy(s), torch.from_numpy(t)


@pytest.mark.parametrize("norm", [1, 2])
def test_dense_equals_the_two_class_top_label_form(rng, norm):
    s, t = _maps(rng)
    out = M.dense_true_calibration_error(s, t, norm=norm)
    probs = torch.stack([1 - s.reshape(-1), s.reshape(-1)], 1)
    post = torch.stack([1 - t.reshape(-1), t.reshape(-1)], 1)
    ref = M.true_calibration_decomposition(probs, post, norm=norm)
    assert set(out) == set(M.DENSE_TRUE_KEYS) and out["n"] == s.numel()
    for key in M.TRUE_CALIBRATION_KEYS:
        assert out[key] == pytest.approx(float(ref[key]), abs=1e-14), key
    # channel dim optional on either side; float32 input; logits
    assert M.dense_true_calibration_error(s[:, 0].float(), t, norm=norm)["true_ece"] == pytest.approx(
        M.dense_true_calibration_error(s.float(), t[:, 0], norm=norm)["true_ece"], abs=1e-15)
    z = torch.logit(s)
    assert M.dense_true_calibration_error(z, t, from_logits=True, norm=norm)["pointwise_ce"] == pytest.approx(
        out["pointwise_ce"], abs=1e-12)


def test_dense_convention_at_one_half_and_valid_mask():
    s = torch.tensor([[[0.5, 0.8, 0.1]]], dtype=torch.float64)
    t = torch.tensor([[[0.7, 0.8, 0.4]]], dtype=torch.float64)
    # s = 0.5 predicts foreground: Q = t = 0.7, C = 0.5; the others: |0.8 - 0.8| = 0 and Q = 0.6, C = 0.9
    out = M.dense_true_calibration_error(s, t, n_bins=1)
    assert out["pointwise_ce"] == pytest.approx((0.2 + 0 + 0.3) / 3) and out["true_ece"] == pytest.approx(0.1 / 3)
    mask = torch.tensor([[[False, True, True]]])
    out = M.dense_true_calibration_error(s, t, valid_mask=mask, n_bins=1)
    assert out["n"] == 2 and out["pointwise_ce"] == pytest.approx(0.15)


def test_dense_streaming_equals_the_function_with_uniform_bins(rng):
    s, t = _maps(rng, n=5)
    mask = torch.from_numpy(rng.uniform(size=(5, 1, 6, 7)) > 0.2)
    for norm, n_bins in ((1, 100), (2, 17)):
        metric = M.DenseTrueCalibration(n_bins=n_bins, norm=norm)
        for i in range(0, 5, 2):
            metric.update(s[i : i + 2], t[i : i + 2], valid_mask=mask[i : i + 2])
        got = metric.compute()
        want = M.dense_true_calibration_error(s, t, valid_mask=mask, n_bins=n_bins, binning="uniform", norm=norm)
        for key in M.DENSE_TRUE_KEYS:
            assert got[key] == pytest.approx(want[key], abs=1e-14), key
        assert got["grouping_loss"] >= 0
        # uniform bins of C over [0.5, 1] (C = 0.5 in the first, an edge in the lower bin): NumPy reference
        keep = mask.numpy().reshape(-1)
        sv, tv = s.numpy().reshape(-1)[keep], t.numpy().reshape(-1)[keep]
        conf = np.maximum(sv, 1 - sv)
        qv = np.where(sv >= 0.5, tv, 1 - tv)
        idx = np.clip(np.ceil((2 * conf - 1) * n_bins).astype(int) - 1, 0, n_bins - 1)
        sums = np.bincount(idx, qv - conf, minlength=n_bins)
        counts = np.bincount(idx, minlength=n_bins)
        ref = np.abs(sums).sum() / len(conf) if norm == 1 else math.sqrt((sums**2 / np.maximum(counts, 1)).sum() / len(conf))
        assert got["true_ece"] == pytest.approx(ref, abs=1e-13)


def test_dense_bad_inputs():
    s = torch.full((2, 1, 3, 3), 0.7)
    with pytest.raises(ValueError, match="true_posterior: expected the shape"):
        M.dense_true_calibration_error(s, torch.full((2, 1, 3, 4), 0.5))
    with pytest.raises(ValueError, match=r"true_posterior: expected probabilities in \[0, 1\]"):
        M.dense_true_calibration_error(s, torch.full((2, 1, 3, 3), 1.5))
    with pytest.raises(ValueError, match="from_logits"):
        M.dense_true_calibration_error(s * 3, torch.full((2, 1, 3, 3), 0.5))
    with pytest.raises(TypeError, match="valid_mask"):
        M.dense_true_calibration_error(s, s, valid_mask=torch.ones(2, 1, 3, 3))
    with pytest.raises(ValueError, match="valid_mask"):
        M.dense_true_calibration_error(s, s, valid_mask=torch.zeros(2, 1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="binning"):
        M.dense_true_calibration_error(s, s, binning="equal")
    with pytest.raises(ValueError, match="ignore_index"):
        M.DenseTrueCalibration(ignore_index=255)
    with pytest.raises(ValueError, match="no samples"):
        M.DenseTrueCalibration().compute()
