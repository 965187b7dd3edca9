import json
import math

import numpy as np
import pytest
from scipy.stats import pearsonr

from caltrain.analysis.coupling import SUITE, coupling_table, main, pearson_r, run_coupling
from caltrain.train.suite import load_suite, run_suite

#: The shipped suite cut to a few steps: 256 training samples (2 steps an epoch), 3 epochs, tracked every 2 steps.
TINY = ["epochs=3", "data.options.train_size=256", "data.options.val_size=64", "data.options.test_size=128",
        "curvature.every_steps=2", "curvature.subset=64", "curvature.iters=5", "eval.every_steps=2"]


@pytest.fixture(scope="module")
def tiny_suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("coupling")
    result = run_suite(load_suite(SUITE), out, overrides=TINY, log=lambda s: None)
    assert result["failed"] == []
    return out


def test_pearson_r_matches_numpy_and_scipy_on_known_numbers(rng):
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 5.0, 9.0]
    # by hand: deviations (-1.5,-.5,.5,1.5) and (-3,-1,0,4); cov 11 / sqrt(5 * 26)
    assert pearson_r(a, b) == pytest.approx(11 / math.sqrt(130), rel=1e-12)
    assert pearson_r(a, b) == pytest.approx(np.corrcoef(a, b)[0, 1], rel=1e-12)
    x, y = rng.normal(size=30), rng.normal(size=30)
    assert pearson_r(x, x + y) == pytest.approx(pearsonr(x, x + y)[0], rel=1e-12)
    assert pearson_r(x, -3 * x + 1) == pytest.approx(-1.0, abs=1e-12)


def test_pearson_r_is_nan_when_undefined_and_rejects_unequal_lengths():
    assert np.isnan(pearson_r([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert np.isnan(pearson_r([1.0, 2.0], [1.0, 2.0]))
    with pytest.raises(ValueError, match="different lengths"):
        pearson_r([1.0, 2.0, 3.0], [1.0, 2.0])


def test_run_coupling_pairs_tracked_steps_with_test_evaluations():
    ece, gn, test_ece = [0.1, 0.2, 0.25, 0.4], [1.0, 3.0, 2.0, 5.0], [0.3, 0.2, 0.2, 0.1]
    records = []
    for k in range(4):
        records.append({"step": 10 * (k + 1), "test": {"ece": test_ece[k], "accuracy": 0.5 + k / 10}})
        records.append({"step": 10 * (k + 1), "curvature": {"ece": ece[k], "gn_sharpness": gn[k]}})
    records.append({"step": 50, "curvature": {"ece": 0.5, "gn_sharpness": 4.0}})  # tracked, never tested
    out = run_coupling(records)
    assert out["points"] == 5 and out["points_test"] == 4
    assert out["r_subset"] == pytest.approx(pearsonr(ece + [0.5], gn + [4.0])[0], rel=1e-12)
    assert out["r_test"] == pytest.approx(pearsonr(test_ece, gn)[0], rel=1e-12)
    assert out["final_test_ece"] == 0.1 and out["final_test_accuracy"] == pytest.approx(0.8)
    with pytest.raises(ValueError, match="no curvature records"):
        run_coupling([{"step": 1, "test": {"ece": 0.1}}])


def test_shipped_suite_is_the_papers_grid():
    suite = load_suite(SUITE)
    assert set(suite.objectives) == {"ce", "calmo"}
    assert set(suite.variants) == {"sgd", "adamw", "muon", "sam"}
    assert suite.base["model"] == {"name": "mlp", "options": {"hidden": [200, 200], "activation": "tanh"}}
    assert suite.base["curvature"]["every_steps"] == suite.base["eval"]["every_steps"]


def test_table_of_a_tiny_suite_run(tiny_suite):
    rows = coupling_table(tiny_suite)
    assert [(r["objective"], r["variant"]) for r in rows] == [
        (o, v) for o in ("ce", "calmo") for v in ("sgd", "adamw", "muon", "sam")]
    for row in rows:
        assert row["points"] == 3 and row["points_test"] == 3
        assert -1 <= row["r_subset"] <= 1 or math.isnan(row["r_subset"])
        assert 0 <= row["final_test_ece"] <= 1
        lines = (tiny_suite / "runs" / row["run"] / "metrics.jsonl").read_text().splitlines()
        tracked = [json.loads(line) for line in lines if '"curvature"' in line]
        expected = pearson_r([r["curvature"]["ece"] for r in tracked],
                             [r["curvature"]["gn_sharpness"] for r in tracked])
        assert row["r_subset"] == pytest.approx(expected, nan_ok=True)


def test_main_analyses_a_folder_and_reuses_finished_runs(tiny_suite, tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert main(["--analyse", str(tiny_suite), "--json", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 9 and lines[0].startswith("objective") and lines[1].split()[:2] == ["ce", "sgd"]
    assert len(json.loads(out.read_text())) == 8
    # --out on a finished folder runs nothing again (every summary.json exists) and prints the same table
    assert main(["--out", str(tiny_suite), *(f"--set={o}" for o in TINY)]) == 0
    assert capsys.readouterr().out.strip().splitlines() == lines


def test_table_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="expected a suite output folder"):
        coupling_table(tmp_path)
