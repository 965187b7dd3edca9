"""Process-group helpers for DistributedDataParallel under ``torchrun``.

``torchrun --nproc_per_node=N -m caltrain train ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous variables; :func:`init_from_env` joins the group (NCCL on CUDA, gloo on CPU). Evaluation is sharded
across ranks and the predictions are gathered back in dataset order, so every rank computes the same metrics
over the whole split (exact, not an average of per-rank metrics).

Orphans: when the ``torchrun`` launcher is killed with SIGKILL it cannot stop its workers, which would go on
training (and writing the run directory) with nobody to collect them. :func:`init_from_env` therefore calls
:func:`stop_with_parent` in every worker: on Linux the kernel sends the worker SIGTERM when its parent (the
launcher) dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere it does nothing.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "all_gather_rows", "gather_rows", "init_from_env", "merge_sample_state", "stop_with_parent",
           "sum_over_ranks"]

#: ``PR_SET_PDEATHSIG`` from ``<linux/prctl.h>``.
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size`` (1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def stop_with_parent(sig: int = signal.SIGTERM) -> bool:
    """Ask the kernel to send this process ``sig`` when its parent process dies (Linux only).

    Uses ``prctl(PR_SET_PDEATHSIG, sig)`` through ctypes. The parent may have died before the call took effect:
    the parent id is read before and checked after, and a changed one (the process was re-parented) sends
    ``sig`` at once. Returns True when armed, False where unsupported (not Linux, no libc, prctl failed): there
    it does nothing. The signal fires when the parent *thread* that started this process exits; torchrun starts
    its workers from its main thread.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, ctypes.c_ulong(int(sig)), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:  # the parent died before prctl: nobody will send the signal
        os.kill(os.getpid(), sig)
    return True


def init_from_env(device_type: str) -> DistContext:
    """Join the process group described by torchrun's environment variables, if any.

    Under torchrun the worker first arranges to receive SIGTERM when the launcher dies (:func:`stop_with_parent`).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    stop_with_parent()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistContext(rank=dist.get_rank(), world_size=dist.get_world_size(),
                       local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def all_gather_rows(t: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate every rank's ``t`` (first dimensions may differ) along dim 0, in rank order."""
    if not ctx.enabled:
        return t
    n = torch.tensor([t.shape[0]], device=t.device)
    sizes = [torch.zeros_like(n) for _ in range(ctx.world_size)]
    dist.all_gather(sizes, n)
    sizes_int = [int(s) for s in sizes]
    padded = t.new_zeros((max(sizes_int), *t.shape[1:]))
    padded[: t.shape[0]] = t
    parts = [torch.empty_like(padded) for _ in range(ctx.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes_int)])


def merge_sample_state(buffers: dict[str, torch.Tensor], snapshot: dict[str, torch.Tensor], ctx: DistContext) -> None:
    """Merge per-sample state tables that each rank updated for its own samples during an epoch.

    Every dataset index is visited by at most one rank per epoch, so the merged table is
    ``snapshot + sum over ranks of (table_r - snapshot)``; the result is written in place on every rank.
    """
    if not ctx.enabled:
        return
    for name, buf in buffers.items():
        base = snapshot[name]
        delta = (buf.to(torch.float64) - base.to(torch.float64)) if buf.is_floating_point() else (buf.long() - base.long())
        dist.all_reduce(delta)
        buf.copy_((base.to(delta.dtype) + delta).to(buf.dtype))


def gather_rows(tensors: tuple[torch.Tensor, ...], ctx: DistContext) -> tuple[torch.Tensor, ...]:
    """:func:`all_gather_rows` of each of ``tensors`` (returned unchanged when not distributed)."""
    if not ctx.enabled:
        return tensors
    return tuple(all_gather_rows(t, ctx) for t in tensors)


def sum_over_ranks(total: torch.Tensor, count: int, ctx: DistContext) -> tuple[torch.Tensor, int]:
    """A running sum (reduced in place) and its sample count, summed over every rank."""
    if not ctx.enabled:
        return total, count
    dist.all_reduce(total)
    n_total = torch.tensor(float(count), device=total.device)
    dist.all_reduce(n_total)
    return total, int(n_total)
