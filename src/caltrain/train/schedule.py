"""Learning-rate schedules as a pure function of the fractional epoch, stepped once per optimiser step.

``lr(t) = base_lr * warmup(t) * decay(t)`` with ``t = step / steps_per_epoch``. Because the factor is a pure
function of the step count, a resumed run (which restores the scheduler's step count) continues exactly.
"""

from __future__ import annotations

import bisect
import math

import torch

from caltrain.train.config import ScheduleConfig

__all__ = ["build_scheduler", "lr_factor"]


def lr_factor(cfg: ScheduleConfig, epoch: float, total_epochs: int) -> float:
    """The multiplier of the base learning rate at fractional epoch ``epoch`` of a ``total_epochs`` run.

    - warm-up: ``epoch / warmup_epochs`` while ``epoch < warmup_epochs`` (linear from 0);
    - ``multistep``: ``gamma ** (number of milestones <= epoch)``;
    - ``step``: ``gamma ** floor(epoch / step_size)``;
    - ``cosine``: ``m + (1 - m) (1 + cos(pi u)) / 2``, ``u`` the fraction of the post-warm-up run done,
      ``m = min_lr_factor``;
    - ``constant``: 1.
    """
    warm = min(1.0, epoch / cfg.warmup_epochs) if cfg.warmup_epochs > 0 else 1.0
    if cfg.name == "multistep":
        decay = cfg.gamma ** bisect.bisect_right(sorted(cfg.milestones), epoch)
    elif cfg.name == "step":
        decay = cfg.gamma ** math.floor(epoch / cfg.step_size)
    elif cfg.name == "cosine":
        span = max(total_epochs - cfg.warmup_epochs, 1e-12)
        u = min(max((epoch - cfg.warmup_epochs) / span, 0.0), 1.0)
        decay = cfg.min_lr_factor + (1 - cfg.min_lr_factor) * 0.5 * (1 + math.cos(math.pi * u))
    else:
        decay = 1.0
    return warm * decay


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, *, steps_per_epoch: int, total_epochs: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_factor`; call ``scheduler.step()`` after every optimiser step."""
    if steps_per_epoch < 1:
        raise ValueError(f"steps_per_epoch: expected >= 1, got {steps_per_epoch}")
    target = getattr(optimizer, "base_optimizer", optimizer)  # SAM shares its base optimiser's groups
    return torch.optim.lr_scheduler.LambdaLR(
        target, lambda step: lr_factor(cfg, step / steps_per_epoch, total_epochs)
    )
