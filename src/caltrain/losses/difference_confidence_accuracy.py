"""``dca``: CE + β·|mean confidence − accuracy| on the batch (difference between confidence and accuracy).

    L = CE + β·|(1/n) Σ_i conf_i − (1/n) Σ_i 1[ŷ_i = y_i]|   (a batch term),

with conf_i = max_k p_ik, ŷ_i = argmax_k p_ik over the n samples of the batch, β ≥ 0 (default 1).
Paper: Liang et al. 2020, arXiv 2009.04057.
Shapes, defaults, reductions and readings: :func:`dca` (``caltrain.losses.functional.dca``);
:class:`DifferenceConfidenceAccuracy` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import gather_true, nonneg, prepare, top_label, with_batch_term
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
    conf, correct = top_label(logp, y)
    gap = (conf.mean() - correct.mean()).abs()
    return with_batch_term(-gather_true(logp, y), gap, b, reduction)


@register("dca")
class DifferenceConfidenceAccuracy(LogitObjective):
    """CE + β·|(1/n) Σ conf_i − (1/n) Σ 1[ŷ_i = y_i]| (:func:`dca`).

    Args:
        num_classes: K.
        weight: β ≥ 0; default 1. 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]: CE_i + β·DCA of the batch).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = DifferenceConfidenceAccuracy(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), dca(z, y))), dca(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Liang, Zhang, Wang, Jiang; 2020, arXiv 2009.04057"
    function = staticmethod(dca)
    hyperparameter_names = ("weight",)

    def __init__(self, *, num_classes: int, weight: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.weight = check_number(weight, "weight", low=0.0)


#: The former class name, kept for existing code.
DCA = DifferenceConfidenceAccuracy
