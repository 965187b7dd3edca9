"""examples/fit_custom_model.py: a user's CNN and Dataset through caltrain.fit, killed (SIGKILL) after its first
checkpoint and resumed, ends with the numbers of an uninterrupted run; its run directories render as reports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from tests.integration._examples import load_example  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 3

#: Runs the example with a dataset slowed down (2 ms a sample), so a kill lands inside the run, not after it.
_SLOW_RUN = """
import sys, time
sys.path.insert(0, {examples!r})
import fit_custom_model as ex
get = ex.DigitImages.__getitem__
ex.DigitImages.__getitem__ = lambda self, i: (time.sleep(0.002), get(self, i))[1]
ex.main({out!r}, {epochs}, quiet=True, objectives=("socrates",))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


def _without_time(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k != "train_seconds"}


def test_fit_example_resumes_exactly_after_sigkill(tmp_path):
    example = load_example("fit_custom_model")
    full = example.main(tmp_path / "full", EPOCHS, quiet=True, objectives=("socrates",))["socrates"]

    cut = tmp_path / "cut"
    code = _SLOW_RUN.format(examples=str(ROOT / "examples"), out=str(cut), epochs=EPOCHS)
    proc = subprocess.Popen([sys.executable, "-c", code], env=_env(), cwd=tmp_path)
    checkpoint = cut / "socrates" / "checkpoint.pt"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists(), "the run ended before its first checkpoint"
    assert not (cut / "socrates" / "summary.json").exists(), "the kill came after the end of the run"

    resumed = example.main(cut, EPOCHS, resume=True, quiet=True, objectives=("socrates",))["socrates"]
    assert _without_time(resumed) == _without_time(full)
    records = [json.loads(line) for line in (cut / "socrates" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, EPOCHS + 1))


def test_fit_example_trains_both_objectives_into_cli_run_directories(tmp_path):
    from caltrain.cli.main import main as cli

    example = load_example("fit_custom_model")
    summaries = example.main(tmp_path, 1, quiet=True)
    assert set(summaries) == {"socrates", "mbls"}
    for loss, summary in summaries.items():
        run = tmp_path / loss
        assert json.loads((run / "summary.json").read_text())["test"] == summary["test"]
        assert summary["data"]["path"]["train"] == "DataLoader"
        assert cli(["report", str(run)]) == 0 and (run / "report.html").is_file()
    assert summaries["socrates"]["abstention"] is not None and summaries["mbls"]["abstention"] is None
