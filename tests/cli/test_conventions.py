"""One set of command-line conventions (issue 18): the same option for the same thing in every command, a help
line for every option, two examples at the end of every help, one JSON shape for the listings, and a
``caltrain --help`` that imports no torch."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from caltrain.cli import main as cli_main
from caltrain.cli.main import COMMANDS, command_parsers, main

REPO_SRC = str(Path(__file__).resolve().parents[2] / "src")
PARSERS = command_parsers()
#: Commands that print a result (all of them), and those that compute (and so take --device).
PRINTS_RESULTS = ("train", "bench", "evaluate", "calibrate", "report", "losses", "data", "models")
COMPUTES = ("train", "bench", "evaluate", "calibrate")
LISTINGS = (["losses"], ["data"], ["models"], ["bench", "--list"])


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The visible options of ``parser`` (deprecated aliases are hidden), by their long spelling."""
    return {a.option_strings[-1]: a for a in parser._actions
            if a.option_strings and a.help is not argparse.SUPPRESS and a.option_strings != ["-h", "--help"]}


def test_every_command_has_a_parser():
    assert set(COMMANDS) == set(PARSERS) and set(PRINTS_RESULTS) <= set(PARSERS)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_option_and_argument_has_a_help_line(name):
    # regression: train's --epochs and --seed had none
    parser = PARSERS[name]
    for action in parser._actions:
        if action.help is argparse.SUPPRESS:
            continue
        what = action.option_strings or action.dest
        assert action.help and action.help.strip(), f"caltrain {name}: {what} has no help"


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_help_ends_with_two_examples_that_parse(name):
    parser = PARSERS[name]
    text = parser.format_help()
    head, sep, block = text.rpartition("\nexamples:\n")
    assert sep, f"caltrain {name} --help has no examples block"
    lines = [line for line in block.splitlines() if line.strip()]
    commands = [line.strip() for line in lines if line.startswith("  caltrain ")]
    assert len(commands) == 2 and len(lines) == 4, block  # each example, then what it does
    for example in commands:
        words = shlex.split(example)[1 + len(name.split()):]
        args, unknown = parser.parse_known_args(words)  # an example that does not parse exits 2 here
        assert all(u.startswith("--") and "=" in u for u in unknown), (example, unknown)
    assert "exit status:" in head  # and the exit codes before them


def test_the_top_level_help_ends_with_two_examples():
    text = cli_main.build_parser().format_help()
    block = text.rpartition("\nexamples:\n")[2]
    assert [line.split()[0] for line in block.splitlines() if line.startswith("  caltrain")] == ["caltrain"] * 2


@pytest.mark.parametrize("name", PRINTS_RESULTS)
def test_every_command_that_prints_results_has_quiet_and_json(name):
    options = _options(PARSERS[name])
    for flag in ("--quiet", "--json"):
        assert flag in options and isinstance(options[flag], argparse._StoreTrueAction), (name, flag)


@pytest.mark.parametrize("name", COMPUTES)
def test_every_command_that_computes_has_device(name):
    assert _options(PARSERS[name])["--device"].metavar == "DEVICE"


def test_the_same_option_is_spelled_and_parsed_the_same_everywhere():
    seen: dict[str, tuple] = {}
    for name, parser in PARSERS.items():
        for flag, action in _options(parser).items():
            if flag in ("--out", "--set", "--device", "--quiet", "--json", "--import", "--seed", "--n-bins"):
                shape = (type(action).__name__, action.metavar, action.nargs)
                assert seen.setdefault(flag, shape) == shape or flag == "--out", (name, flag, shape, seen[flag])
        assert "--output" not in _options(parser) and "--option" not in _options(parser), name
    assert seen["--set"] == ("_AppendAction", "KEY=VALUE", None)
    assert {name for name, p in PARSERS.items() if "--set" in _options(p)} >= {"train", "bench", "calibrate"}


def test_the_cli_spelling_of_the_abstention_conventions_is_the_owners():
    from caltrain import abstention
    from caltrain.cli import _options

    assert _options.ABSTENTION_CONVENTIONS == abstention.ABSTENTION_CONVENTIONS
    assert set(_options.CALIBRATABLE) == set(abstention.CALIBRATABLE)
    assert set(_options.LEGACY_CALIBRATABLE) == set(abstention._LEGACY)


