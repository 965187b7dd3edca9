"""Running ``caltrain`` in a separate process as users do, killing it, and comparing run directories.

Shared by ``tests/train/test_processes.py`` and ``tests/reliability``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CALTRAIN = [sys.executable, "-m", "caltrain"]
TRAIN = [*CALTRAIN, "train", "--quiet"]
#: A run of a second or two: 512 synthetic samples, an MLP, 16 steps per epoch.
SMALL = ["--data", "synthetic", "--model", "mlp", "--set", "data.options.train_size=512",
         "--set", "data.options.val_size=128", "--set", "data.options.test_size=256", "--set", "data.options.dim=8",
         "--set", "data.batch_size=32", "--set", "eval.posthoc=[ts]", "--set", "optim.lr=0.05"]


def env() -> dict[str, str]:
    """The environment of a child ``caltrain``: this checkout's sources, one thread (bitwise-reproducible CPU)."""
    out = dict(os.environ)
    out["OMP_NUM_THREADS"] = "1"  # one thread everywhere: bitwise-reproducible CPU runs
    src = str(Path(__file__).resolve().parents[2] / "src")
    out["PYTHONPATH"] = src + os.pathsep + out.get("PYTHONPATH", "")
    return out


def summary(run: Path) -> dict:
    """A run's ``summary.json``."""
    return json.loads((run / "summary.json").read_text())


def metrics_lines(run: Path) -> int:
    """How many records ``metrics.jsonl`` holds (0 when it does not exist yet)."""
    path = run / "metrics.jsonl"
    return len(path.read_text().splitlines()) if path.exists() else 0


def start(cmd: list[str]) -> subprocess.Popen:
    """Start ``cmd`` in the background (stderr kept for the failure message)."""
    return subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def kill_after(proc: subprocess.Popen, run: Path, *, records: int, delay: float = 0.0, timeout: float = 240) -> bool:
    """SIGKILL ``proc`` ``delay`` seconds after ``run``'s ``metrics.jsonl`` holds ``records`` records.

    SIGKILL runs no clean-up handler: what a power cut or the OOM killer does. Returns False when the process
    ended by itself first (its exit status is then checked to be 0).
    """
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and metrics_lines(run) < records:
        time.sleep(0.02)
    if delay and proc.poll() is None:
        time.sleep(delay)
    if proc.poll() is not None:
        err = proc.stderr.read().decode()[-2000:]
        assert proc.returncode == 0, f"the run failed before it could be killed: {err}"
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    return True


def comparable_records(run: Path) -> list[dict]:
    """``metrics.jsonl`` without the wall-clock fields."""
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def assert_same_results(run: Path, reference: Path) -> None:
    """``run`` ended with bit-for-bit the results of ``reference``: metrics, records, logits, calibrators."""
    got, want = summary(run), summary(reference)
    for key in ("val", "test", "posthoc", "posthoc_params", "steps", "selected_epoch"):
        assert got[key] == want[key], key
    assert comparable_records(run) == comparable_records(reference)
    for name in ("logits_val.npz", "logits_test.npz"):
        with np.load(run / name) as a, np.load(reference / name) as b:
            assert a.files == b.files
            for key in a.files:
                assert np.array_equal(a[key], b[key]) and a[key].dtype == b[key].dtype, f"{name}:{key}"
    for path in sorted((reference / "calibrators").glob("*.json")):
        assert (run / "calibrators" / path.name).read_text() == path.read_text()
