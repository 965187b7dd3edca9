"""A torchrun worker stops when its launcher is SIGKILLed (``caltrain.train.distributed.stop_with_parent``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.helpers import env

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")

#: The launcher (argv: marker path, worker source): starts the worker, writes its pid, then waits.
LAUNCHER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[1]])
open(sys.argv[1] + ".child", "w").write(str(child.pid))
time.sleep(600)
"""
#: The worker (argv: marker path): arms stop_with_parent as init_from_env does, says so, and sleeps.
WORKER = """
import sys, time
from caltrain.train.distributed import stop_with_parent
assert stop_with_parent()
open(sys.argv[1] + ".armed", "w").write("1")
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """The process exists and is not a zombie (a dead child nobody has reaped yet)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def test_worker_stops_when_its_launcher_is_killed(tmp_path):
    marker = str(tmp_path / "pid")
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, marker, WORKER], env=env())
    child_file, armed = Path(marker + ".child"), Path(marker + ".armed")
    deadline = time.time() + 120
    while time.time() < deadline and not (child_file.exists() and armed.exists()):
        assert launcher.poll() is None, "the launcher ended early"
        time.sleep(0.05)
    assert armed.exists(), "the worker never armed stop_with_parent"
    child = int(child_file.read_text())
    try:
        launcher.send_signal(signal.SIGKILL)  # no chance to stop its children
        launcher.wait()
        deadline = time.time() + 30  # generous: this only bounds the poll, it asserts nothing on speed
        while time.time() < deadline and _alive(child):
            time.sleep(0.05)
        assert not _alive(child), "the worker outlived its launcher"
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)


def test_elsewhere_it_does_nothing(monkeypatch):
    from caltrain.train import distributed

    monkeypatch.setattr(distributed.sys, "platform", "darwin")
    assert distributed.stop_with_parent() is False
