"""``deep_gamblers``: Deep Gamblers, learning to abstain with portfolio theory (an abstention output paid 1/o).

Notation: z = logits [n, K+1] (the last output is "unknown", idk), y = labels [n] in [0, K), p = softmax(z) over
all K+1 outputs, o the reward of a correct bet; the math is in :func:`deep_gamblers_loss`, defaults and readings
in :class:`DeepGamblers`. Evaluated under the ``with_unknown`` convention (:mod:`caltrain.abstention`).

Liu, Wang, Liang, Salakhutdinov, Morency, Ueda, "Deep Gamblers: Learning to Abstain with Portfolio Theory",
NeurIPS 2019, arXiv 1907.00208 (code reused in LayneH/SAT-selective-cls and sandruskyi/SocratesLoss).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from caltrain.losses._tensors import compute_dtype, gather_true
from caltrain.losses.abstention_base import AbstentionObjective
from caltrain.losses.base import reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["DeepGamblers", "DeepGamblersLoss", "deep_gamblers_loss"]


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
    logp_y = gather_true(logp, labels)
    per_sample = -torch.logaddexp(logp_y, logp[:, -1] - math.log(reward))
    return reduce_loss(per_sample, reduction)


@register("deep_gamblers")
class DeepGamblers(AbstentionObjective):
    """Deep Gamblers with an abstention output (K+1 logits, the last is "unknown"), after a CE warm-up.

        L = -(1/n) sum_i log( p_{i,y} + p_{i,idk} / o ),    p = softmax(z) over K+1,

    the doubling rate of a gambler who bets p_k on class k and keeps p_idk (reward o for a correct bet,
    1 for the reservation). For the first ``warmup_epochs`` epochs the loss is plain cross-entropy on z[:K]
    (as in the authors' code).

    Paper: arXiv 1907.00208 (NeurIPS 2019); as a Socrates baseline: docs/methods.md#socrates-loss. Defaults: o = 2.2 (the
    authors' CIFAR-10 value), ``warmup_epochs = 0``. Reading: the paper's recipe warms up for 100 of 300
    epochs on CIFAR-10; the default does not warm up, set it with the run's length. No per-sample state.

    Args:
        num_classes: K.
        reward: o, 1 < o <= K (default 2.2).
        warmup_epochs: epochs of plain CE on z[:K], >= 0 (default 0).
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> DeepGamblers(num_classes=10)(torch.zeros(2, 11), torch.tensor([0, 1])).shape
        torch.Size([])
    """

    paper: ClassVar[str] = "Liu, Wang, Liang, Salakhutdinov, Morency, Ueda; NeurIPS 2019, arXiv 1907.00208"

    def __init__(
        self, *, num_classes: int, reward: float = 2.2, warmup_epochs: int = 0, reduction: str = "mean"
    ) -> None:
        super().__init__(num_classes=num_classes, warmup_epochs=warmup_epochs, reduction=reduction)
        self.reward = check_number(reward, "reward", low=1.0, high=float(self.num_classes), low_inclusive=False)

    def abstention_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """:func:`deep_gamblers_loss` with this objective's reward and reduction."""
        return deep_gamblers_loss(logits, labels, reward=self.reward, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, reward={self.reward}"


#: The former class name, kept for existing code.
DeepGamblersLoss = DeepGamblers
