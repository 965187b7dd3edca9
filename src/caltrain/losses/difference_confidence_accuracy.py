"""``dca``: CE + β·|mean confidence − accuracy| on the batch (difference between confidence and accuracy).

Notation: z = logits [N, K] (N samples, K classes), y = labels [N] in [0, K), p = softmax(z) [N, K],
p_y the true-class probability, CE_i = −log p_{i,y_i}, n = N the batch size; the loss is reduced by
``reduction`` ("mean" by default, "sum", or "none" for one value per sample, shape [N]). Half-precision
logits are computed in float32.

The pure function :func:`dca` (also ``caltrain.losses.functional.dca``) states the loss, its
hyperparameters and defaults, the paper and the readings; :class:`DifferenceConfidenceAccuracy` is the module over it.

Example:
    >>> import torch
    >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
    >>> dca(z, y, reduction="none").shape
    torch.Size([2])
    >>> bool(torch.isclose(DifferenceConfidenceAccuracy(num_classes=3)(z, y), dca(z, y)))
    True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import gather_true, nonneg, prepare, with_batch_term
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ['DCA', 'dca', 'DifferenceConfidenceAccuracy']


def dca(logits: torch.Tensor, labels: torch.Tensor, *, weight: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """CE + β·DCA, difference between confidence and accuracy (Liang et al. 2020, arXiv 2009.04057).

    DCA = |(1/n) Σ_i conf_i − (1/n) Σ_i 1[ŷ_i = y_i]| on the batch (accuracy is a constant).

    Args:
        weight: β ≥ 0; default 1 (reading: the paper tunes β; 1 is a neutral starting point). β = 0 is CE.
    """
    z, y = prepare(logits, labels, reduction)
    b = nonneg(weight, "weight")
    logp = F.log_softmax(z, dim=1)
    logconf, pred = logp.max(dim=1)
    gap = (logconf.exp().mean() - (pred == y).to(logp.dtype).mean()).abs()
    return with_batch_term(-gather_true(logp, y), gap, b, reduction)


@register("dca")
class DifferenceConfidenceAccuracy(LogitObjective):
    """CE + β·|(1/n) Σ conf_i − (1/n) Σ 1[ŷ_i = y_i]| (:func:`dca`).

    Args:
        num_classes: K.
        weight: β ≥ 0; default 1. 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]: CE_i + β·DCA of the batch).
    """

    paper = "Liang, Zhang, Wang, Jiang; 2020, arXiv 2009.04057"
    function = staticmethod(dca)
    hyperparameter_names = ("weight",)

    def __init__(self, *, num_classes: int, weight: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.weight = check_number(weight, "weight", low=0.0)


#: The former class name, kept for existing code.
DCA = DifferenceConfidenceAccuracy
