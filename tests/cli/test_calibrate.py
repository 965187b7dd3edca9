"""``caltrain calibrate``: JSON schema, keys equal to ``caltrain evaluate --json``, saved calibrators, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from caltrain import posthoc
from caltrain.cli.main import main

pytest.importorskip("caltrain.metrics.summary")


def _write(path, n, k, seed, *, temperature=2.5, abstention=False):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g, dtype=torch.float64) * 2
    y = torch.multinomial(torch.softmax(z, 1), 1, generator=g)[:, 0]
    logits = temperature * z
    if abstention:
        logits = torch.cat([logits, torch.zeros(n, 1, dtype=torch.float64)], 1)
    np.savez(path, logits=logits.float().numpy(), labels=y.numpy())
    return path


@pytest.fixture
def files(tmp_path):
    return _write(tmp_path / "val.npz", 600, 5, 0), _write(tmp_path / "test.npz", 500, 5, 1)


def test_ts_json_reports_before_after_and_the_temperature(files, tmp_path, capsys):
    val, test = files
    out = tmp_path / "ts.json"
    assert main(["calibrate", "--method", "ts", "--val", str(val), "--test", str(test), "--json",
                 "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"method", "params", "before", "after"} <= set(report)
    assert report["method"] == "ts" and 2.0 < report["params"]["temperature"] < 3.2
    assert report["after"]["nll"] < report["before"]["nll"]
    assert report["after"]["accuracy"] == report["before"]["accuracy"]  # TS keeps the argmax
    # the fitted calibrator was saved and reproduces the same temperature
    assert posthoc.load(out).temperature_ == pytest.approx(report["params"]["temperature"], rel=1e-12)
    assert report["saved"] == str(out)


def test_metric_keys_equal_those_of_caltrain_evaluate(files, tmp_path, capsys):
    val, test = files
    main(["calibrate", "--method", "vector", "--val", str(val), "--test", str(test), "--json", "--no-save"])
    report = json.loads(capsys.readouterr().out)
    data = np.load(test)
    pred = tmp_path / "pred.npz"
    np.savez(pred, logits=data["logits"], labels=data["labels"])
    assert main(["evaluate", str(pred), "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    assert set(report["before"]) == set(evaluated) == set(report["after"])
    assert report["before"]["ece"] == pytest.approx(evaluated["ece"], abs=1e-12)


def test_method_all_compares_every_multiclass_calibrator(files, tmp_path, capsys):
    val, test = files
    assert main(["calibrate", "--method", "all", "--val", str(val), "--test", str(test), "--json",
                 "--out", str(tmp_path / "cals")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["results"]) == set(posthoc.names(num_classes=5))
    for name, result in report["results"].items():
        assert "after" in result, (name, result)
        assert (tmp_path / "cals" / f"calibrator-{name}.json").exists()
    # the table form lists every method as a column
    main(["calibrate", "--method", "all", "--val", str(val), "--test", str(test), "--no-save"])
    text = capsys.readouterr().out
    assert "uncalibrated" in text and "dirichlet" in text and "ts-grid-ece" in text


def test_options_and_abstention(tmp_path, capsys):
    val = _write(tmp_path / "v.npz", 400, 4, 2, abstention=True)
    test = _write(tmp_path / "t.npz", 300, 4, 3, abstention=True)
    assert main(["calibrate", "--method", "ats", "--set", "n_pieces=3", "--set", "binning=equal-width",
                 "--abstention", "renormalized", "--val", str(val), "--test", str(test), "--json", "--no-save"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"temperature_piece_0", "temperature_piece_2"} <= set(report["params"])
    assert "temperature_piece_3" not in report["params"]


@pytest.mark.parametrize(("old", "new"), [("classes", "renormalized"), ("all", "with_unknown")])
def test_old_abstention_spellings_warn_and_mean_the_new_names(tmp_path, capsys, old, new):
    val = _write(tmp_path / "v.npz", 400, 4, 2, abstention=True)
    test = _write(tmp_path / "t.npz", 300, 4, 3, abstention=True)
    args = ["calibrate", "--method", "ts", "--val", str(val), "--test", str(test), "--json", "--no-save"]
    assert main([*args, "--abstention", new]) == 0
    expected = json.loads(capsys.readouterr().out)
    with pytest.warns(DeprecationWarning, match=f"--abstention={old!r} is deprecated"):
        assert main([*args, "--abstention", old]) == 0
    got = json.loads(capsys.readouterr().out)
    for key in ("before", "after", "params"):
        assert got[key] == expected[key]


def test_errors_exit_2_with_a_message(files, tmp_path, capsys):
    val, test = files
    bad = tmp_path / "bad.npz"
    np.savez(bad, probs=np.ones((3, 2)) / 2, labels=np.zeros(3, dtype=np.int64))
    assert main(["calibrate", "--val", str(bad), "--test", str(test), "--no-save"]) == 2
    assert "expected arrays 'logits' and 'labels'" in capsys.readouterr().err
    assert main(["calibrate", "--method", "ts", "--set", "temprature=2", "--val", str(val), "--test", str(test),
                 "--no-save"]) == 2
    assert "valid parameters" in capsys.readouterr().err
    assert main(["calibrate", "--method", "all", "--set", "n_bins=3", "--val", str(val), "--test", str(test),
                 "--no-save"]) == 2
    other = _write(tmp_path / "k3.npz", 50, 3, 4)
    assert main(["calibrate", "--val", str(val), "--test", str(other), "--no-save"]) == 2
    assert "same C" in capsys.readouterr().err


def test_method_all_on_binary_outputs_includes_platt_and_beta(tmp_path, capsys):
    val = _write(tmp_path / "v.npz", 400, 2, 5)
    test = _write(tmp_path / "t.npz", 300, 2, 6)
    assert main(["calibrate", "--method", "all", "--val", str(val), "--test", str(test), "--json", "--no-save"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {"platt", "beta"} <= set(report["results"])
    assert all("after" in r for r in report["results"].values())


def test_method_all_on_bad_validation_data_exits_2(files, tmp_path, capsys):
    # regression: with --method all, NaN logits or out-of-range labels in --val were reported as nine
    # per-calibrator failures on stdout with exit status 0
    val, test = files
    data = np.load(val)
    nan = tmp_path / "nan.npz"
    logits = data["logits"].copy()
    logits[3, 1] = np.nan
    np.savez(nan, logits=logits, labels=data["labels"])
    assert main(["calibrate", "--method", "all", "--val", str(nan), "--test", str(test), "--no-save"]) == 2
    captured = capsys.readouterr()
    assert "expected finite values" in captured.err and "nan.npz" in captured.err and captured.out == ""
    oor = tmp_path / "oor.npz"
    labels = data["labels"].copy()
    labels[0] = 5
    np.savez(oor, logits=data["logits"], labels=labels)
    assert main(["calibrate", "--method", "all", "--val", str(oor), "--test", str(test), "--json", "--no-save"]) == 2
    assert "expected class indices in [0, 4]" in capsys.readouterr().err


def test_method_all_with_abstention_all_accepts_the_abstention_label(tmp_path, capsys):
    # the up-front check of --method all is no stricter than the calibrators: with --abstention all a
    # validation label may be the abstention class K
    val = _write(tmp_path / "v.npz", 400, 4, 2, abstention=True)
    data = np.load(val)
    labels = data["labels"].copy()
    labels[:5] = 4
    np.savez(val, logits=data["logits"], labels=labels)
    test = _write(tmp_path / "t.npz", 300, 4, 3, abstention=True)
    assert main(["calibrate", "--method", "all", "--abstention", "with_unknown", "--val", str(val), "--test", str(test),
                 "--json", "--no-save"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert all("after" in r for r in report["results"].values())


def test_bad_device_and_corrupt_file_exit_2_without_traceback(files, tmp_path, capsys):
    # regression: --device nonsense (or cuda on a CPU build) and a truncated .npz raised tracebacks
    val, test = files
    assert main(["calibrate", "--val", str(val), "--test", str(test), "--device", "nonsense", "--no-save"]) == 2
    assert "--device" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["calibrate", "--val", str(val), "--test", str(test), "--device", "cuda", "--no-save"]) == 2
        assert "--device" in capsys.readouterr().err
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(val.read_bytes()[:200])
    assert main(["calibrate", "--val", str(trunc), "--test", str(test), "--no-save"]) == 2
    assert "trunc.npz" in capsys.readouterr().err


def test_output_directory_and_output_with_no_save_exit_2_before_fitting(files, tmp_path, capsys, monkeypatch):
    val, test = files
    fitted = []
    original = posthoc.compare
    monkeypatch.setattr(posthoc, "compare", lambda *a, **k: fitted.append(1) or original(*a, **k))
    folder = tmp_path / "adir"
    folder.mkdir()
    assert main(["calibrate", "--val", str(val), "--test", str(test), "--out", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "is a directory" in err and "Traceback" not in err
    out = tmp_path / "x.json"
    assert main(["calibrate", "--val", str(val), "--test", str(test), "--out", str(out), "--no-save"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "--no-save" in err and "conflict" in err
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["calibrate", "--method", "all", "--val", str(val), "--test", str(test), "--out", str(afile)]) == 2
    assert "--out" in capsys.readouterr().err
    assert fitted == [] and not out.exists()  # all three refused before anything was fitted or written
    # a parent that is a file: an error naming --out, not a traceback
    assert main(["calibrate", "--val", str(val), "--test", str(test), "--out", str(afile / "c.json")]) == 2
    err = capsys.readouterr().err
    assert "--out: cannot write" in err


def test_method_all_writes_one_folder_named_in_the_output(files, tmp_path, capsys, monkeypatch):
    val, test = files
    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", "--method", "all", "--val", str(val), "--test", str(test), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert not list(tmp_path.glob("*.json"))  # nothing in the current directory itself
    names = posthoc.names(num_classes=5)
    assert report["saved"] == {n: str(Path("calibrators") / f"calibrator-{n}.json") for n in names}
    assert sorted(p.name for p in (tmp_path / "calibrators").iterdir()) == sorted(f"calibrator-{n}.json" for n in names)
    assert {"method", "before", "results", "saved"} == set(report)  # the JSON keys are otherwise unchanged
    assert main(["calibrate", "--method", "all", "--val", str(val), "--test", str(test)]) == 0
    text = capsys.readouterr().out
    assert "saved 9 calibrators into calibrators/" in text
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    assert "calibrators/" in capsys.readouterr().out


def test_bad_files_and_n_bins_exit_2_naming_the_file(files, tmp_path, capsys):
    val, test = files
    data = np.load(val)
    cases = {
        "strl.npz": dict(logits=data["logits"], labels=np.array(["a"] * len(data["labels"]))),
        "fl.npz": dict(logits=data["logits"], labels=data["labels"].astype(np.float64)),
        "one.npz": dict(logits=data["logits"][:1], labels=data["labels"][:1]),
        "empty.npz": dict(logits=data["logits"][:0], labels=data["labels"][:0]),
    }
    for method in ("ts", "all"):
        for name, arrays in cases.items():
            path = tmp_path / name
            np.savez(path, **arrays)
            assert main(["calibrate", "--method", method, "--val", str(path), "--test", str(test), "--no-save"]) == 2
            captured = capsys.readouterr()
            assert name in captured.err and captured.out == "", (method, name, captured.err)
    # bad test data names the test file (not a bare "logits")
    nan = tmp_path / "nan_test.npz"
    logits = np.load(test)["logits"].copy()
    logits[0, 0] = np.inf
    np.savez(nan, logits=logits, labels=np.load(test)["labels"])
    assert main(["calibrate", "--val", str(val), "--test", str(nan), "--no-save"]) == 2
    assert "nan_test.npz: logits: expected finite values" in capsys.readouterr().err
    assert main(["calibrate", "--val", str(val), "--test", str(test), "--n-bins", "1000000000", "--no-save"]) == 2
    assert "n_bins" in capsys.readouterr().err


def test_old_spellings_output_and_option_still_work_with_a_warning_on_stderr(files, tmp_path, capsys):
    # issue 18: --output became --out and --option (JSON) became --set (YAML); the old spellings work for one
    # release, each with a one-line warning on stderr, and give the same result as the new ones
    val, test = files
    base = ["calibrate", "--method", "dirichlet", "--val", str(val), "--test", str(test), "--json"]
    assert main([*base, "--set", "reg_lambda=1e-3", "--out", str(tmp_path / "new.json")]) == 0
    new = capsys.readouterr()
    assert new.err == ""
    assert main([*base, "--option", "reg_lambda=1e-3", "--output", str(tmp_path / "old.json")]) == 0
    old = capsys.readouterr()
    warnings = old.err.strip().splitlines()
    assert len(warnings) == 2, old.err
    assert warnings[0].startswith("caltrain calibrate: warning: --option is deprecated") and "use --set" in warnings[0]
    assert warnings[1].startswith("caltrain calibrate: warning: --output is deprecated") and "use --out" in warnings[1]
    new_report, old_report = json.loads(new.out), json.loads(old.out)
    assert old_report["params"] == new_report["params"] and old_report["after"] == new_report["after"]
    assert old_report["saved"] == str(tmp_path / "old.json") and (tmp_path / "old.json").is_file()
    assert posthoc.load(tmp_path / "old.json").get_params() == posthoc.load(tmp_path / "new.json").get_params()
    # the old spellings are hidden from --help: it teaches the new ones
    with pytest.raises(SystemExit):
        main(["calibrate", "--help"])
    text = capsys.readouterr().out
    assert "--out PATH" in text and "--set KEY=VALUE" in text and "--output" not in text and "--option" not in text


def test_set_reads_yaml_values_and_exponents_without_a_dot_as_numbers(files, capsys):
    # YAML 1.1 reads "1e-3" as a string; --set reads it as the number it means (as the old JSON --option did)
    from caltrain.cli._options import parse_settings

    assert parse_settings(["a=1e-3", "b=2", "c=[1, 2]", "d=equal-width", "e=true", "f.g=0.5", "h=-1E+2"]) == {
        "a": 0.001, "b": 2, "c": [1, 2], "d": "equal-width", "e": True, "f": {"g": 0.5}, "h": -100.0}
    with pytest.raises(ValueError, match="--set: .*expected KEY=VALUE"):
        parse_settings(["novalue"])
    val, test = files
    args = ["calibrate", "--method", "dirichlet", "--val", str(val), "--test", str(test), "--json", "--no-save"]
    assert main([*args, "--set", "reg_lambda=1e-3"]) == 0
    exponent = json.loads(capsys.readouterr().out)
    assert main([*args, "--set", "reg_lambda=0.001"]) == 0
    assert json.loads(capsys.readouterr().out)["params"] == exponent["params"]


def test_unknown_method_is_one_line_naming_method_with_the_closest(files, tmp_path, capsys, monkeypatch):
    # --method is checked against the calibrator registry when the command runs (building the parser imports no
    # torch), before anything is read, fitted or written
    val, test = files
    monkeypatch.chdir(tmp_path)
    assert main(["calibrate", "--method", "tss", "--val", str(val), "--test", str(test)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("caltrain calibrate: error: --method: expected one of ")
    assert "'dirichlet'" in captured.err and "'all'" in captured.err and "did you mean 'ts'" in captured.err
    assert captured.out == "" and not list(tmp_path.glob("calibrator*"))


def test_quiet_prints_the_table_only(files, tmp_path, capsys):
    val, test = files
    args = ["calibrate", "--val", str(val), "--test", str(test), "--out", str(tmp_path / "ts.json")]
    assert main(args) == 0
    full = capsys.readouterr().out
    assert main([*args[:-2], "--no-save", "--quiet"]) == 0
    quiet = capsys.readouterr().out
    assert "fitted on" in full and "saved ts to" in full
    assert full.startswith(quiet.rstrip("\n")) and "fitted on" not in quiet and "saved" not in quiet
    assert quiet.splitlines()[0].split() == ["metric", "before", "after", "description"]


def test_method_all_names_the_folder_given_with_out(files, tmp_path, capsys):
    val, test = files
    folder = tmp_path / "my-calibrators"
    assert main(["calibrate", "--method", "all", "--val", str(val), "--test", str(test), "--out", str(folder)]) == 0
    out = capsys.readouterr().out
    names = posthoc.names(num_classes=5)
    assert f"saved {len(names)} calibrators into {folder}/" in out
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"calibrator-{n}.json" for n in names)
