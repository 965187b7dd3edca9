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
