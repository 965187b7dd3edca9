"""Two processes on one run folder or one suite: the run's lock (``RunDir.lock``) decides who writes.

Regression: two ``caltrain train --out D`` processes both exited 0 and one run's output was lost; two
``caltrain bench`` workers on one folder trained every run twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from caltrain.train.run_dir import RunDir, RunLockedError, SuiteDir

SRC = str(Path(__file__).resolve().parents[2] / "src")
TINY = ["--data", "synthetic", "--quiet", "--set", "eval.posthoc=[ts]", "--set", "threads=1",
        "--set", "data.options={train_size: 128, val_size: 64, test_size: 64, dim: 4}"]


def _caltrain(*args: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from caltrain.cli.main import main; sys.exit(main())", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}


def _wait_for_holder(run: RunDir, pid: int, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            if json.loads(run.lockfile.read_text() or "{}").get("pid") == pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    pytest.fail("the first process never took the lock")


def test_two_writers_on_one_run_folder_second_exits_2_naming_the_holder(tmp_path):
    run = RunDir(tmp_path / "run")
    first = subprocess.Popen(_caltrain("train", *TINY, "--epochs", "100000", "--out", str(run.root)), env=_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_holder(run, first.pid, first)
        for extra in (["--overwrite"], []):  # replacing it, or writing into it: both refused while it runs
            second = subprocess.run(_caltrain("train", *TINY, "--epochs", "1", "--out", str(run.root), *extra),
                                    env=_env(), capture_output=True, text=True, timeout=300)
            assert second.returncode == 2, second.stderr
            if extra:
                assert f"pid {first.pid} on host {socket.gethostname()}" in second.stderr, second.stderr
                assert "in use" in second.stderr and "Traceback" not in second.stderr
        resumed = subprocess.run(_caltrain("train", "--resume", str(run.root)), env=_env(), capture_output=True,
                                 text=True, timeout=300)
        assert resumed.returncode == 2 and f"pid {first.pid}" in resumed.stderr, resumed.stderr
        with pytest.raises(RunLockedError, match=f"pid {first.pid}"):  # the library refuses too
            with run.lock():
                pass
        assert first.poll() is None  # the first run was not disturbed
    finally:
        first.send_signal(signal.SIGKILL)  # kill -9: the operating system releases the lock
        first.wait()
    with run.lock():  # no stale lock
        pass
    third = subprocess.run(_caltrain("train", *TINY, "--epochs", "1", "--out", str(run.root), "--overwrite"),
                           env=_env(), capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stderr
    assert run.is_complete() and run.lockfile.is_file()


def test_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    run = RunDir(tmp_path / "run")
    with run.lock():
        with run.lock():  # the CLI locks before an overwrite, train() again around the run
            assert json.loads(run.lockfile.read_text())["pid"] == os.getpid()
    probe = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        from caltrain.train.run_dir import RunDir
        with RunDir({str(run.root)!r}).lock():
            print("locked")
    """)], env=_env(), capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0 and "locked" in probe.stdout, probe.stderr


SUITE = """
description: two workers share this grid
seeds: [0, 1]
base: {epochs: 3, quiet: true, threads: 1, eval: {posthoc: [ts]}}
datasets:
  synthetic: {data: {name: synthetic, batch_size: 64,
              options: {train_size: 256, val_size: 64, test_size: 64, dim: 4}}, model: {name: mlp}}
objectives:
  ce: {loss: {name: ce}}
  ls: {loss: {name: ls, options: {smoothing: 0.1}}}
"""


def test_two_workers_on_one_suite_train_every_run_once_and_both_aggregate_all(tmp_path):
    suite_file = tmp_path / "shared.yaml"
    suite_file.write_text(SUITE)
    out = SuiteDir(tmp_path / "out")
    cmd = _caltrain("bench", str(suite_file), "--out", str(out.root), "--no-report")
    workers = [subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    logs = [w.communicate(timeout=500) for w in workers]
    for w, (_, err) in zip(workers, logs):
        assert w.returncode == 0, err
    names = {f"synthetic__{o}__seed{s}" for o in ("ce", "ls") for s in (0, 1)}
    trained = [set(re.findall(r"\] (\S+): trained", err)) for _, err in logs]
    assert not (trained[0] & trained[1]), logs  # exactly once
    assert trained[0] | trained[1] == names, logs
    for stdout, _ in logs:  # each worker's table (printed after waiting for the other's runs) has every run
        # (whether the workers overlapped depends on the machine's load: a worker that started late finds
        # every run complete, one that overlapped trained some; both cases must end with the full table)
        assert "| ce " in stdout and "| ls " in stdout
    rows = json.loads(out.results("json").read_text())
    rows = rows["rows"] if isinstance(rows, dict) and "rows" in rows else rows
    assert sorted(r["objective"] for r in rows) == ["ce", "ls"] and all(r["n_seeds"] == 2 for r in rows)
    assert not out.stale.exists()
    for name in names:
        run = out.run(name)
        assert run.is_complete() and len([r for r in run.read_metrics() if "lr" in r]) == 3
