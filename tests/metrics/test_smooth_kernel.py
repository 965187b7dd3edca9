"""Smooth ECE against relplot; MMCE against the O(N^2) kernel sum."""

import numpy as np
import pytest
import torch

from caltrain import metrics as M
from caltrain.metrics.smooth_ece import smooth_ece_from_scores

from . import references as R


@pytest.mark.parametrize("n", [1, 50, 3000])
def test_smooth_ece_matches_relplot(n):
    import relplot

    rng = np.random.default_rng(n)
    f = rng.uniform(0.2, 1.0, n)
    y = (rng.uniform(size=n) < f**2).astype(float)
    for sigma in (0.2, 0.05, 0.01):
        got = float(smooth_ece_from_scores(torch.from_numpy(f), torch.from_numpy(y), sigma)[0])
        assert got == pytest.approx(relplot.smECE_sigma(f, y, sigma), abs=1e-7)
    value, width = smooth_ece_from_scores(torch.from_numpy(f), torch.from_numpy(y))
    ref_value, ref_width = relplot.smECE(f, y, return_width=True)
    assert width == pytest.approx(ref_width) and float(value) == pytest.approx(ref_value, abs=1e-7)


def test_smooth_ece_top_label_and_calibrated_data():
    gen = torch.Generator().manual_seed(0)
    conf = 0.5 + 0.5 * torch.rand(20000, generator=gen, dtype=torch.float64)
    correct = torch.rand(20000, generator=gen, dtype=torch.float64) < conf
    probs = torch.stack([conf, 1 - conf], 1)
    labels = torch.where(correct, 0, 1)
    assert float(M.smooth_calibration_error(probs, labels)) < 0.03
    over = torch.stack([conf.sqrt(), 1 - conf.sqrt()], 1)  # confidence above accuracy
    assert float(M.smooth_calibration_error(over, labels)) > 0.05


def test_mmce_matches_quadratic_reference(rng):
    p = rng.dirichlet(np.ones(4), 400)
    y = rng.integers(0, 4, 400)
    conf = p.max(1)
    correct = (p.argmax(1) == y).astype(float)
    for width in (0.4, 0.1):
        assert float(M.mmce(p, y, bandwidth=width)) == pytest.approx(R.mmce(conf, correct, width), rel=1e-9)
    # ties in confidence
    p2 = np.repeat(p[:20], 3, axis=0)
    y2 = rng.integers(0, 4, 60)
    assert float(M.mmce(p2, y2)) == pytest.approx(
        R.mmce(p2.max(1), (p2.argmax(1) == y2).astype(float)), rel=1e-9
    )
    with pytest.raises(ValueError, match="bandwidth"):
        M.mmce(p, y, bandwidth=0.001)
