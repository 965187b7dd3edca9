"""``ce``: cross-entropy, the baseline every calibration objective is compared with.

Notation: z = logits [N, K] (N samples, K classes), y = labels [N] in [0, K), p = softmax(z) [N, K],
p_y the true-class probability, CE_i = −log p_{i,y_i}, n = N the batch size; the loss is reduced by
``reduction`` ("mean" by default, "sum", or "none" for one value per sample, shape [N]). Half-precision
logits are computed in float32.

The pure function :func:`ce` (also ``caltrain.losses.functional.ce``) states the loss, its
hyperparameters and defaults, the paper and the readings; :class:`CrossEntropy` is the module over it.

Example:
    >>> import torch
    >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
    >>> ce(z, y, reduction="none").shape
    torch.Size([2])
    >>> bool(torch.isclose(CrossEntropy(num_classes=3)(z, y), ce(z, y)))
    True
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
    """

    paper = "multinomial log-likelihood (no paper); Guo et al. 2017, arXiv 1706.04599 on its miscalibration"
    function = staticmethod(ce)

    def __init__(self, *, num_classes: int, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
