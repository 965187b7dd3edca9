"""A suite reuses a run only when its fingerprint is the configuration and code it would run now.

Regression: ``caltrain bench quick --seeds 1 --set epochs=3 --out Q`` then the same with ``--set epochs=2``
printed "22 already complete" and reported the 3-epoch runs as 2-epoch ones.
"""

from __future__ import annotations

import json
import textwrap

import pytest

from caltrain.cli.main import main
from caltrain.train import run_dir as run_dir_mod
from caltrain.train.run_dir import ForeignFilesError, SuiteDir
from caltrain.train.suite import Suite, run_suite

NAME = "synthetic__ce__seed0"


def _suite() -> Suite:
    return Suite(
        name="tiny", description="test", seeds=(0,),
        base={"epochs": 3, "quiet": True, "threads": 1, "eval": {"posthoc": ["ts"]}},
        datasets={"synthetic": {"data": {"name": "synthetic", "batch_size": 64,
                                         "options": {"train_size": 128, "val_size": 64, "test_size": 64, "dim": 4}},
                                "model": {"name": "mlp"}}},
        objectives={"ce": {"loss": {"name": "ce"}}},
    )


def _epochs(run) -> int:
    return len([r for r in run.read_metrics() if "lr" in r])


def test_bench_rerun_with_fewer_epochs_reruns_the_runs_not_reports_3_epoch_ones_as_2(tmp_path, capsys):
    suite = tmp_path / "tiny.yaml"
    suite.write_text(textwrap.dedent("""
        description: one dataset, one objective
        seeds: [0, 1]
        base: {quiet: true, threads: 1, eval: {posthoc: [ts]}}
        datasets:
          synthetic: {data: {name: synthetic, options: {train_size: 128, val_size: 64, test_size: 64, dim: 4}}}
        objectives:
          ce: {loss: {name: ce}}
    """))
    out = SuiteDir(tmp_path / "Q")
    args = ["bench", str(suite), "--seeds", "1", "--out", str(out.root), "--no-report"]
    assert main([*args, "--set", "epochs=3"]) == 0
    assert _epochs(out.run(NAME)) == 3
    capsys.readouterr()
    assert main([*args, "--set", "epochs=2"]) == 0
    err = capsys.readouterr().err
    assert "0 already complete, 1 to run (1 stale" in err, err
    assert "stale (configuration changed: epochs 3 -> 2)" in err and "moved to" in err, err
    assert _epochs(out.run(NAME)) == 2 and out.run(NAME).read_summary()
    (kept,) = out.stale.iterdir()  # the 3-epoch run, whole, never deleted
    assert kept.name.startswith(NAME + ".") and _epochs(run_dir_mod.RunDir(kept)) == 3
    assert (kept / "summary.json").is_file()
    rows = json.loads(out.results("json").read_text())
    assert len(out.run_names()) == 1 and rows  # the aggregate reads runs/ only
    assert main([*args, "--set", "epochs=2"]) == 0  # unchanged: skipped
    assert "1 already complete, 0 to run" in capsys.readouterr().err
    assert len(list(out.stale.iterdir())) == 1


def test_unchanged_rerun_skips_and_changed_rerun_sets_aside(tmp_path):
    first = run_suite(_suite(), tmp_path, overrides=["epochs=3"], log=lambda s: None)
    assert first["skipped"] == 0 and not first["failed"]
    again = run_suite(_suite(), tmp_path, overrides=["epochs=3", "quiet=false"], log=lambda s: None)
    assert again["skipped"] == 1 and again["stale"] == 0  # quiet does not change results
    lines = []
    changed = run_suite(_suite(), tmp_path, overrides=["epochs=2"], log=lines.append)
    assert changed["stale"] == 1 and changed["skipped"] == 0 and not changed["failed"]
    assert any("moved to" in line and "epochs 3 -> 2" in line for line in lines), lines
    out = SuiteDir(tmp_path)
    assert _epochs(out.run(NAME)) == 2 and changed["results"][0]["n_seeds"] == 1
    assert len(list(out.stale.iterdir())) == 1


def test_run_without_fingerprint_is_reused_only_if_its_config_yaml_matches(tmp_path):
    run_suite(_suite(), tmp_path, log=lambda s: None)
    run = SuiteDir(tmp_path).run(NAME)
    run.fingerprint.unlink()  # as written before fingerprints
    assert run_suite(_suite(), tmp_path, log=lambda s: None)["skipped"] == 1
    assert run.read_fingerprint() is None  # reused as it is
    result = run_suite(_suite(), tmp_path, overrides=["optim.lr=0.05"], log=lambda s: None)
    assert result["stale"] == 1 and result["skipped"] == 0 and run.read_fingerprint() is not None


def test_code_version_rule(tmp_path, monkeypatch):
    run_suite(_suite(), tmp_path, log=lambda s: None)
    run = SuiteDir(tmp_path).run(NAME)
    fp = run.read_fingerprint()
    now = run_dir_mod.code_version()
    assert fp["caltrain_version"] == now["caltrain_version"] and fp["git_revision"] == now["git_revision"]
    assert not str(fp["git_revision"]).endswith("-dirty")  # uncommitted edits do not make every rerun stale
    from caltrain.train.config import config_to_dict
    from caltrain.train.suite import expand

    config = config_to_dict(expand(_suite())[0].config)
    assert run.stale_reason(config) is None
    monkeypatch.setattr(run_dir_mod, "code_version", lambda: {**now, "git_revision": None})  # installed copy
    assert run.stale_reason(config) is None
    monkeypatch.setattr(run_dir_mod, "code_version", lambda: {**now, "git_revision": "0" * 40})  # another commit
    assert run.stale_reason(config).startswith("code changed: git revision")
    monkeypatch.setattr(run_dir_mod, "code_version", lambda: {**now, "caltrain_version": "99.0"})
    assert "caltrain" in run.stale_reason(config)
    monkeypatch.undo()
    assert run.stale_reason({**config, "quiet": True, "threads": 3, "checkpoint_every": 5}) is None  # no effect
    assert run.stale_reason({**config, "seed": 1}).startswith("configuration changed: seed 0 -> 1")


def test_suite_refuses_a_folder_caltrain_did_not_write(tmp_path):
    thesis = tmp_path / "thesis"
    thesis.mkdir()
    (thesis / "results.csv").write_text("my data\n")
    (thesis / "thesis.tex").write_text("\\documentclass{article}\n")
    with pytest.raises(ForeignFilesError, match="thesis.tex"):
        run_suite(_suite(), thesis, log=lambda s: None)
    assert sorted(p.name for p in thesis.iterdir()) == ["results.csv", "thesis.tex"]
    assert (thesis / "results.csv").read_text() == "my data\n"
