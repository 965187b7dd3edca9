"""Run a function in two real processes joined in a gloo process group (for cross-process metric tests)."""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.multiprocessing as mp


def _entry(rank: int, world: int, init: str, body: Callable[..., Any], args: tuple, out: Any) -> None:
    torch.distributed.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        try:
            result = body(rank, *args)
        except Exception as exc:  # reported to the test instead of leaving it waiting on the queue
            result = repr(exc)
        out.put((rank, result))
    finally:
        torch.distributed.destroy_process_group()


def run_two_processes(body: Callable[..., Any], tmp_path, *args: Any, timeout: float = 180) -> dict[int, Any]:
    """``{rank: body(rank, *args)}`` for ranks 0 and 1 of a gloo group (``body``: a module-level function)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    init = f"file://{tmp_path / 'rendezvous'}"
    procs = [ctx.Process(target=_entry, args=(rank, 2, init, body, args, queue)) for rank in range(2)]
    for proc in procs:
        proc.start()
    results = dict(queue.get(timeout=timeout) for _ in range(2))
    for proc in procs:
        proc.join(timeout=60)
    assert all(proc.exitcode == 0 for proc in procs)
    return results
