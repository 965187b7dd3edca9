"""CPU threads: the cores this process may use, the intra-op threads a run gets, and a one-thread scope.

torch runs each large operation on ``torch.get_num_threads()`` threads (default: one per core). Every such
operation is a parallel region whose threads wait for each other at its end; when another process keeps a
core busy, the thread on that core gets its turn only at the scheduler's next time slice (milliseconds), and
an operation that takes microseconds alone takes milliseconds. Measured on a 2-core machine with other busy
processes (BENCHMARKS.md, "threads"): a 30-epoch MLP run 30-45x slower with 2 threads than with 1, a
resnet20 step 4-10x slower. Small models gain nothing from a second thread even on an idle machine, so:

- :func:`choose_threads` (the ``threads: auto`` policy of a training run): one thread per
  :data:`MACS_PER_THREAD` multiply-accumulates of a training step (``3 x`` the forward MACs of a batch:
  forward, and backward's two products), at least 1, at most the cores this process may use
  (:func:`usable_cores`: the CPU affinity mask and the cgroup CPU quota), fewer when other processes keep
  cores busy (:func:`busy_cores`), and at most the budget a parallel suite gives each of its workers
  (:func:`set_budget`) or ``OMP_NUM_THREADS`` when set;
- :func:`count_macs`: the multiply-accumulates of one forward pass of one sample (linear and convolution
  layers, counted with forward hooks; at least the number of parameters);
- :func:`single_thread`: a scope running torch on one thread, and :func:`map_chunks`: a chunked computation on
  worker threads that each run their chunks' operations on one intra-op thread (the metrics' chunked
  accumulation: many small operations, each of which as a parallel region waits for both cores).

Reading: :data:`MACS_PER_THREAD` (1e9) is our choice from measurements on 2 cores (an MLP step of 128
samples, 3e7 MACs, and a digits CNN step, 2.3e8 MACs, are fastest on one thread idle and loaded; a resnet20
step on 32x32 images, 1.6e10 MACs, gains 1.6x from a second idle core); the threshold only has to separate
those orders of magnitude.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

import torch
from torch import nn

__all__ = [
    "MACS_PER_THREAD",
    "busy_cores",
    "choose_threads",
    "count_macs",
    "get_budget",
    "map_chunks",
    "prepare_threads",
    "resolve_threads",
    "set_budget",
    "single_thread",
    "usable_cores",
]

#: Multiply-accumulates of a training step per intra-op thread (module docstring).
MACS_PER_THREAD = 1e9

_budget: int | None = None
T = TypeVar("T")


def set_budget(threads: int | None) -> None:
    """Cap the threads ``threads: auto`` gives a run in this process (a parallel suite's worker: cores / jobs)."""
    global _budget
    _budget = None if threads is None else max(1, int(threads))


def get_budget() -> int | None:
    """The cap :func:`set_budget` set, or ``None``."""
    return _budget


def _cgroup_quota(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup CPU quota (v2 ``cpu.max``, v1 ``cpu.cfs_quota_us``), ``None`` if unlimited."""
    try:
        text = (root / "cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity mask, capped by the cgroup quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cores = min(cores, max(1, math.ceil(quota - 1e-9)))
    return max(1, cores)


def busy_cores() -> float:
    """Cores other processes keep busy: the 1-minute load average minus this process, 0 when not comparable.

    The load average counts the whole machine, so it is only used when this process may use every core
    (no affinity mask or quota narrower than the machine): inside a container it describes other tenants.
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0
    if usable_cores() != (os.cpu_count() or 1):
        return 0.0
    return max(0.0, load - 1.0)


def count_macs(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu") -> int:
    """Multiply-accumulates of one forward pass of one sample of ``input_shape``: linear and conv layers.

    One dry forward in eval mode without gradients (the model's parameters, buffers, mode and the global
    random state are left as they were). Layers other than ``nn.Linear`` / ``nn.Conv*d`` are not counted; the
    result is at least the number of parameters (each weight is used at least once per sample).
    """
    total = 0

    def hook(module: nn.Module, inputs: Any, output: Any) -> None:
        nonlocal total
        if not isinstance(output, torch.Tensor):
            return
        if isinstance(module, nn.Linear):
            total += module.in_features * output.numel()
        elif isinstance(module, nn.modules.conv._ConvNd):
            total += output.numel() * (module.in_channels // module.groups) * math.prod(module.kernel_size)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))]
    was_training = model.training
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            model.eval()
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return max(total, sum(p.numel() for p in model.parameters()))


def choose_threads(macs_per_step: float, *, cores: int, busy: float = 0.0, budget: int | None = None,
                   env: int | None = None) -> tuple[int, str]:
    """The ``threads: auto`` choice and why: ``(threads, reason)`` (module docstring for the rule).

    Args:
        macs_per_step: multiply-accumulates of one training step (forward and backward of a batch).
        cores: the cores this process may use (:func:`usable_cores`).
        busy: cores other processes keep busy (:func:`busy_cores`).
        budget: the cap of a parallel suite's worker (:func:`get_budget`), if any.
        env: ``OMP_NUM_THREADS`` when set.

    Example:
        >>> choose_threads(3e7, cores=16)
        (1, 'small model: 3e+07 MACs a step (one thread per 1e+09)')
        >>> choose_threads(1.6e10, cores=2)[0], choose_threads(1.6e10, cores=2, busy=1.5)[0]
        (2, 1)
    """
    wanted = max(1, int(macs_per_step // MACS_PER_THREAD))
    if wanted == 1:
        return 1, f"small model: {macs_per_step:.0e} MACs a step (one thread per {MACS_PER_THREAD:.0e})"
    caps = {"cores this process may use": cores}
    free = max(1, int(cores - busy + 0.5))
    if free < cores:
        caps[f"cores not busy with other processes (1-minute load average {busy + 1:.1f})"] = free
    if budget is not None:
        caps["the parallel suite's budget per job"] = budget
    if env is not None:
        caps["OMP_NUM_THREADS"] = env
    name, cap = min(caps.items(), key=lambda kv: kv[1])
    if wanted <= cap:
        return wanted, f"{macs_per_step:.0e} MACs a step: one thread per {MACS_PER_THREAD:.0e}"
    return cap, f"{macs_per_step:.0e} MACs a step wants {wanted} threads; capped by {name} ({cap})"


def prepare_threads(setting: int | str, device: torch.device | str = "cpu") -> None:
    """Threads while a run builds its data and model: ``N`` for a number, one for ``"auto"`` on CPU (the choice
    needs the model; building on one thread also keeps the data independent of the eventual count)."""
    if setting == "auto":
        if torch.device(device).type == "cpu" and torch.get_num_threads() != 1:
            torch.set_num_threads(1)
    elif setting and int(setting) != torch.get_num_threads():
        torch.set_num_threads(int(setting))


def resolve_threads(setting: int | str, *, model: nn.Module | None = None, input_shape: tuple[int, ...] = (),
                    batch_size: int = 1, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Apply a run's ``threads`` setting (``torch.set_num_threads``) and return what ``meta.json`` records.

    ``setting``: ``"auto"`` (:func:`choose_threads` on :func:`count_macs` of ``model``, on CPU; on another
    device the model does not run on the CPU and torch's default is kept), ``0`` (torch's default) or a
    number of threads.

    Returns:
        ``{"setting", "threads", "cores", "reason"}`` (and ``"macs_per_step"`` for ``auto`` on CPU).
    """
    cores = usable_cores()
    info: dict[str, Any] = {"setting": setting, "cores": cores}
    if setting == "auto":
        if torch.device(device).type != "cpu" or model is None:
            info.update(threads=torch.get_num_threads(), reason=f"device {device}: torch's default")
            return info
        try:
            macs = 3 * batch_size * count_macs(model, input_shape, device)
        except Exception:  # a user's model that a zero input of one sample does not suit: its parameters instead
            macs = 3 * batch_size * sum(p.numel() for p in model.parameters())
        env = os.environ.get("OMP_NUM_THREADS", "")
        n, reason = choose_threads(macs, cores=cores, busy=busy_cores(), budget=get_budget(),
                                   env=int(env) if env.isdigit() and int(env) > 0 else None)
        info.update(macs_per_step=macs, threads=n, reason=reason)
    elif setting:
        n = int(setting)
        info.update(threads=n, reason="set in the configuration")
    else:
        info.update(threads=torch.get_num_threads(), reason="0: torch's default")
        return info
    if n != torch.get_num_threads():
        torch.set_num_threads(n)
    return info


def map_chunks(fn: Callable[[int, int], T], n: int, chunk: int, *, workers: int | None = None) -> list[T]:
    """``[fn(start, stop) for each chunk of [0, n)]``, on ``workers`` Python threads that take chunks in turn.

    Each torch operation runs on one intra-op thread (:func:`single_thread`), and each worker takes the next
    chunk when it finishes one, so there is no per-operation barrier: a worker whose core another process
    holds only takes fewer chunks (torch releases the GIL inside its operations). The results come back in
    chunk order whatever the schedule, so a caller that sums them in that order gets the same bits with any
    number of workers.

    Args:
        fn: ``fn(start, stop)`` for the rows ``start:stop``.
        n, chunk: rows in all, rows per chunk.
        workers: threads (default: ``torch.get_num_threads()`` when called, at most one per chunk).
    """
    starts = list(range(0, n, chunk))
    workers = min(workers or torch.get_num_threads(), len(starts))
    with single_thread():
        if workers <= 1:
            return [fn(s, min(s + chunk, n)) for s in starts]
        results: list[Any] = [None] * len(starts)
        errors: list[BaseException] = []
        order = iter(range(len(starts)))
        lock = threading.Lock()

        def work() -> None:
            while not errors:
                with lock:
                    i = next(order, None)
                if i is None:
                    return
                try:
                    results[i] = fn(starts[i], min(starts[i] + chunk, n))
                except BaseException as err:  # re-raised in the caller
                    errors.append(err)

        helpers = [threading.Thread(target=work, daemon=True) for _ in range(workers - 1)]
        for t in helpers:
            t.start()
        work()
        for t in helpers:
            t.join()
        if errors:
            raise errors[0]
        return results


@contextlib.contextmanager
def single_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block (the previous count is restored after it).

    For loops of many small operations (chunked accumulations): each multi-threaded operation is a parallel
    region whose threads wait for each other, which costs a scheduler time slice per region when another
    process holds a core. The setting is process-wide: other Python threads running torch meanwhile run on
    one thread too.
    """
    old = torch.get_num_threads()
    if old == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)
