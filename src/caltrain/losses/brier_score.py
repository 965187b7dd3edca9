"""``brier``: the Brier score as a training loss, Σ_k (p_k − onehot_k)² per sample.

    L_i = Σ_k (p_ik − 1[k = y_i])² ∈ [0, 2],

with z the logits [N, K], y the labels [N], p = softmax(z). No hyperparameters.
Papers: Brier 1950; as a training loss Mukhoti et al. 2020, arXiv 2002.09437.
Shapes, defaults, reductions and readings: :func:`brier` (``caltrain.losses.functional.brier``);
:class:`BrierScore` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import prepare
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register

__all__ = ['Brier', 'brier', 'BrierScore']


def brier(logits: torch.Tensor, labels: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Brier loss (Brier 1950; as a training loss in Mukhoti et al. 2020): L_i = Σ_k (p_ik − 1[k = y_i])² ∈ [0, 2]."""
    z, y = prepare(logits, labels, reduction)
    p = F.softmax(z, dim=1)
    target = F.one_hot(y, z.shape[1]).to(p.dtype)
    return reduce_loss((p - target).pow(2).sum(dim=1), reduction)


@register("brier")
class BrierScore(LogitObjective):
    """Brier loss L_i = Σ_k (p_ik − 1[k = y_i])², summed over classes, in [0, 2]
    (:func:`brier`).

    Args:
        num_classes: K.
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = BrierScore(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), brier(z, y))), brier(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Brier 1950; as a training loss in Mukhoti et al. 2020, arXiv 2002.09437"
    function = staticmethod(brier)

    def __init__(self, *, num_classes: int, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)


#: The former class name, kept for existing code.
Brier = BrierScore
