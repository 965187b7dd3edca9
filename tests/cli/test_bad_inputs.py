"""Every bad input to the ``caltrain`` commands is one line on stderr naming what is wrong, and exit status 2.

The table below is the attack list of issue "runs you can trust": each row is an input that used to end in a
traceback, an out-of-memory kill or a silently wrong run (or that was already right and must stay so).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from caltrain.cli.main import EXIT_CODES, build_parser, main

REPO_SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if a dataset is loaded, a run starts, or a suite runs."""
    import caltrain.data
    import caltrain.train.suite
    import caltrain.train.trainer

    monkeypatch.setattr(caltrain.data, "create", lambda *a, **k: pytest.fail("the dataset was loaded"))
    monkeypatch.setattr(caltrain.train.trainer, "train", lambda *a, **k: pytest.fail("a run started"))
    monkeypatch.setattr(caltrain.train.suite, "run_suite", lambda *a, **k: pytest.fail("the suite ran"))


@pytest.fixture
def files(tmp_path, monkeypatch):
    """A working directory with the bad files of the table."""
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("epochs: [1\nseed: 0\n")
    Path("tab.yaml").write_text("epochs: 1\n\tseed: 2\n")
    Path("list.yaml").write_text("- epochs\n- seed\n")
    Path("scalar.yaml").write_text("3\n")
    Path("latin1.yaml").write_bytes(b"description: caf\xe9\n")
    Path("afile").write_text("not a directory\n")
    Path("empty").mkdir()
    Path("run").mkdir()
    Path("run/config.yaml").write_text("epochs: 1\ndata: {name: synthetic\n")
    Path("suite/runs/a").mkdir(parents=True)
    Path("suite/results.json").write_text("{truncated")
    np.savez("nolabels.npz", probs=np.full((4, 2), 0.5))
    np.savez("strlabels.npz", probs=np.full((4, 2), 0.5), labels=np.array(["a", "b", "a", "b"]))
    np.savez("ok.npz", probs=np.full((4, 2), 0.5), labels=np.array([0, 1, 0, 1]))
    return tmp_path


