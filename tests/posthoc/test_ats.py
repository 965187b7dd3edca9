"""ATS (reconstruction): pieces, fall-back to the global T, per-piece optimality, equivalence with TS at M=1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from caltrain import posthoc
from caltrain.posthoc.ats import piece_edges, piece_index
from caltrain.posthoc.temperature import fit_temperature

from .references import nll, sample_logits


def test_one_piece_is_temperature_scaling():
    z, y = sample_logits(1000, 5, seed=1)
    ats = posthoc.create("ats", n_pieces=1).fit(2 * z, y)
    ts = posthoc.create("ts", t_min=0.05, t_max=20.0).fit(2 * z, y)
    assert ats.temperatures_.tolist() == pytest.approx([ts.temperature_], rel=1e-9)
    torch.testing.assert_close(ats.predict_proba(z), ts.predict_proba(z), atol=1e-9, rtol=0)


def test_equal_mass_pieces_hold_equal_counts():
    conf = torch.rand(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    edges = piece_edges(conf, 4, "equal-mass", 10)
    counts = torch.bincount(piece_index(conf, edges), minlength=4)
    assert counts.tolist() == [250, 250, 250, 250]
    # (lo, hi]: a value equal to an edge goes to the lower piece
    assert piece_index(edges[:1], edges).tolist() == [0]


def test_equal_width_edges_span_the_confidence_range():
    edges = piece_edges(torch.rand(10, dtype=torch.float64), 3, "equal-width", 4)
    np.testing.assert_allclose(edges.numpy(), [0.5, 0.75])


def test_each_piece_has_its_own_nll_optimal_temperature_and_small_pieces_fall_back():
    z, y = sample_logits(3000, 4, seed=2)
    z = 2 * z
    cal = posthoc.create("ats", n_pieces=5, min_piece_size=700).fit(z, y)
    conf = torch.softmax(z, 1).amax(1)
    piece = piece_index(conf, cal.edges_)
    for m in range(5):
        mask = piece == m
        expected = (
            fit_temperature(z[mask], y[mask], t_min=0.05, t_max=20.0)[0]
            if int(mask.sum()) >= 700
            else cal.temperature_
        )
        assert float(cal.temperatures_[m]) == pytest.approx(expected, rel=1e-9)
    big = posthoc.create("ats", n_pieces=5, min_piece_size=10_000).fit(z, y)
    assert torch.all(big.temperatures_ == big.temperature_)


def test_validation_nll_at_most_that_of_global_ts():
    z, y = sample_logits(3000, 6, seed=3)
    z = torch.cat([3 * z[:1500], 1.2 * z[1500:]])  # two regimes of over-confidence
    ats = posthoc.create("ats", n_pieces=6, min_piece_size=50).fit(z, y)
    ts = posthoc.create("ts", t_min=0.05, t_max=20.0).fit(z, y)
    assert nll(ats.predict_proba(z), y) <= nll(ts.predict_proba(z), y) + 1e-12


def test_params_list_every_piece():
    z, y = sample_logits(500, 3, seed=4)
    params = posthoc.create("ats", n_pieces=3, min_piece_size=10).fit(z, y).params_
    assert set(params) == {"temperature", "temperature_piece_0", "temperature_piece_1", "temperature_piece_2"}


def test_bad_hyperparameters_raise():
    with pytest.raises(ValueError, match="binning: expected one of 'equal-mass', 'equal-width'"):
        posthoc.create("ats", binning="quantile")
    with pytest.raises(ValueError, match="n_pieces"):
        posthoc.create("ats", n_pieces=0)
    with pytest.raises(ValueError, match="min_piece_size"):
        posthoc.create("ats", min_piece_size=-3)


def _np_confidence(z: np.ndarray, t) -> np.ndarray:
    """max_k softmax(z / t)_k, float64 NumPy (independent of caltrain); t a scalar or one per row ``[N, 1]``."""
    s = z / t
    e = np.exp(s - s.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).max(axis=1)


def test_temperature_scaling_reorders_confidences_across_samples_when_k_exceeds_2():
    # A = (1, 0, 0): c = e / (e + 2) = 0.576; B = (2, 1.8, -20): c = 0.550. At T = 3 the order flips
    # (0.411 < 0.517): a confidence after scaling depends on the whole logit vector, not on c alone.
    z = np.array([[1.0, 0.0, 0.0], [2.0, 1.8, -20.0]])
    before, after = _np_confidence(z, 1.0), _np_confidence(z, 3.0)
    assert before[0] > before[1] and after[0] < after[1]
    ts = posthoc.TemperatureScaling()
    ts.temperature_, ts.n_iter_, ts.n_classes_ = 3.0, 0, 3
    np.testing.assert_allclose(ts.predict_proba(z).max(axis=1), after, rtol=1e-12)
    # on a K = 10 set, one temperature swaps a large share of the adjacent pairs in confidence order
    g = np.random.default_rng(0)
    z10 = g.normal(size=(3000, 10)) * g.uniform(0.5, 4.0, size=(3000, 1))
    order = np.argsort(_np_confidence(z10, 1.0), kind="stable")
    swapped = np.diff(_np_confidence(z10, 2.0)[order]) < 0
    assert swapped.mean() > 0.3
    # K = 2: c = sigmoid(|z1 - z0| / T) is a monotone function of c, so no pair swaps
    z2 = g.normal(size=(3000, 2)) * 3
    order = np.argsort(_np_confidence(z2, 1.0), kind="stable")
    assert not (np.diff(_np_confidence(z2, 2.0)[order]) < -1e-15).any()


def test_each_samples_confidence_is_non_increasing_in_its_temperature():
    z, y = sample_logits(2000, 10, seed=5)
    z = 3 * z
    grid = np.geomspace(0.05, 20.0, 40)
    conf = np.stack([_np_confidence(z.numpy(), t) for t in grid])  # [T, N]
    assert (np.diff(conf, axis=0) <= 1e-15).all()
    # ATS gives every sample the confidence of TS at its own piece's temperature (so the property holds per
    # sample), and within one piece it reorders samples just as TS does
    ats = posthoc.create("ats", n_pieces=4, min_piece_size=50).fit(z, y)
    piece = piece_index(torch.softmax(z, 1).amax(1), ats.edges_)
    t_each = ats.temperatures_[piece].numpy()
    expected = _np_confidence(z.numpy(), t_each[:, None])  # one temperature per row
    got = ats.predict_proba(z).amax(1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    in_piece = (piece == 1).numpy()
    order = np.argsort(torch.softmax(z, 1).amax(1).numpy()[in_piece], kind="stable")
    assert (np.diff(got[in_piece][order]) < 0).any()
