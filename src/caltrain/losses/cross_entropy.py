"""``ce``: cross-entropy, the baseline every calibration objective is compared with.

    L_i = −log p_{i,y_i} = logsumexp_k z_ik − z_{i,y_i},

with z the logits [N, K], y the labels [N] in [0, K), p = softmax(z). No hyperparameters; no paper (the
multinomial log-likelihood), Guo et al. 2017 (arXiv 1706.04599) on its miscalibration.
Shapes, defaults, reductions and readings: :func:`ce` (``caltrain.losses.functional.ce``);
:class:`CrossEntropy` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import prepare
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register

__all__ = ['ce', 'CrossEntropy']


def ce(logits: torch.Tensor, labels: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy: L_i = −log p_{i,y_i} = logsumexp_k z_ik − z_{i,y_i}."""
    z, y = prepare(logits, labels, reduction)
    return F.cross_entropy(z, y, reduction=reduction)


@register("ce")
class CrossEntropy(LogitObjective):
    """Cross-entropy, L_i = −log p_{i,y_i} (:func:`ce`).

    Args:
        num_classes: K.
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = CrossEntropy(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), ce(z, y))), ce(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "multinomial log-likelihood (no paper); Guo et al. 2017, arXiv 1706.04599 on its miscalibration"
    function = staticmethod(ce)

    def __init__(self, *, num_classes: int, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