@pytest.mark.parametrize("argv", LISTINGS, ids=" ".join)
def test_every_listing_has_one_json_shape_and_quiet_prints_the_names(argv, capsys):
    assert main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert set(payload) == {"entries", "common_options"} and isinstance(payload["common_options"], dict)
    assert payload["entries"] and all({"name", "summary"} <= set(e) for e in payload["entries"])
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == [e["name"] for e in payload["entries"]]


def test_losses_common_options_are_the_reduction():
    from caltrain.cli.losses import COMMON_OPTIONS
    from caltrain.losses.base import Objective

    import inspect

    assert inspect.signature(Objective.__init__).parameters["reduction"].default == COMMON_OPTIONS["reduction"]


def _python(code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": REPO_SRC}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env)


HEAVY = ("torch", "numpy", "caltrain.metrics", "caltrain.losses", "caltrain.posthoc", "caltrain.data",
         "caltrain.models", "caltrain.train", "caltrain.analysis", "caltrain.report", "caltrain.abstention")


def test_help_version_and_every_parser_import_no_torch():
    # issue 18: `caltrain --help` took 3-6 s because the package root imported every subpackage and torch. Not a
    # timing test: it checks what was imported (bench/cli_startup.py measures the time).
    proc = _python(f"""
        import io, sys, contextlib
        import caltrain.cli.main as m
        heavy = {HEAVY!r}
        loaded = lambda: sorted(n for n in heavy if n in sys.modules)
        assert loaded() == [], ("import caltrain.cli.main", loaded())
        for argv in (["--help"], ["--version"]):
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    m.main(argv)
                except SystemExit as e:
                    assert e.code == 0, (argv, e.code)
            assert loaded() == [], (argv, loaded())
        for name, parser in m.command_parsers().items():
            parser.format_help()
            assert loaded() == [], ("caltrain " + name + " --help", loaded())
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_the_package_root_is_lazy_and_still_exports_every_name():
    proc = _python("""
        import sys
        import caltrain
        assert "torch" not in sys.modules and "caltrain.metrics" not in sys.modules
        assert set(caltrain.__all__) <= set(dir(caltrain))
        import caltrain.train.fit, caltrain.posthoc, caltrain.metrics, caltrain.train
        assert caltrain.fit is caltrain.train.fit.fit
        assert caltrain.TemperatureScaling is caltrain.posthoc.TemperatureScaling
        assert caltrain.expected_calibration_error is caltrain.metrics.expected_calibration_error
        assert caltrain.train_model is caltrain.train.train and caltrain.metrics is sys.modules["caltrain.metrics"]
        namespace = {}
        exec("from caltrain import *", namespace)
        assert set(caltrain.__all__) <= set(namespace)
        try:
            caltrain.no_such_name
        except AttributeError as err:
            assert "no_such_name" in str(err)
        else:
            raise AssertionError("no AttributeError")
        print("ok")
    """)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_a_study_of_bench_is_one_entry_of_studies(monkeypatch, capsys):
    # the extension point for `caltrain bench NAME` that is not a suite grid (claims, estimators): a function and
    # one entry of STUDIES, listed by --list; the options it cannot honour are refused by name before it starts
    from caltrain.cli import bench

    calls = []
    study = bench.Study(lambda args, imports: calls.append((args.suite, args.seeds)) or 0, "say hello", ("json",))
    monkeypatch.setitem(bench.STUDIES, "hello", study)
    assert main(["bench", "hello", "--seeds", "3"]) == 0 and calls == [("hello", 3)]
    assert main(["bench", "hello", "--json"]) == 2 and len(calls) == 1
    assert "--json: does not apply to 'caltrain bench hello' (a study, not a suite)" in capsys.readouterr().err
    assert main(["bench", "--list", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)["entries"]}
    assert entries["hello"]["summary"] == "say hello" and {"claims", "estimators", "quick"} <= set(entries)


def test_the_shipped_studies_refuse_what_they_cannot_honour(capsys):
    for argv, flag in ((["bench", "estimators", "--json"], "--json"), (["bench", "estimators", "--device", "cpu"],
                       "--device"), (["bench", "claims:ats", "--quiet"], "--quiet")):
        assert main(argv) == 2
        assert f"{flag}: does not apply to 'caltrain bench {argv[1]}'" in capsys.readouterr().err
