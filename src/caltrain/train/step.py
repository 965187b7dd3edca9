"""One optimiser step: forward, the objective's loss (mixup as configured), backward, the update, the schedule.

The step only talks to the objective through its protocol (:mod:`caltrain.losses.base`): it passes ``forward``
the extra inputs listed in ``objective.requires`` (and nothing else) and makes the inputs require gradients
when ``objective.needs_input_grad``. It never reads a value on the host.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, ContextManager, Iterator

import torch
from torch import nn

from caltrain.train.config import MixupConfig
from caltrain.train.mixup import mix_batch
from caltrain.train.optim import SAM
from caltrain.utils.modules import eval_mode

__all__ = ["TrainStep", "frozen_batchnorm_stats"]


@contextlib.contextmanager
def frozen_batchnorm_stats(model: nn.Module) -> Iterator[None]:
    """Keep BatchNorm running statistics unchanged (SAM's second pass must not update them twice)."""
    saved = []
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            saved.append((m, m.momentum))
            m.momentum = 0.0
    try:
        yield
    finally:
        for m, momentum in saved:
            m.momentum = momentum


class TrainStep:
    """Runs one training step on a batch; returns the (detached) loss and logits.

    Args:
        model: the trained module (possibly wrapped in DistributedDataParallel); its parameters are clipped.
        forward_model: what is called on the inputs (``model`` or its ``torch.compile`` wrapper).
        objective: the training objective.
        optimizer, scheduler, scaler: stepped once per call (SAM: two passes, one update).
        mixup: the mixup configuration; ``generator`` draws its permutations and mixing weights.
        grad_clip: the gradient-norm clip, or None.
        autocast: a factory of the mixed-precision context the forward passes run in.
    """

    def __init__(
        self, *, model: nn.Module, forward_model: Callable[[torch.Tensor], torch.Tensor], objective: nn.Module,
        optimizer: torch.optim.Optimizer, scheduler: Any, scaler: torch.amp.GradScaler, mixup: MixupConfig,
        grad_clip: float | None, generator: torch.Generator, autocast: Callable[[], ContextManager],
    ) -> None:
        self.model = model
        self.forward_model = forward_model
        self.objective = objective
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.scaler = scaler
        self.mixup = mixup
        self.grad_clip = grad_clip
        self.generator = generator
        self.autocast = autocast

    def __call__(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.optimizer.zero_grad(set_to_none=True)
        loss, logits = self._forward_loss(x, y, idx)
        self._backward(loss)
        if isinstance(self.optimizer, SAM):
            self.optimizer.first_step()
            self.optimizer.zero_grad(set_to_none=True)
            with eval_mode(self.objective), frozen_batchnorm_stats(self.model):
                second_loss, _ = self._forward_loss(x, y, idx)
                self._backward(second_loss)
            self.optimizer.second_step()
        else:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        self.scheduler.step()
        return loss.detach(), logits.detach()

    def _objective_inputs(self, x: torch.Tensor, idx: torch.Tensor) -> dict[str, Any]:
        """Only the extra inputs the objective lists in ``requires``."""
        available = {"indices": idx, "model": self.forward_model, "inputs": x}
        return {key: available[key] for key in self.objective.requires}

    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass and the objective's loss (mixup applied as configured); returns (loss, logits)."""
        mix = self.mixup
        if mix.mode == "none":
            if self.objective.needs_input_grad:
                x = x.detach().requires_grad_(True)
            with self.autocast():
                logits = self.forward_model(x)
                loss = self.objective(logits, y, **self._objective_inputs(x, idx))
            return loss, logits
        xm, perm, lam = mix_batch(x, mix.alpha, self.generator)
        if self.objective.needs_input_grad:
            xm = xm.detach().requires_grad_(True)
        with self.autocast():
            logits = self.forward_model(xm)
            with contextlib.ExitStack() as stack:
                if mix.mode == "regmixup":
                    stack.enter_context(eval_mode(self.objective))
                first = self.objective(logits, y, **self._objective_inputs(xm, idx))
            with eval_mode(self.objective):
                second = self.objective(logits, y[perm], **self._objective_inputs(xm, idx[perm]))
            mixed_loss = lam * first + (1 - lam) * second
            if mix.mode == "mixup":
                return mixed_loss, logits
            if self.objective.needs_input_grad:
                x = x.detach().requires_grad_(True)
            clean_logits = self.forward_model(x)
            clean = self.objective(clean_logits, y, **self._objective_inputs(x, idx))
        return clean + mix.weight * mixed_loss, clean_logits

    def _backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()
        if self.grad_clip is not None:
            self.scaler.unscale_(getattr(self.optimizer, "base_optimizer", self.optimizer))
            nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
