"""``mdca``: CE + β·(1/K) Σ_k |mean_i p_ik − mean_i 1[y_i = k]| (multi-class DCA).

    L = CE + β·(1/K) Σ_k |(1/n) Σ_i p_ik − (1/n) Σ_i 1[y_i = k]|   (a batch term),

with p = softmax(z) for the logits z [n, K] of a batch, y its labels [n], β ≥ 0 (default 1).
Paper: Hebbalaguppe et al.; CVPR 2022, arXiv 2203.13834.
Shapes, defaults, reductions and readings: :func:`mdca` (``caltrain.losses.functional.mdca``);
:class:`MulticlassDifferenceConfidenceAccuracy` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import gather_true, nonneg, prepare, with_batch_term
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ['MDCA', 'mdca', 'MulticlassDifferenceConfidenceAccuracy']


def mdca(logits: torch.Tensor, labels: torch.Tensor, *, weight: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """CE + β·MDCA, multi-class DCA (Hebbalaguppe et al. CVPR 2022, arXiv 2203.13834).

    MDCA = (1/K) Σ_k |(1/n) Σ_i p_ik − (1/n) Σ_i 1[y_i = k]| on the batch.

    Args:
        weight: β ≥ 0; default 1 (the authors' code default; the paper searches {1, 5, 10}). β = 0 is CE.
    """
    z, y = prepare(logits, labels, reduction)
    b = nonneg(weight, "weight")
    logp = F.log_softmax(z, dim=1)
    freq = F.one_hot(y, z.shape[1]).to(logp.dtype).mean(dim=0)
    term = (logp.exp().mean(dim=0) - freq).abs().mean()
    return with_batch_term(-gather_true(logp, y), term, b, reduction)


@register("mdca")
class MulticlassDifferenceConfidenceAccuracy(LogitObjective):
    """CE + β·MDCA on the batch (:func:`mdca`).

    Args:
        num_classes: K.
        weight: β ≥ 0; default 1 (the authors' code). 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]: CE_i + β·MDCA of the batch).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = MulticlassDifferenceConfidenceAccuracy(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), mdca(z, y))), mdca(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Hebbalaguppe, Prakash, Madan, Arora; CVPR 2022, arXiv 2203.13834"
    function = staticmethod(mdca)
    hyperparameter_names = ("weight",)

    def __init__(self, *, num_classes: int, weight: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.weight = check_number(weight, "weight", low=0.0)


#: The former class name, kept for existing code.
MDCA = MulticlassDifferenceConfidenceAccuracy
