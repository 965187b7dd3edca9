"""Deep Gamblers: learning to abstain with portfolio theory (an abstention output paid 1/o of a bet).

Liu, Wang, Liang, Salakhutdinov, Morency, Ueda, "Deep Gamblers: Learning to Abstain with Portfolio Theory",
NeurIPS 2019, arXiv 1907.00208 (code reused in LayneH/SAT-selective-cls and sandruskyi/SocratesLoss).
"""

from __future__ import annotations

import math

import torch

from caltrain.losses.adaptive_targets import WarmupObjective, check_logits_labels, compute_dtype
from caltrain.losses.base import reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["DeepGamblersLoss", "deep_gamblers_loss"]


def deep_gamblers_loss(
    logits: torch.Tensor, labels: torch.Tensor, *, reward: float = 2.2, reduction: str = "mean"
) -> torch.Tensor:
    """L_i = -log( p_{i,y} + p_{i,idk} / o ), p = softmax(z) over all K+1 outputs (idk the last one).

    Computed as -logsumexp(log p_y, log p_idk - log o), finite for logits of any size.

    Args:
        logits: z, [N, K+1]; labels: y, [N] in [0, K).
        reward: o, the payoff of a correct bet, 1 < o <= K (default 2.2, the authors' CIFAR-10 value;
            not validated against K here: :class:`DeepGamblersLoss` does).
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> deep_gamblers_loss(torch.zeros(1, 3), torch.tensor([0]), reward=2.0)  # -log(1/3 + 1/6)
        tensor(0.6931)
    """
    logp = torch.log_softmax(compute_dtype(logits), dim=1)
    logp_y = logp.gather(1, labels.unsqueeze(1)).squeeze(1)
    per_sample = -torch.logaddexp(logp_y, logp[:, -1] - math.log(reward))
    return reduce_loss(per_sample, reduction)


@register("deep_gamblers")
class DeepGamblersLoss(WarmupObjective):
    """Deep Gamblers with an abstention output (K+1 logits, the last is "unknown"), after a CE warm-up.

        L = -(1/n) sum_i log( p_{i,y} + p_{i,idk} / o ),    p = softmax(z) over K+1,

    the doubling rate of a gambler who bets p_k on class k and keeps p_idk (reward o for a correct bet,
    1 for the reservation). For the first ``warmup_epochs`` epochs the loss is plain cross-entropy on z[:K]
    (as in the authors' code).

    Paper: arXiv 1907.00208 (NeurIPS 2019); as a Socrates baseline: METHODS.md 1.1. Defaults: o = 2.2 (the
    authors' CIFAR-10 value), ``warmup_epochs = 0``. Reading: the paper's recipe warms up for 100 of 300
    epochs on CIFAR-10; the default does not warm up, set it with the run's length. No per-sample state.

    Args:
        num_classes: K.
        reward: o, 1 < o <= K (default 2.2).
        warmup_epochs: epochs of plain CE on z[:K], >= 0 (default 0).
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> DeepGamblersLoss(num_classes=10)(torch.zeros(2, 11), torch.tensor([0, 1])).shape
        torch.Size([])
    """

    def __init__(
        self, *, num_classes: int, reward: float = 2.2, warmup_epochs: int = 0, reduction: str = "mean"
    ) -> None:
        super().__init__(num_classes=num_classes, warmup_epochs=warmup_epochs, reduction=reduction)
        self.reward = check_number(reward, "reward", low=1.0, high=float(self.num_classes), low_inclusive=False)

    def forward(
        self,
        logits: torch.Tensor,
        labels: torch.Tensor,
        *,
        indices=None,  # noqa: ANN001 (protocol argument, unused)
        model=None,  # noqa: ANN001 (protocol argument, unused)
        inputs=None,  # noqa: ANN001 (protocol argument, unused)
    ) -> torch.Tensor:
        """The loss of a batch: ``logits`` [n, K+1], ``labels`` [n]."""
        check_logits_labels(logits, labels, self.num_outputs)
        if self.warming_up:
            return self.warmup_loss(logits, labels)
        return deep_gamblers_loss(logits, labels, reward=self.reward, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, reward={self.reward}"
