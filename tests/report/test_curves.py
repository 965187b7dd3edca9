"""Learning curves, trade-off scatter and sharpness trajectory against the suite's own files and NumPy."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from caltrain.report import LearningCurves, SharpnessTrajectory, TradeoffScatter, load_run, load_suite


def _epoch_values(run_path, split, metric):
    lines = [json.loads(x) for x in (run_path / "metrics.jsonl").read_text().splitlines()]
    return [r[split][metric] for r in lines if isinstance(r.get("epoch"), int) and "val" in r]


def test_learning_curves_are_mean_and_min_max_over_seeds(suite_dir):
    curves = LearningCurves.from_suite(suite_dir)
    assert curves.objectives == ["ce", "ls"] and curves.seeds["ce"] == [0, 1]
    for obj in ("ce", "ls"):
        for metric in ("accuracy", "ece", "nll"):
            per_seed = np.array([_epoch_values(suite_dir / "runs" / f"synthetic__{obj}__seed{s}", "test", metric)
                                 for s in (0, 1)])
            np.testing.assert_allclose(curves.values[obj][metric], per_seed)
            np.testing.assert_allclose(curves.mean(obj, metric), per_seed.mean(0))
            lo, hi = curves.band(obj, metric)
            np.testing.assert_allclose(lo, per_seed.min(0))
            np.testing.assert_allclose(hi, per_seed.max(0))
    np.testing.assert_array_equal(curves.epochs["ce"], [1, 2])


def test_learning_curves_agree_with_results_json_and_draw_one_line_per_objective(suite_dir):
    rows = json.loads((suite_dir / "results.json").read_text())["rows"]
    curves = LearningCurves.from_suite(suite_dir, split="val", metrics=("accuracy", "ece")).plot()
    for row in rows:
        ref = np.array([c["val_accuracy"] for c in row["curves"]])
        np.testing.assert_allclose(curves.values[row["objective"]]["accuracy"], ref)
    assert len(curves.axes_) == 2 and len(curves.axes_[0].lines) == 2
    np.testing.assert_allclose(curves.axes_[1].lines[1].get_ydata(), curves.mean("ls", "ece"))


def test_learning_curves_cut_to_the_shortest_run_and_reject_bad_input(suite_dir, tmp_path):
    runs = load_suite(suite_dir).runs_of(objective="ce")
    runs[1].epochs = runs[1].epochs[:1]
    curves = LearningCurves.from_runs(runs)
    assert curves.values["ce"]["ece"].shape == (2, 1)
    with pytest.raises(ValueError, match="split"):
        LearningCurves.from_runs(runs, split="holdout")
    with pytest.raises(ValueError, match="runs"):
        LearningCurves.from_runs([])
    runs[0].epochs = []
    with pytest.raises(ValueError, match="epoch records"):
        LearningCurves.from_runs(runs)


def test_tradeoff_points_equal_the_aggregate_rows(suite_dir):
    rows = {r["objective"]: r for r in json.loads((suite_dir / "results.json").read_text())["rows"]}
    for calibrator, prefix in ((None, ""), ("ts", "ts_")):
        t = TradeoffScatter.from_suite(suite_dir, calibrator=calibrator)
        assert t.objectives == ("ce", "ls") and list(t.n_seeds) == [2, 2]
        for i, obj in enumerate(t.objectives):
            assert t.accuracy_mean[i] == pytest.approx(rows[obj][f"{prefix}accuracy_mean"], abs=1e-12)
            assert t.ece_mean[i] == pytest.approx(rows[obj][f"{prefix}ece_mean"], abs=1e-12)
            assert t.ece_std[i] == pytest.approx(rows[obj][f"{prefix}ece_std"], abs=1e-12)
            assert t.accuracy_std[i] == pytest.approx(rows[obj][f"{prefix}accuracy_std"], abs=1e-12)
    drawn = TradeoffScatter.from_suite(suite_dir).plot()
    assert len(drawn.ax_.containers) == 2  # one errorbar container per objective


def test_tradeoff_single_seed_has_no_error_bar_and_bad_names_fail(run_dir):
    t = TradeoffScatter.from_runs([run_dir])
    assert np.isnan(t.ece_std[0]) and t.plot().ax_ is not None
    with pytest.raises(ValueError, match="calibrator"):
        TradeoffScatter.from_runs([run_dir], calibrator="dirichlet")
    with pytest.raises(ValueError, match="metric"):
        TradeoffScatter.from_runs([run_dir], metric="sharpness")


def test_sharpness_trajectory_reads_the_tracker_records(curvature_run):
    traj = SharpnessTrajectory.from_run(curvature_run)
    np.testing.assert_array_equal(traj.step, [4, 8, 12, 16, 20, 24])
    k = np.arange(1, 7)
    np.testing.assert_allclose(traj.sharpness, 2.0 + k ** 1.5)
    assert traj.pearson_r == pytest.approx(stats.pearsonr(traj.ece, traj.sharpness)[0], abs=1e-12)
    drawn = traj.plot()
    np.testing.assert_allclose(drawn.ax_.lines[0].get_ydata(), 100 * traj.ece)
    assert drawn.ax2_.get_yscale() == "log"
    batch = SharpnessTrajectory.from_run(curvature_run, sharpness_key="batch_sharpness")
    np.testing.assert_allclose(batch.sharpness, 1.0 + k)


def test_sharpness_trajectory_errors(run_dir, curvature_run):
    with pytest.raises(ValueError, match="curvature"):
        SharpnessTrajectory.from_run(run_dir)
    with pytest.raises(ValueError, match="sharpness_key.*gn_sharpness"):
        SharpnessTrajectory.from_run(curvature_run, sharpness_key="hessian")
    assert len(load_run(curvature_run).curvature) == 6


def test_missing_metric_gives_nan_without_warnings(suite_dir):
    import warnings

    runs = load_suite(suite_dir).runs_of(objective="ce")
    for r in runs:
        r.epochs = [{k: v for k, v in e.items() if k != "test"} for e in r.epochs]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        curves = LearningCurves.from_runs(runs, split="test", metrics=("ece",))
        assert np.isnan(curves.mean("ce", "ece")).all() and np.isnan(curves.band("ce", "ece")[0]).all()
        val = LearningCurves.from_runs(runs, split="val", metrics=("ece",))
    assert not np.isnan(val.mean("ce", "ece")).any()


def test_trajectories_small_multiples(curvature_run):
    from caltrain.report.sharpness import plot_trajectories

    traj = SharpnessTrajectory.from_run(curvature_run)
    fig = plot_trajectories([traj, traj, traj, traj])
    assert len([ax for ax in fig.axes if ax.get_xlabel() == "training step"]) == 4
    with pytest.raises(ValueError, match="trajectories"):
        plot_trajectories([])
