"""Shared by the bench scripts: the machine's description and a background load of busy processes.

``busy_load(n)`` starts ``n`` processes that spin (``while True: pass``), the load the issue measures
against, and stops them (by their process ids) when the block ends.
"""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import time
from typing import Iterator


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> dict:
    """CPU, cores this process may use, load averages, torch version and threads."""
    import torch

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {"cpu": cpu_name(), "cores": cores, "load": [round(x, 2) for x in os.getloadavg()],
            "torch": torch.__version__, "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


@contextlib.contextmanager
def busy_load(n: int) -> Iterator[list[int]]:
    """``n`` busy-looping Python processes for the duration of the block; yields their pids."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.5 if n else 0)  # let them get going
        yield [p.pid for p in procs]
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