# (argv, words the one-line message must hold)
CASES = [
    # 1. malformed YAML: the file, the position, the problem
    (["train", "--config", "bad.yaml"], ["bad.yaml: not valid YAML (line 2, column 5)", "expected ',' or ']'"]),
    (["train", "--config", "tab.yaml"], ["tab.yaml: not valid YAML (line 2, column 1)"]),
    (["train", "--config", "list.yaml"], ["list.yaml: expected a mapping", "got list"]),
    (["train", "--config", "scalar.yaml"], ["scalar.yaml: expected a mapping", "got int"]),
    (["train", "--config", "latin1.yaml"], ["latin1.yaml: not a YAML file (not UTF-8"]),
    (["train", "--config", "missing.yaml"], ["--config missing.yaml: no such file"]),
    (["train", "--config", "empty"], ["empty: expected a YAML file, got a directory"]),
    (["train", "--resume", "run"], ["--resume run", "config.yaml: not valid YAML (line 3, column 1)"]),
    (["bench", "bad.yaml"], ["bad.yaml: not valid YAML (line 2, column 5)"]),
    (["bench", "list.yaml"], ["list.yaml: expected a mapping"]),
    (["bench", "missing.yaml"], ["suite missing.yaml: no such file"]),
    # 2. devices: checked before any work (this machine has no GPU 99, whatever it has)
    (["train", "--set", "device=cuda:99"], ["device: 'cuda:99' is not available", "available here: auto, cpu"]),
    (["bench", "quick", "--set", "device=cuda:99"], ["device: 'cuda:99' is not available"]),
    (["train", "--set", "device=cudax"], ["device: expected 'auto', 'cpu', 'mps' or 'cuda[:N]'"]),
    # 3. --out on a file (never replaced, not even with --overwrite), or below one
    (["train", "--out", "afile"], ["--out afile: is an existing file"]),
    (["train", "--out", "afile", "--overwrite"], ["--out afile: is an existing file"]),
    (["train", "--out", "afile/run"], ["--out afile/run: afile is a file"]),
    (["bench", "quick", "--out", "afile"], ["--out afile: is an existing file"]),
    (["report", "suite", "--out", "empty"], ["--out empty: is a directory"]),
    # 4. evaluate's options, with bounds
    (["evaluate", "--demo", "--n", "-3"], ["--n: expected an integer >= 1, got -3"]),
    (["evaluate", "--demo", "--n", "0"], ["--n: expected an integer >= 1, got 0"]),
    (["evaluate", "--demo", "--n", "1000000000"], ["--n: expected at most 1,000,000"]),
    (["evaluate", "--demo", "--bootstrap", "-1"], ["--bootstrap: expected an integer >= 0, got -1"]),
    (["evaluate", "--demo", "--bootstrap", "1000000000"], ["--bootstrap: expected at most 100,000"]),
    (["evaluate", "--demo", "--n-bins", "0"], ["--n-bins: expected an integer >= 1, got 0"]),
    (["evaluate", "--demo", "--n-bins", "1000000000"], ["--n-bins: expected at most 10,000"]),
    (["evaluate", "--demo", "--ignore-index", "3"], ["--ignore-index: applies to a predictions file"]),
    (["evaluate", "ok.npz", "--n", "5"], ["--n: sets the size of --demo"]),
    (["train", "--set", "eval.n_bins=1000000000"], ["eval.n_bins: expected an integer in [1, 10000]"]),
    (["report", "suite", "--dpi", "100000"], ["--dpi: expected at most 600"]),
    # 7. the attack list
    (["train", "--set", "epochs=abc"], ["epochs: Input should be a valid integer"]),
    (["train", "--set", "epochs=-1"], ["epochs: Input should be greater than or equal to 1"]),
    (["train", "--set", "data.batch_size=0"], ["data.batch_size: Input should be greater than or equal to 1"]),
    (["train", "--set", "foo=1"], ["foo: unknown key"]),
    (["train", "--set", "epochs"], ["expected KEY=VALUE"]),
    (["train", "--set", "optim=3"], ["optim: Input should be a valid dictionary"]),
    (["train", "--set", "seed=99999999999999999999"], ["seed: Input should be less than or equal to 2147483647"]),
    (["train", "--set", "model.name=mlp", "--set", "model.options.hidden=0"], ["model.options.hidden:"]),
    (["train", "--set", "loss.name=focal", "--set", "loss.options.gamma=abc"], ["loss.options.gamma: Input should be"]),
    (["train", "--set", "data.options.train_size=abc"], ["data.options.train_size: Input should be a valid integer"]),
    (["train", "--set", "precision=bf16", "--set", "device=cpu"], ["precision: 'bf16' needs a CUDA device"]),
    (["train", "--resume", "nowhere"], ["--resume nowhere: no such run directory"]),
    (["train", "--resume", "afile"], ["--resume afile: is a file, not a run directory"]),
    (["bench", "quick", "--seeds", "0"], ["--seeds: expected an integer >= 1, got 0"]),
    (["bench", "quick", "--seeds", "-2"], ["--seeds: expected an integer >= 1, got -2"]),
    (["bench", "quick", "--set", "epochs=abc"], ["run synthetic__ce__seed0", "epochs: Input should be"]),
    (["bench", "nosuch"], ["unknown suite 'nosuch'"]),
    (["evaluate", "missing.npz"], ["no such file: missing.npz"]),
    (["evaluate", "nolabels.npz"], ["nolabels.npz: expected a 'labels' array"]),
    (["evaluate", "strlabels.npz"], ["strlabels.npz: 'labels' must hold numbers"]),
    (["evaluate", "empty"], ["empty: expected a .npz or .pt file, got a directory"]),
    (["report", "empty"], ["not a suite directory"]),
    (["report", "suite"], ["suite/results.json: not valid JSON (line 1, column 2)"]),
    (["report", "suite", "--max-classes", "0"], ["--max-classes: expected an integer >= 1"]),
    (["losses", "nosuch", "--json"], ["unknown loss 'nosuch'"]),
    (["data", "nosuch", "--json"], ["unknown dataset 'nosuch'"]),
    (["models", "nosuch", "--json"], ["unknown model 'nosuch'"]),
]


