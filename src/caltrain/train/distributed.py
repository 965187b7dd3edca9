"""Process-group helpers for DistributedDataParallel under ``torchrun``.

``torchrun --nproc_per_node=N -m caltrain train ...`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and the
rendezvous variables; :func:`init_from_env` joins the group (NCCL on CUDA, gloo on CPU). Evaluation is sharded
across ranks and the predictions are gathered back in dataset order, so every rank computes the same metrics
over the whole split (exact, not an average of per-rank metrics).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "all_gather_rows", "gather_rows", "init_from_env", "merge_sample_state", "sum_over_ranks"]


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


def init_from_env(device_type: str) -> DistContext:
    """Join the process group described by torchrun's environment variables, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
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
