"""Reliability diagrams: bin data equal the metrics' reliability data and a NumPy reference; drawing; errors."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
import torch

from caltrain import metrics, posthoc
from caltrain.report import ClasswiseReliability, ReliabilityDiagram, plot_side_by_side
from caltrain.report.loading import load_run
from tests.report.helpers import np_uniform_bins, predictions


@pytest.mark.parametrize("binning", ["uniform", "quantile"])
@pytest.mark.parametrize("n_bins", [1, 7, 15])
def test_bins_equal_the_metrics_reliability_curve(binning, n_bins):
    probs, labels = predictions()
    d = ReliabilityDiagram.from_predictions(probs, labels, n_bins=n_bins, binning=binning)
    ref = metrics.reliability_curve(probs, labels, n_bins=n_bins, binning=binning)
    np.testing.assert_array_equal(d.count, ref.count.numpy())
    np.testing.assert_allclose(d.accuracy, ref.accuracy.numpy(), rtol=0, atol=0, equal_nan=True)
    np.testing.assert_allclose(d.confidence, ref.confidence.numpy(), rtol=0, atol=0, equal_nan=True)
    np.testing.assert_array_equal(d.edges, ref.edges.numpy())
    assert d.ece == pytest.approx(float(metrics.expected_calibration_error(probs, labels, n_bins=n_bins,
                                                                          binning=binning)), abs=1e-15)
    assert d.n == len(labels)


def test_uniform_bins_match_an_independent_numpy_reference():
    probs, labels = predictions(n=900, k=5, seed=3)
    conf = probs.max(1).values.numpy()
    correct = (probs.argmax(1) == labels).numpy().astype(float)
    count, mean_conf, acc = np_uniform_bins(conf, correct, 10)
    d = ReliabilityDiagram.from_predictions(probs, labels, n_bins=10)
    np.testing.assert_array_equal(d.count, count)
    np.testing.assert_allclose(d.confidence, mean_conf, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(d.accuracy, acc, atol=1e-12, equal_nan=True)
    filled = count > 0
    ece = np.sum(count[filled] / count.sum() * np.abs(acc[filled] - mean_conf[filled]))
    assert d.ece == pytest.approx(ece, abs=1e-12)
    assert np.isnan(d.accuracy[~filled]).all()


def test_from_logits_equals_softmax_probabilities():
    logits = torch.randn(300, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 3
    labels = torch.randint(0, 3, (300,), generator=torch.Generator().manual_seed(1))
    a = ReliabilityDiagram.from_predictions(logits, labels, from_logits=True)
    b = ReliabilityDiagram.from_predictions(torch.softmax(logits, 1), labels)
    np.testing.assert_array_equal(a.count, b.count)
    assert a.ece == pytest.approx(b.ece, abs=1e-14)


def test_plot_draws_bar_heights_equal_to_bin_accuracy():
    probs, labels = predictions()
    d = ReliabilityDiagram.from_predictions(probs, labels, n_bins=10).plot()
    heights = np.array([p.get_height() for p in d.ax_.containers[0].patches])
    np.testing.assert_allclose(heights, np.nan_to_num(d.accuracy), atol=1e-12)
    gaps = d.ax_.containers[1].patches
    filled = d.count > 0
    np.testing.assert_allclose([g.get_y() + g.get_height() for g in gaps], d.confidence[filled], atol=1e-12)
    hist = np.array([p.get_height() for p in d.hist_ax_.patches])
    np.testing.assert_allclose(hist, d.count / d.count.sum(), atol=1e-12)
    assert d.figure_ is d.ax_.figure


def test_plot_on_a_given_axis_carves_a_histogram_beneath():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.add_subplot(1, 1, 1)
    probs, labels = predictions(n=200)
    d = ReliabilityDiagram.from_predictions(probs, labels).plot(ax)
    assert d.ax_ is ax and d.hist_ax_ is not None and d.hist_ax_.figure is fig
    d2 = ReliabilityDiagram.from_predictions(probs, labels).plot(fig.add_subplot(2, 1, 2), show_histogram=False)
    assert d2.hist_ax_ is None


def test_from_run_matches_the_runs_summary(run_dir):
    run = load_run(run_dir)
    d = ReliabilityDiagram.from_run(run)
    assert d.n_bins == run.n_bins == 15
    assert d.ece == pytest.approx(run.summary["test"]["ece"], abs=1e-9)
    assert ReliabilityDiagram.from_run(run, split="val").ece == pytest.approx(run.summary["val"]["ece"], abs=1e-9)


def test_after_a_calibrator_equals_the_trainers_posthoc_numbers(run_dir):
    run = load_run(run_dir)
    d = ReliabilityDiagram.from_run(run_dir, calibrator="ts")
    assert d.ece == pytest.approx(run.summary["posthoc"]["ts"]["ece"], abs=1e-6)
    val_z, val_y = run.logits("val")
    z, y = run.logits("test")
    ts = posthoc.create("ts").fit(torch.from_numpy(val_z).double(), torch.from_numpy(val_y))
    ref = metrics.reliability_curve(ts.predict_proba(torch.from_numpy(z).double()), torch.from_numpy(y))
    np.testing.assert_array_equal(d.count, ref.count.numpy())


def test_compare_reproduces_the_trainers_posthoc_summary(run_dir):
    # the trainer's end of run and compare() are one protocol: the same numbers (the true-posterior keys need it)
    run = load_run(run_dir)
    result = posthoc.compare(run.logits("val"), run.logits("test"), ["ts"], n_bins=run.n_bins)
    expected = {k: v for k, v in run.summary["posthoc"]["ts"].items() if k not in metrics.TRUE_CALIBRATION_KEYS}
    assert result.metrics["ts"] == expected
    assert result.params == run.summary["posthoc_params"]


def test_after_diagrams_load_the_saved_calibrators_and_never_refit(suite_dir, tmp_path, monkeypatch):
    from caltrain.report import document

    copy = tmp_path / "suite"
    shutil.copytree(suite_dir, copy)
    old_run = copy / "runs" / "synthetic__ls__seed0"  # as written before calibrators were saved
    shutil.rmtree(old_run / "calibrators")

    def no_fit(self, *args, **kwargs):
        raise AssertionError("the report refitted a calibrator")

    monkeypatch.setattr(posthoc.Calibrator, "fit", no_fit)
    report = document.build_report(copy)
    (ds,) = report.datasets
    rows = {b.objective: re.findall(r'class="panel-title"[^>]*>([^<]+)</text>', b.body)
            for b in ds.sections[1].blocks}
    assert [[t.split(" · ")[0] for t in rows[o]] for o in ("ce", "ls")] == [["uncalibrated", "after ts"],
                                                                            ["uncalibrated"]]
    assert not any(s.startswith("Left out") and "logits" in s for s in report.caveats)
    notes = [c for c in report.caveats if "written before calibrators were saved" in c]
    assert len(notes) == 1 and "synthetic__ls__seed0" in notes[0]
    with pytest.raises(FileNotFoundError, match="saved no calibrator 'ts'"):
        ReliabilityDiagram.from_run(old_run, calibrator="ts")


def test_side_by_side_grid_has_one_panel_pair_per_diagram(run_dir):
    before = ReliabilityDiagram.from_run(run_dir, label="before")
    after = ReliabilityDiagram.from_run(run_dir, calibrator="ts", label="after")
    fig = plot_side_by_side([[before, after], [after]])
    assert len(fig.axes) == 6
    with pytest.raises(ValueError, match="diagrams"):
        plot_side_by_side([])


@pytest.mark.parametrize("kwargs, match", [
    ({"n_bins": 0}, "n_bins"), ({"binning": "equal"}, "binning"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    probs, labels = predictions(n=50)
    with pytest.raises(ValueError, match=match):
        ReliabilityDiagram.from_predictions(probs, labels, **kwargs)


def test_bad_inputs_raise_value_errors():
    probs, labels = predictions(n=50)
    with pytest.raises(ValueError, match="probs"):
        ReliabilityDiagram.from_predictions(probs * 2, labels)
    with pytest.raises(ValueError, match="labels"):
        ReliabilityDiagram.from_predictions(probs, labels + 10)
    with pytest.raises(ValueError, match="labels"):
        ReliabilityDiagram.from_predictions(probs, labels[:-1])
    with pytest.raises(ValueError, match="probs"):
        ReliabilityDiagram.from_predictions(probs[:, 0], labels)
    with pytest.raises(ValueError, match="n_bins"):
        ClasswiseReliability.from_predictions(probs, labels, n_bins=0)


def test_from_run_rejects_a_bad_split_and_a_missing_run(run_dir, tmp_path):
    with pytest.raises(ValueError, match="split"):
        ReliabilityDiagram.from_run(run_dir, split="train")
    with pytest.raises(FileNotFoundError, match="summary.json"):
        ReliabilityDiagram.from_run(tmp_path)


@pytest.mark.parametrize("n_bins", [5, 15])
def test_classwise_bins_and_ece_equal_the_metrics(n_bins):
    probs, labels = predictions(n=700, k=4, seed=5)
    cw = ClasswiseReliability.from_predictions(probs, labels, n_bins=n_bins)
    ref = float(metrics.classwise_calibration_error(probs, labels, n_bins=n_bins))
    assert cw.classwise_ece == pytest.approx(ref, abs=1e-12)
    for k in range(4):  # independent NumPy reference per class
        count, conf, freq = np_uniform_bins(probs[:, k].numpy(), (labels == k).numpy().astype(float), n_bins)
        np.testing.assert_array_equal(cw.count[k], count)
        np.testing.assert_allclose(cw.confidence[k], conf, atol=1e-12, equal_nan=True)
        np.testing.assert_allclose(cw.frequency[k], freq, atol=1e-12, equal_nan=True)
        filled = count > 0
        assert cw.class_ece[k] == pytest.approx(np.sum(count[filled] / 700 * np.abs(freq - conf)[filled]), abs=1e-12)


def test_classwise_plot_and_run(run_dir):
    cw = ClasswiseReliability.from_run(run_dir).plot(max_classes=3)
    assert len(cw.axes_) == 3 and cw.count.shape == (10, 15)
    heights = [p.get_height() for p in cw.axes_[1].patches]
    np.testing.assert_allclose(heights, np.nan_to_num(cw.frequency[1]), atol=1e-12)
    run = load_run(run_dir)
    assert cw.classwise_ece == pytest.approx(run.summary["test"]["classwise_ece"], abs=1e-9)
    with pytest.raises(ValueError, match="class_names"):
        ClasswiseReliability.from_run(run_dir, class_names=["a", "b"])


def test_abstention_run_plots_follow_the_runs_convention(abstention_run):
    from caltrain.report import RiskCoverageCurve

    run = load_run(abstention_run)
    assert run.abstention == "with_unknown" and run.num_classes == 10
    d = ReliabilityDiagram.from_run(run)
    assert d.ece == pytest.approx(run.summary["test"]["ece"], abs=1e-9)  # the summary's with_unknown ECE
    cw = ClasswiseReliability.from_run(run)
    assert cw.count.shape[0] == 11 and cw.class_names[-1] == "unknown"
    rc = RiskCoverageCurve.from_run(run)
    assert rc.aurc == pytest.approx(run.summary["test"]["aurc"], abs=1e-9)  # smallest p_unknown kept first
    after = ReliabilityDiagram.from_run(run, calibrator="ts")  # calibrated on the K class logits
    assert after.n == d.n
