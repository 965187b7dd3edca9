"""``gence``: generative cross-entropy, −log(p(y|x)/p̄(y)), CE plus a class-level confidence regulariser."""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["GenCE"]


@register("gence")
class GenCE(LogitObjective):
    """GenCE: L_i = −log p_{i,y_i} + λ·log p̂(y_i), p̂ an estimate of the class marginal p(y)
    (:func:`caltrain.losses.functional.gence`; the reading of METHODS.md 1.5, the paper's code is not public).

    The estimate p̂ is, by option:

    - the batch mean p̄_B(y) = (1/n) Σ_j p_{j,y} (default; gradient flows through it), optionally leaving sample
      i out of its own estimate (``exclude_self``);
    - an exponential moving average across batches (``momentum`` m > 0): with A_t the EMA after t batches
      (A_0 = 0), p̂ = (m·A_t + (1 − m)·p̄_B) / (1 − m^{t+1}) (Adam-style bias correction, so the first batch uses
      p̄_B itself); the gradient flows through the current batch's share; A_{t+1} = m·A_t + (1 − m)·p̄_B (detached),
      advanced only in training mode; A and t are buffers (resume-exact). ``exclude_self`` does not apply;
    - a known class prior π (``class_prior``, e.g. the long-tailed training distribution): p̂ = π (a constant).

    Args:
        num_classes: K.
        weight: λ ≥ 0; default 1. 0 is CE.
        exclude_self: leave-one-out batch estimate; default False.
        momentum: m ∈ [0, 1); 0 (default) uses the batch estimate alone.
        class_prior: K positive numbers (normalised here), or None (default).
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "Zhan, Zhou, Shen 2026, arXiv 2604.06689 (reconstruction: text and code not public)"
    function = staticmethod(functional.gence)
    hyperparameter_names = ("weight", "exclude_self", "class_prior")

    def __init__(
        self,
        *,
        num_classes: int,
        weight: float = 1.0,
        exclude_self: bool = False,
        momentum: float = 0.0,
        class_prior: Sequence[float] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.weight = check_number(weight, "weight", low=0.0)
        if not isinstance(exclude_self, bool):
            raise ValueError(f"exclude_self: expected a bool, got {exclude_self!r}")
        self.exclude_self = exclude_self
        self.momentum = check_number(momentum, "momentum", low=0.0, high=1.0, high_inclusive=False)
        if class_prior is not None:
            values = [check_number(v, "class_prior", low=0.0, low_inclusive=False) for v in class_prior]
            if len(values) != self.num_classes:
                raise ValueError(
                    f"class_prior: expected {self.num_classes} positive values (one per class), got {len(values)}"
                )
            if self.momentum > 0:
                raise ValueError("momentum: must be 0 when class_prior is given (the prior replaces the estimate)")
            total = sum(values)
            class_prior = [v / total for v in values]
        self.class_prior = class_prior
        self.register_buffer("prior_ema", torch.zeros(self.num_classes, dtype=torch.float64))
        self.register_buffer("ema_steps", torch.zeros((), dtype=torch.long))

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        *,
        indices: torch.Tensor | None = None,
        model: nn.Module | None = None,
        inputs: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.momentum == 0.0:
            return super().forward(logits, labels)
        # Shape/dtype checks and the float32 upcast are those of the functional form.
        z, y = functional._prepare(logits, labels, self.reduction)
        m = self.momentum
        logp = F.log_softmax(z, dim=1)
        log_batch = torch.logsumexp(logp, dim=0) - math.log(z.shape[0])  # log p̄_B, [K]
        ema = self.prior_ema.to(z.dtype)
        log_old = torch.log(m * ema)  # -inf before the first update; logaddexp handles it
        correction = torch.log1p(-torch.pow(m, (self.ema_steps + 1).to(torch.float64))).to(z.dtype)
        log_est = torch.logaddexp(log_old, math.log1p(-m) + log_batch) - correction
        if self.training:
            with torch.no_grad():
                self.prior_ema.mul_(m).add_((1.0 - m) * log_batch.detach().exp().to(torch.float64))
                self.ema_steps.add_(1)
        per = -logp.gather(1, y[:, None])[:, 0] + self.weight * log_est.gather(0, y)
        return reduce_loss(per, self.reduction)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", momentum={self.momentum!r}"
