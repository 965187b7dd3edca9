"""``flsd53``: sample-dependent focal loss FLSD-53, γ = 5 where p_y < 0.2, else 3.

    γ_i = 5 if p_{i,y_i} < 0.2 else 3 (on the detached p),   L_i = −(1 − p_{i,y_i})^{γ_i} log p_{i,y_i},

with z the logits [N, K], y the labels [N], p = softmax(z). No hyperparameters.
Paper: Mukhoti et al. 2020, arXiv 2002.09437 (FLSD-53).
Shapes, defaults, reductions and readings: :func:`flsd53` (``caltrain.losses.functional.flsd53``);
:class:`SampleDependentFocal` is its module.
"""

from __future__ import annotations

import math

import torch

from caltrain.losses._tensors import gather_true, log_one_minus_true, prepare
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register

__all__ = ['FLSD53', 'flsd53', 'SampleDependentFocal']


def flsd53(logits: torch.Tensor, labels: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """FLSD-53: sample-dependent focal loss (Mukhoti et al. 2020, arXiv 2002.09437).

    L_i = −(1 − p_y)^{γ_i} log p_y with γ_i = 5 if p_y < 0.2 else 3, γ_i chosen on the detached p_y
    (a ``torch.where``, no host synchronisation).
    """
    z, y = prepare(logits, labels, reduction)
    lse = torch.logsumexp(z, dim=1)
    logp_y = gather_true(z, y) - lse
    gamma = torch.where(logp_y.detach() < math.log(0.2), 5.0, 3.0)
    factor = torch.exp(gamma * log_one_minus_true(z, y, lse))
    return reduce_loss(-factor * logp_y, reduction)


@register("flsd53")
class SampleDependentFocal(LogitObjective):
    """FLSD-53: focal loss with γ = 5 where p_y < 0.2, else 3, on the detached p_y
    (:func:`flsd53`). No hyperparameters (no neutral setting).

    Args:
        num_classes: K.
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = SampleDependentFocal(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), flsd53(z, y))), flsd53(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Mukhoti et al. 2020, arXiv 2002.09437"
    function = staticmethod(flsd53)

    def __init__(self, *, num_classes: int, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)


#: The former class name, kept for existing code.
FLSD53 = SampleDependentFocal
