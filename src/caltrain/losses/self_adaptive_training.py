"""Self-Adaptive Training (SAT) for selective classification: EMA soft targets split between y and "unknown".

Huang, Zhang, Zhang, "Self-Adaptive Training: beyond Empirical Risk Minimization", NeurIPS 2020,
arXiv 2002.10319 (selective-classification code: LayneH/SAT-selective-cls, reused in sandruskyi/SocratesLoss).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from caltrain.losses.adaptive_targets import (
    WarmupObjective,
    check_indices,
    check_logits_labels,
    check_momentum,
    compute_dtype,
    ema_step,
    register_ema_table,
)
from caltrain.losses.base import reduce_loss
from caltrain.losses.registry import register

__all__ = ["SelfAdaptiveTrainingLoss", "sat_loss"]


def sat_loss(logits: torch.Tensor, labels: torch.Tensor, tau: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """SAT loss for given adaptive targets: L_i = -[ tau_i log p_{i,y} + (1 - tau_i) log p_{i,idk} ].

    p = softmax(z) over all K+1 outputs, idk the last one. The soft label s has s_y = tau, s_idk = 1 - tau and
    zeros elsewhere; it already sums to 1, so the authors' L1 normalisation of s changes nothing.

    Args:
        logits: z, [N, K+1]; labels: y, [N] in [0, K); tau: [N] in [0, 1] (detached);
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> sat_loss(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([0]), torch.tensor([0.5]))
        tensor(1.0514)
    """
    logp = torch.log_softmax(compute_dtype(logits), dim=1)
    tau = tau.to(logp.dtype)
    per_sample = -(tau * logp.gather(1, labels.unsqueeze(1)).squeeze(1) + (1.0 - tau) * logp[:, -1])
    return reduce_loss(per_sample, reduction)


@register("sat")
class SelfAdaptiveTrainingLoss(WarmupObjective):
    """Self-Adaptive Training with an abstention output (K+1 logits, the last is "unknown").

    Per training sample the EMA target table of :mod:`caltrain.losses.adaptive_targets` (buffers ``targets``
    [N, K] and ``seen`` [N]): T[i] <- m * prev + (1 - m) * softmax(z_i[:K]) (detached; prev = onehot(y_i) on
    the first visit), tau_i = T[i, y_i], then

        L = -(1/n) sum_i [ tau_i log p_{i,y} + (1 - tau_i) log p_{i,idk} ],    p = softmax(z) over K+1.

    For the first ``warmup_epochs`` epochs the loss is plain cross-entropy on z[:K] and the table is not
    touched, so the first visit after warm-up starts from the one-hot label (as in the authors' code).

    Paper: arXiv 2002.10319 (NeurIPS 2020); as a Socrates baseline: METHODS.md 1.1. Defaults: m = 0.9 (the
    authors'); ``warmup_epochs = 0``. Reading: the paper's recipe warms up for half the schedule (150 of 300
    epochs on CIFAR-10); since the right number depends on the schedule, the default does not warm up: set it
    with the run's length. ``eval()`` mode reads the table without advancing it.

    Args:
        num_classes: K; num_samples: N, the training-set size.
        momentum: m in [0, 1] (default 0.9).
        warmup_epochs: epochs of plain CE on z[:K] before SAT starts, >= 0 (default 0).
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> loss = SelfAdaptiveTrainingLoss(num_classes=3, num_samples=10, warmup_epochs=1)
        >>> loss.on_epoch_start(0); loss.warming_up
        True
    """

    requires: ClassVar[frozenset[str]] = frozenset({"indices"})
    sample_state: ClassVar[tuple[str, ...]] = ("targets", "seen")

    def __init__(
        self,
        *,
        num_classes: int,
        num_samples: int,
        momentum: float = 0.9,
        warmup_epochs: int = 0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes=num_classes, warmup_epochs=warmup_epochs, reduction=reduction)
        self.momentum = check_momentum(momentum)
        self.num_samples = register_ema_table(self, num_samples, self.num_classes)

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        *,
        indices: torch.Tensor | None = None,
        model=None,  # noqa: ANN001 (protocol argument, unused)
        inputs=None,  # noqa: ANN001 (protocol argument, unused)
    ) -> torch.Tensor:
        """The loss of a batch: ``logits`` [n, K+1], ``labels`` [n], ``indices`` [n] dataset indices."""
        check_logits_labels(logits, labels, self.num_outputs)
        indices = check_indices(indices, logits.shape[0], "sat")
        if self.warming_up:
            return self.warmup_loss(logits, labels)
        tau = ema_step(
            self.targets, self.seen, logits[:, : self.num_classes], labels, indices,
            momentum=self.momentum, update=self.training,
        ).to(logits.device)
        return sat_loss(logits, labels, tau, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_samples={self.num_samples}, momentum={self.momentum}"
