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
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "COMMAND" in out


def test_console_entry_point_runs():
    res = subprocess.run([sys.executable, "-m", "caltrain", "--help"], capture_output=True, text=True, check=True)
    assert "Train neural-network classifiers" in res.stdout