@pytest.mark.parametrize("argv, words", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_is_one_line_and_exit_2(argv, words, files, no_work, capsys, monkeypatch):
    monkeypatch.delenv("CALTRAIN_DEBUG", raising=False)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"caltrain {argv[0]}: error: "), err
    for word in words:
        assert word in err, (word, err)
    assert not Path("runs").exists()  # nothing was written
    assert Path("afile").read_text() == "not a directory\n"


def test_cuda_without_gpu_is_checked_before_any_work(files, no_work, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device in ("cuda", "cuda:3"):
        assert main(["train", "--set", f"device={device}"]) == 2
        err = capsys.readouterr().err
        assert f"device: '{device}' is not available" in err and "available here: auto, cpu" in err
    from caltrain.train.config import build_config, check_device

    check_device(build_config(overrides=["device=auto"]))  # auto falls back to the CPU: never an error
    check_device(build_config(overrides=["device=cpu"]))


def test_mps_without_apple_gpu(files, no_work, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert main(["train", "--set", "device=mps"]) == 2
    assert "device: 'mps' is not available" in capsys.readouterr().err


def test_help_epilog_lists_every_exit_code_and_caltrain_debug():
    text = build_parser().format_help()
    for code in (0, 1, 2, 3, 130, 141):
        assert code in EXIT_CODES
        assert f"\n  {code:<4d} {EXIT_CODES[code]}" in text
    assert "CALTRAIN_DEBUG=1" in text
    sub = build_parser("train").format_help()  # the subcommands' --help shows the exit codes too
    assert "exit status:" in sub


def _caltrain(*args: str, env: dict[str, str] | None = None, **kw) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": REPO_SRC, **(env or {})}
    full.pop("CALTRAIN_DEBUG", None) if "CALTRAIN_DEBUG" not in (env or {}) else None
    return subprocess.run([sys.executable, "-m", "caltrain", *args], capture_output=True, text=True, env=full, **kw)


def test_caltrain_debug_shows_the_traceback_default_does_not(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("epochs: [1\n")
    quiet = _caltrain("train", "--config", str(bad))
    assert quiet.returncode == 2 and "Traceback" not in quiet.stderr
    assert len(quiet.stderr.strip().splitlines()) == 1 and "not valid YAML" in quiet.stderr
    for value in ("0", "false", ""):  # off
        assert "Traceback" not in _caltrain("train", "--config", str(bad), env={"CALTRAIN_DEBUG": value}).stderr
    loud = _caltrain("train", "--config", str(bad), env={"CALTRAIN_DEBUG": "1"})
    assert loud.returncode == 2 and "Traceback (most recent call last)" in loud.stderr
    assert loud.stderr.strip().splitlines()[-1].startswith("caltrain train: error: ")


def test_broken_pipe_exits_quietly_with_141():
    # the reader is gone before the first write: deterministic, whatever the output's size
    for args in (["losses"], ["evaluate", "--demo", "--n", "100"], ["data", "--json"]):
        proc = subprocess.Popen([sys.executable, "-m", "caltrain", *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": REPO_SRC})
        proc.stdout.close()
        err = proc.stderr.read().decode()
        proc.stderr.close()
        assert proc.wait() == 141, err
        assert err == "", err


def test_keyboard_interrupt_is_one_line_and_130(monkeypatch, capsys):
    import caltrain.cli.losses

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(caltrain.cli.losses, "run", interrupted)
    assert main(["losses"]) == 130
    assert capsys.readouterr().err == "caltrain losses: interrupted\n"


def test_unexpected_error_shows_its_traceback_and_exits_1(monkeypatch, capsys):
    # a bug is not a bad input: its traceback is printed by default (a bug report needs it); bad inputs stay one line
    import caltrain.cli.losses

    def bug(args):
        raise RuntimeError("something broke")

    monkeypatch.delenv("CALTRAIN_DEBUG", raising=False)
    monkeypatch.setattr(caltrain.cli.losses, "run", bug)
    assert main(["losses"]) == 1
    err = capsys.readouterr().err
    assert "caltrain losses: error: RuntimeError: something broke" in err and "please report it" in err
    assert err.count("Traceback (most recent call last)") == 1
    monkeypatch.setenv("CALTRAIN_DEBUG", "1")
    assert main(["losses"]) == 1
    assert capsys.readouterr().err.count("Traceback (most recent call last)") == 1
