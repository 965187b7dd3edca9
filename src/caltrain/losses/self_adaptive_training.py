"""``sat``: Self-Adaptive Training (SAT) for selective classification, EMA soft targets split between y and "unknown".

Notation: z = logits [n, K+1] (the last output is "unknown", idk), y = labels [n] in [0, K), p = softmax(z) over
all K+1 outputs, T [N, K] the per-sample EMA target table (N training samples), m its momentum, tau_i = T[i, y_i];
the math is in :func:`sat_loss` and :mod:`caltrain.losses.abstention_base`, defaults and readings in
:class:`SelfAdaptiveTraining`. Evaluated under the ``with_unknown`` convention (:mod:`caltrain.abstention`).

Huang, Zhang, Zhang, "Self-Adaptive Training: beyond Empirical Risk Minimization", NeurIPS 2020,
arXiv 2002.10319 (selective-classification code: LayneH/SAT-selective-cls, reused in sandruskyi/SocratesLoss).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from caltrain.losses._tensors import compute_dtype, gather_true
from caltrain.losses.abstention_base import AdaptiveTargetObjective
from caltrain.losses.base import reduce_loss
from caltrain.losses.registry import register

__all__ = ["SelfAdaptiveTraining", "SelfAdaptiveTrainingLoss", "sat_loss"]


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
    per_sample = -(tau * gather_true(logp, labels) + (1.0 - tau) * logp[:, -1])
    return reduce_loss(per_sample, reduction)


@register("sat")
class SelfAdaptiveTraining(AdaptiveTargetObjective):
    """Self-Adaptive Training with an abstention output (K+1 logits, the last is "unknown").

    Per training sample the EMA target table of :mod:`caltrain.losses.abstention_base` (rank-local state ``targets``
    [N, K] and ``seen`` [N]): T[i] <- m * prev + (1 - m) * softmax(z_i[:K]) (detached; prev = onehot(y_i) on
    the first visit), tau_i = T[i, y_i], then

        L = -(1/n) sum_i [ tau_i log p_{i,y} + (1 - tau_i) log p_{i,idk} ],    p = softmax(z) over K+1.

    For the first ``warmup_epochs`` epochs the loss is plain cross-entropy on z[:K] and the table is not
    touched, so the first visit after warm-up starts from the one-hot label (as in the authors' code).

    Paper: arXiv 2002.10319 (NeurIPS 2020); as a Socrates baseline: docs/methods.md#socrates-loss. Defaults: m = 0.9 (the
    authors'); ``warmup_epochs = 0``. Reading: the paper's recipe warms up for half the schedule (150 of 300
    epochs on CIFAR-10); since the right number depends on the schedule, the default does not warm up: set it
    with the run's length. ``eval()`` mode reads the table without advancing it.

    Args:
        num_classes: K; num_samples: N, the training-set size.
        momentum: m in [0, 1] (default 0.9).
        warmup_epochs: epochs of plain CE on z[:K] before SAT starts, >= 0 (default 0).
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> loss = SelfAdaptiveTraining(num_classes=3, num_samples=10, warmup_epochs=1)
        >>> loss.on_epoch_start(0); loss.warming_up
        True
    """

    paper: ClassVar[str] = "Huang, Zhang, Zhang; NeurIPS 2020, arXiv 2002.10319"

    def __init__(
        self,
        *,
        num_classes: int,
        num_samples: int,
        momentum: float = 0.9,
        warmup_epochs: int = 0,
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            num_classes=num_classes, num_samples=num_samples, momentum=momentum, warmup_epochs=warmup_epochs,
            reduction=reduction,
        )

    def adaptive_loss(self, logits: torch.Tensor, labels: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """:func:`sat_loss` with this objective's reduction."""
        return sat_loss(logits, labels, tau, reduction=self.reduction)


#: The former class name, kept for existing code.
SelfAdaptiveTrainingLoss = SelfAdaptiveTraining

