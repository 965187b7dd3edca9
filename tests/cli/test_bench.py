"""caltrain bench: listing, and a suite whose every run fails still ends cleanly (regression)."""

from __future__ import annotations

import textwrap

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


def test_missing_data_is_reported_in_one_line_per_run(tmp_path, capsys):
    # review: a suite whose dataset is absent printed a full traceback for every run
    suite = tmp_path / "nodata.yaml"
    suite.write_text(textwrap.dedent(f"""
        description: CIFAR-10 is not there
        seeds: [0]
        base: {{epochs: 1, quiet: true}}
        datasets:
          cifar10: {{data: {{name: cifar10, root: {tmp_path / 'empty'}, options: {{download: false}}}}}}
        objectives:
          ce: {{loss: {{name: ce}}}}
    """))
    assert main(["bench", str(suite), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "FAILED cifar10__ce__seed0" in err and "Traceback" not in err
