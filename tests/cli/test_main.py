import subprocess
import sys

import caltrain
from caltrain.cli.main import main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert capsys.readouterr().out.strip() == f"caltrain {caltrain.__version__}"


def test_help_lists_commands(capsys):
    # regression: this test passed with no command registered at all (it only looked for "COMMAND")
    from caltrain.cli.main import COMMANDS

    assert main([]) == 0
    out = capsys.readouterr().out
    expected = ["train", "bench", "evaluate", "calibrate", "report", "losses", "data", "models"]
    assert set(expected) <= set(COMMANDS)
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("    ") and line.split()]
    for name in expected:
        assert name in listed, f"caltrain --help does not list {name!r}:\n{out}"
        assert COMMANDS[name][1][:30] in out  # with its one-line help


def test_console_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "caltrain", "--help"], capture_output=True, text=True, check=True)
    assert "Train neural-network classifiers" in res.stdout
