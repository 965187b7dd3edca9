"""The NaN guard: a run whose loss or weights stop being finite stops with :class:`TrainingDiverged`.

The loss is checked from a flag accumulated on the device and read on the host every few steps (no sync per
step). The weights are checked once per epoch, after its last step, and the logits of every split the loop
evaluates before their metrics are computed: an update that breaks the model on an epoch's last step (whose loss
was still finite) is caught before the epoch is recorded or checkpointed. Either way the last good checkpoint
stays in place.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["TrainingDiverged", "check_finite_loss", "check_finite_split", "check_finite_weights"]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _diverged(what: str, epoch: int, step: int, checkpoint: Path) -> TrainingDiverged:
    return TrainingDiverged(
        f"non-finite {what} at epoch {epoch + 1}, step {step}; stopping. The last good checkpoint "
        f"is {checkpoint if checkpoint.exists() else '(none yet)'}; try a lower "
        "learning rate, gradient clipping (optim.grad_clip) or fp32"
    )


def check_finite_loss(nonfinite: torch.Tensor, *, epoch: int, step: int, checkpoint: Path) -> None:
    """Raise :class:`TrainingDiverged` when the device flag ``nonfinite`` is set (reads it on the host)."""
    if bool(nonfinite):
        raise _diverged("loss", epoch, step, checkpoint)


def check_finite_weights(model: nn.Module, *, epoch: int, step: int, checkpoint: Path) -> None:
    """Raise :class:`TrainingDiverged` when a floating-point parameter or buffer of ``model`` is not finite.

    One host read for the whole model.
    """
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    if tensors and not bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
        raise _diverged("weights", epoch, step, checkpoint)


def check_finite_split(finite: bool, split: str, *, epoch: int, step: int, checkpoint: Path) -> None:
    """Raise :class:`TrainingDiverged` when the model's logits on ``split`` were not all finite (``finite``, as the
    evaluator's :class:`~caltrain.train.evaluation.SplitScore` reports it)."""
    if not finite:
        raise _diverged(f"{split} logits", epoch, step, checkpoint)
