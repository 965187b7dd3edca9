import subprocess
import sys

import pytest

import caltrain
from caltrain.cli.main import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"caltrain {caltrain.__version__}"


def test_help_lists_commands(capsys):
    # regression: this test passed with no command registered at all (it only looked for "COMMAND")
    from caltrain.cli.main import COMMANDS

    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    expected = ["train", "bench", "evaluate", "calibrate", "report", "losses", "data", "models"]
    assert set(expected) <= set(COMMANDS)
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("    ") and line.split()]
    for name in expected:
        assert name in listed, f"caltrain --help does not list {name!r}:\n{out}"
        assert COMMANDS[name][1][:30] in out  # with its one-line help


def test_no_command_exits_2_with_the_usage(capsys):
    # issue 18: `caltrain` alone printed the help and exited 0; argparse's rule for a missing argument is the
    # usage on stderr and status 2
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("usage: caltrain ")
    assert "caltrain: error: a COMMAND is required, one of: train, bench, evaluate" in err


@pytest.mark.parametrize("argv, prog", [
    (["evaluate", "--no-such-option"], "caltrain evaluate"),
    (["calibrate", "--val", "v.npz", "--test", "t.npz", "--frobnicate", "3"], "caltrain calibrate"),
    (["losses", "--jsn"], "caltrain losses"),
    (["train", "--epochs", "1", "extra"], "caltrain train"),
    (["bench", "quick", "--section.key"], "caltrain bench"),  # not KEY=VALUE: not an override
])
def test_unknown_option_after_a_command_shows_that_commands_usage(argv, prog, capsys):
    # issue 18: an unknown option after a subcommand showed the top level's usage (`caltrain [-h] [--version]`)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: {prog} ") and f"{prog}: error: unrecognized arguments:" in err, err


def test_console_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "caltrain", "--help"], capture_output=True, text=True, check=True)
    assert "Train neural-network classifiers" in res.stdout
