"""Reading run and suite directories: records, incomplete runs, a missing results.json, stand-alone runs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from caltrain.report import load_run, load_suite
from caltrain.report.loading import group_label, is_run_dir, is_suite_dir


def test_suite_record_holds_every_complete_run(suite_dir):
    suite = load_suite(suite_dir)
    assert suite.name == "tiny" and suite.datasets() == ["synthetic"]
    assert [r.name for r in suite.runs] == [f"synthetic__{o}__seed{s}" for o in ("ce", "ls") for s in (0, 1)]
    assert suite.objectives() == ["ce", "ls"] and len(suite.rows) == 2 and suite.incomplete == []
    run = suite.runs[0]
    assert run.n_bins == 15 and run.abstention is None and run.num_classes == 10
    assert [e["epoch"] for e in run.epochs] == [1, 2] and run.curvature == []
    assert run.config["loss"]["name"] == "ce" and "loss:" in run.config_text
    probs, labels = run.probs("test")
    z, y = run.logits("test")
    np.testing.assert_allclose(probs.numpy(), torch.softmax(torch.from_numpy(z).double(), 1).numpy())
    np.testing.assert_array_equal(labels.numpy(), y)
    assert group_label(run) == "ce" and is_run_dir(run.path) and is_suite_dir(suite_dir)


def _snapshot(root):
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*"))}


def test_incomplete_runs_are_listed_and_a_missing_results_json_is_computed_without_writing(suite_dir, tmp_path):
    copy = tmp_path / "suite"
    shutil.copytree(suite_dir, copy)
    (copy / "runs" / "synthetic__focal__seed0").mkdir()
    (copy / "results.json").unlink()
    before = _snapshot(copy)
    suite = load_suite(copy)
    assert _snapshot(copy) == before  # a reader never writes: same files, same modification times
    assert not (copy / "results.json").exists()
    assert suite.incomplete == ["synthetic__focal__seed0"] and len(suite.runs) == 4
    original = json.loads((suite_dir / "results.json").read_text())["rows"]
    assert [r["ece_mean"] for r in suite.rows] == pytest.approx([r["ece_mean"] for r in original])
    assert [r["per_seed"] for r in suite.rows] == [r["per_seed"] for r in original]


def test_run_record_paths_come_from_run_dir(run_dir):
    from caltrain.train.run_dir import RunDir

    run, paths = load_run(run_dir), RunDir(run_dir)
    assert run.files == paths and run.saved_calibrators == ["ts"] and paths.calibrator("ts").is_file()
    assert run.labels == json.loads(paths.labels.read_text())
    assert run.config_text == paths.config.read_text()
    assert run.calibrator("ts").temperature_ == pytest.approx(run.summary["posthoc_params"]["ts"]["temperature"])
    with pytest.raises(FileNotFoundError, match="saved no calibrator 'vector'"):
        run.calibrator("vector")


def test_stand_alone_run_labels_come_from_its_config(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "labels.json").unlink()
    run = load_run(copy)
    assert run.labels == {"dataset": "synthetic", "model": "mlp", "objective": "ce", "variant": "", "seed": 0}


def test_missing_directories_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="path"):
        load_run(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError, match="summary.json"):
        load_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="suite directory"):
        load_suite(tmp_path)
