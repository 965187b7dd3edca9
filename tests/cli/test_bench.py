"""caltrain bench: listing, and a suite whose every run fails still ends cleanly (regression)."""

from __future__ import annotations

import textwrap

import pytest

from caltrain.cli.main import main


def test_list_shows_every_preset_with_its_data(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("quick", "mukhoti2020-cifar10", "socrates-cifar10", "calmo-resnet20-cifar10", "mbls-cifar10",
                 "gence-cifar10-lt"):
        assert name in out
    assert "CIFAR-10" in out


def test_suite_with_only_failed_runs_reports_them_and_writes_no_report(tmp_path, capsys):
    # regression: the report raised FileNotFoundError ("no complete run") and bench exited 2 with no summary
    suite = tmp_path / "broken.yaml"
    suite.write_text(textwrap.dedent("""
        description: every run fails (a NaN loss)
        seeds: [0]
        base: {epochs: 1, quiet: true, optim: {lr: 1.0e+30, momentum: 0.0}}
        datasets:
          synthetic: {data: {name: synthetic, options: {train_size: 64, val_size: 32, test_size: 32, dim: 4}}}
        objectives:
          ce: {loss: {name: ce}}
    """))
    assert main(["bench", str(suite), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "1 run(s) failed" in err and "no report written" in err
    assert not (tmp_path / "out" / "report.html").exists()


def test_missing_data_is_one_message_before_any_run(tmp_path, capsys, monkeypatch):
    # review: a suite whose dataset is absent printed a full traceback for every run; then one line per run;
    # now the files are checked once, before the first run starts
    import caltrain.train.suite as suite_mod

    monkeypatch.setattr(suite_mod, "_run_one", lambda *a: pytest.fail("a run started"))
    suite = tmp_path / "nodata.yaml"
    suite.write_text(textwrap.dedent(f"""
        description: CIFAR-10 is not there
        seeds: [0, 1, 2]
        base: {{epochs: 1, quiet: true}}
        datasets:
          cifar10: {{data: {{name: cifar10, root: {tmp_path / 'empty'}, options: {{download: false}}}}}}
        objectives:
          ce: {{loss: {{name: ce}}}}
          focal: {{loss: {{name: focal}}}}
    """))
    assert main(["bench", str(suite), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("dataset 'cifar10': missing") == 1 and "Traceback" not in err
    assert f"data folder searched: {(tmp_path / 'empty').resolve()}" in err
    assert "--set data.root=DIR" in err and "CALTRAIN_DATA_DIR" in err and "--data-dir" not in err
    assert not (tmp_path / "out" / "runs").exists()


def test_typo_in_the_last_objective_fails_before_the_first_run(tmp_path, capsys, monkeypatch):
    import caltrain.train.suite as suite_mod

    monkeypatch.setattr(suite_mod, "_run_one", lambda *a: pytest.fail("a run started"))
    objectives = "\n".join(
        f"          ls-{k}: {{loss: {{name: ls, options: {{smoothing: 0.0{k}}}}}}}" for k in range(1, 40)
    )
    suite = tmp_path / "typo.yaml"
    suite.write_text(textwrap.dedent("""
        description: the 40th objective is misspelt
        seeds: [0]
        base: {epochs: 1, quiet: true}
        datasets:
          synthetic: {data: {name: synthetic}}
        objectives:
    """) + objectives + "\n          last: {loss: {name: focl}}\n")
    assert main(["bench", str(suite), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "run synthetic__last__seed0" in err and "loss.name" in err and "did you mean 'focal'" in err
    assert not (tmp_path / "out").exists()


def test_bench_out_refuses_a_folder_caltrain_did_not_write(tmp_path, capsys, monkeypatch):
    # the suite writes results.csv, results.md, suite.json and report.html into --out: never over a user's files
    import caltrain.train.suite as suite_mod

    monkeypatch.setattr(suite_mod, "_run_one", lambda *a: pytest.fail("a run started"))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.csv").write_text("my results\n")
    (mine / "paper.tex").write_text("\\documentclass{article}\n")
    suite = tmp_path / "s.yaml"
    suite.write_text("seeds: [0]\nbase: {epochs: 1}\ndatasets: {synthetic: {data: {name: synthetic}}}\n"
                     "objectives: {ce: {loss: {name: ce}}}\n")
    assert main(["bench", str(suite), "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert "refusing to write a suite into a folder caltrain did not write" in err and "paper.tex" in err, err
    assert (mine / "results.csv").read_text() == "my results\n" and sorted(p.name for p in mine.iterdir()) == [
        "paper.tex", "results.csv"]


def test_json_and_quiet(tmp_path, capsys):
    # issue 18: bench had no --json; --quiet silences the progress, and stdout is one JSON document
    import json

    suite = tmp_path / "tiny.yaml"
    suite.write_text(textwrap.dedent("""
        description: one tiny run
        seeds: [0]
        base: {epochs: 1, eval: {posthoc: []}, data: {options: {train_size: 96, val_size: 48, test_size: 48, dim: 4}}}
        datasets:
          synthetic: {data: {name: synthetic}, model: {name: mlp}}
        objectives:
          ce: {loss: {name: ce}}
    """))
    out = tmp_path / "out"
    assert main(["bench", str(suite), "--out", str(out), "--json", "--quiet", "--no-report", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert captured.err == ""
    assert {k: payload[k] for k in ("suite", "out", "runs", "skipped", "stale", "failed", "report")} == {
        "suite": "tiny", "out": str(out), "runs": 1, "skipped": 0, "stale": 0, "failed": [], "report": None}
    assert payload["files"] == {f: str(out / f"results.{f}") for f in ("csv", "md", "json")}
    assert payload["results"] == json.loads((out / "results.json").read_text())
    run_config = (out / "runs" / "synthetic__ce__seed0" / "config.yaml").read_text()
    assert "device: cpu" in run_config and "quiet: true" in run_config
    # the same again: the complete run is reused (quiet is not a result key), the table goes to stdout
    assert main(["bench", str(suite), "--out", str(out), "--no-report", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "1 already complete, 0 to run" in captured.err and captured.out.startswith("|")
