"""``poly1``: Poly-1, CE + ε·(1 − p_y) (the leading polynomial term of CE, reweighted).

    L_i = −log p_{i,y_i} + ε·(1 − p_{i,y_i}),

with z the logits [N, K], y the labels [N], p = softmax(z), ε ≥ −1 (default 1).
Paper: Leng et al.; ICLR 2022, arXiv 2204.12511.
Shapes, defaults, reductions and readings: :func:`poly1` (``caltrain.losses.functional.poly1``);
:class:`Poly1` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import gather_true, prepare
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ['Poly1', 'poly1']


def poly1(logits: torch.Tensor, labels: torch.Tensor, *, epsilon: float = 1.0, reduction: str = "mean") -> torch.Tensor:
    """Poly-1 (Leng et al. ICLR 2022, arXiv 2204.12511): L_i = CE_i + ε·(1 − p_y).

    Args:
        epsilon: ε ≥ −1 (the paper's range; ε = −1 drops the first polynomial term). Default 1. ε = 0 is CE.
    """
    z, y = prepare(logits, labels, reduction)
    e = check_number(epsilon, "epsilon", low=-1.0)
    logp_y = gather_true(F.log_softmax(z, dim=1), y)
    return reduce_loss(-logp_y + e * (1.0 - logp_y.exp()), reduction)


@register("poly1")
class Poly1(LogitObjective):
    """Poly-1 L_i = CE_i + ε(1 − p_{i,y_i}) (:func:`poly1`).

    Args:
        num_classes: K.
        epsilon: ε ≥ −1; default 1. 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = Poly1(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), poly1(z, y))), poly1(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Leng et al.; ICLR 2022, arXiv 2204.12511"
    function = staticmethod(poly1)
    hyperparameter_names = ("epsilon",)

    def __init__(self, *, num_classes: int, epsilon: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.epsilon = check_number(epsilon, "epsilon", low=-1.0)
