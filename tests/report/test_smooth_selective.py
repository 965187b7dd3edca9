"""Smooth reliability (vs a direct NumPy kernel regression), risk-coverage (vs metrics.aurc), OOD histograms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from caltrain import metrics
from caltrain.report import OODHistogram, RiskCoverageCurve, SmoothReliability
from caltrain.report.loading import load_run
from tests.report.helpers import predictions


def _np_smooth(conf, correct, grid, h):
    """Nadaraya-Watson with the reflected Gaussian kernel, every sample against every grid point."""
    def phi(u):
        return np.exp(-0.5 * (u / h) ** 2)

    t, c = grid[:, None], conf[None, :]
    k = phi(t - c) + phi(t + c) + phi(t - (2 - c))
    return (k @ correct) / k.sum(1), k.sum(1)


@pytest.mark.parametrize("h", [0.03, 0.1])
def test_smooth_curve_equals_a_direct_kernel_regression(h):
    probs, labels = predictions(n=800, k=3, seed=2)
    s = SmoothReliability.from_predictions(probs, labels, bandwidth=h, n_boot=0, grid_size=101)
    conf = probs.max(1).values.numpy()
    correct = (probs.argmax(1) == labels).numpy().astype(float)
    ref, weight = _np_smooth(conf, correct, s.grid, h)
    defined = weight >= 1
    np.testing.assert_array_equal(~np.isnan(s.curve), defined)
    np.testing.assert_allclose(s.curve[defined], ref[defined], atol=2e-3)
    assert np.trapezoid(s.density, s.grid) == pytest.approx(1.0, abs=0.02)


def test_smooth_band_brackets_the_curve_and_is_reproducible():
    probs, labels = predictions(n=500, seed=4)
    a = SmoothReliability.from_predictions(probs, labels, n_boot=100, seed=1)
    b = SmoothReliability.from_predictions(probs, labels, n_boot=100, seed=1)
    np.testing.assert_array_equal(a.lower, b.lower)
    ok = ~np.isnan(a.curve) & ~np.isnan(a.lower)
    assert ok.sum() > 20
    assert np.all(a.lower[ok] <= a.curve[ok] + 0.02) and np.all(a.curve[ok] <= a.upper[ok] + 0.02)
    assert np.all(a.upper[ok] - a.lower[ok] >= 0)
    wide = SmoothReliability.from_predictions(probs[:100], labels[:100], n_boot=100, seed=1)
    both = ok & ~np.isnan(wide.lower)
    assert np.nanmean((wide.upper - wide.lower)[both]) > np.nanmean((a.upper - a.lower)[both])  # fewer samples


def test_smooth_curve_agrees_with_relplot():
    relplot = pytest.importorskip("relplot")
    probs, labels = predictions(n=3000, k=3, seed=8)
    conf = probs.max(1).values.numpy()
    correct = (probs.argmax(1) == labels).numpy().astype(float)
    ours = SmoothReliability.from_predictions(probs, labels, bandwidth=0.05, n_boot=0, grid_size=200)
    theirs = relplot.prepare_rel_diagram(conf, correct, kde_bandwidth=0.05, plot_confidence_band=False)
    ok = ours.density > 0.2  # where both have data
    np.testing.assert_allclose(ours.grid, theirs["mesh"])
    np.testing.assert_allclose(ours.curve[ok], theirs["mu"][ok], atol=2e-3)


def test_smooth_curve_of_always_correct_predictions_is_one():
    probs = torch.softmax(torch.randn(300, 3, generator=torch.Generator().manual_seed(0)).double() * 2, 1)
    s = SmoothReliability.from_predictions(probs, probs.argmax(1), n_boot=20)
    ok = ~np.isnan(s.curve)
    np.testing.assert_allclose(s.curve[ok], 1.0, atol=1e-12)
    np.testing.assert_allclose(s.lower[ok & ~np.isnan(s.lower)], 1.0, atol=1e-12)


def test_smooth_plot_and_errors(run_dir):
    s = SmoothReliability.from_run(run_dir, n_boot=10).plot()
    np.testing.assert_allclose(s.ax_.lines[0].get_ydata(), s.curve, equal_nan=True)
    probs, labels = predictions(n=50)
    for kwargs, match in [({"bandwidth": 0.0}, "bandwidth"), ({"grid_size": 1}, "grid_size"),
                          ({"alpha": 1.0}, "alpha"), ({"n_boot": -1}, "n_boot")]:
        with pytest.raises(ValueError, match=match):
            SmoothReliability.from_predictions(probs, labels, **kwargs)


def test_risk_coverage_equals_metrics_and_a_numpy_reference():
    probs, labels = predictions(n=400, seed=6)
    rc = RiskCoverageCurve.from_predictions(probs, labels)
    conf = probs.max(1).values
    correct = probs.argmax(1) == labels
    assert rc.aurc == pytest.approx(float(metrics.aurc(conf, correct)), abs=1e-14)
    order = np.argsort(-conf.numpy(), kind="stable")  # no ties in these confidences
    errs = np.cumsum(1 - correct.numpy()[order]) / np.arange(1, 401)
    np.testing.assert_allclose(rc.risk, errs, atol=1e-12)
    np.testing.assert_allclose(rc.coverage, np.arange(1, 401) / 400)
    assert rc.risk_at(1.0) == pytest.approx(1 - correct.double().mean().item())
    assert rc.risk_at(0.5) == pytest.approx(errs[199])


def test_risk_coverage_with_an_explicit_score_and_from_run(run_dir):
    probs, labels = predictions(n=200)
    score = -torch.arange(200.0)  # keep the first samples first
    rc = RiskCoverageCurve.from_predictions(probs, labels, score=score)
    wrong = (probs.argmax(1) != labels).double().numpy()
    np.testing.assert_allclose(rc.risk, np.cumsum(wrong) / np.arange(1, 201), atol=1e-12)
    with pytest.raises(ValueError, match="score"):
        RiskCoverageCurve.from_predictions(probs, labels, score=score[:-1])
    run = load_run(run_dir)
    curve = RiskCoverageCurve.from_run(run).plot()
    assert curve.aurc == pytest.approx(run.summary["test"]["aurc"], abs=1e-9)
    assert len(curve.ax_.lines) == 1


def test_ood_histograms_integrate_to_one_and_use_the_metrics_scores():
    p_in, _ = predictions(n=300, seed=1, temperature=0.5)
    p_out = torch.softmax(torch.randn(200, 4, generator=torch.Generator().manual_seed(3)).double() * 0.3, 1)
    h = OODHistogram.from_predictions(p_in, p_out, score="msp", n_bins=20)
    width = np.diff(h.edges)
    assert np.sum(h.in_density * width) == pytest.approx(1.0) and np.sum(h.out_density * width) == pytest.approx(1.0)
    assert h.edges[0] == pytest.approx(min(p_in.max(1).values.min(), p_out.max(1).values.min()).item())
    ent = OODHistogram.from_predictions(p_in, p_out, score="entropy")
    ref = (p_in * p_in.log()).sum(1).numpy()
    assert ent.edges[-1] >= ref.max() - 1e-12
    z = torch.randn(50, 4, generator=torch.Generator().manual_seed(0)).double()
    e = OODHistogram.from_predictions(z, z + 1, score="energy", from_logits=True)
    assert e.edges[-1] == pytest.approx(float(torch.logsumexp(z + 1, 1).max()))
    with pytest.raises(ValueError, match="energy"):
        OODHistogram.from_predictions(p_in, p_out, score="energy")
    with pytest.raises(ValueError, match="score"):
        OODHistogram.from_predictions(p_in, p_out, score="odin")
    with pytest.raises(ValueError, match="in_scores"):
        OODHistogram.from_scores([], [1.0])
    drawn = h.plot()
    assert len(drawn.ax_.patches) == 40


def test_ood_from_run_reads_logits_ood(run_dir, tmp_path):
    import shutil

    from caltrain.utils.io import save_npz

    dst = tmp_path / "run"
    shutil.copytree(run_dir, dst)
    assert (dst / "logits_ood.npz").exists()  # the trainer saves the first paired OOD set
    OODHistogram.from_run(dst)
    (dst / "logits_ood.npz").unlink()
    with pytest.raises(FileNotFoundError):
        OODHistogram.from_run(dst)
    save_npz(dst / "logits_ood.npz", logits=np.random.default_rng(0).normal(size=(30, 10)), labels=np.zeros(30, int))
    h = OODHistogram.from_run(dst)
    assert math.isclose(float(np.sum(h.out_density * np.diff(h.edges))), 1.0)
