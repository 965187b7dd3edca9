"""``dual_focal``: dual focal loss, −(1 − p_y + p_j)^γ log p_y.

    L_i = −(1 − p_{i,y_i} + p_{i,j})^γ log p_{i,y_i},   p_{i,j} = max {p_ik : p_ik < p_{i,y_i}} (0 if none),

with z the logits [N, K], y the labels [N], p = softmax(z), γ ≥ 0 (default 5).
Paper: Tao, Dong, Xu; ICML 2023, arXiv 2305.13665.
Shapes, defaults, reductions and readings: :func:`dual_focal` (``caltrain.losses.functional.dual_focal``);
:class:`DualFocal` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import gather_true, nonneg, prepare
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ['dual_focal', 'DualFocal']


def dual_focal(
    logits: torch.Tensor, labels: torch.Tensor, *, gamma: float = 5.0, reduction: str = "mean"
) -> torch.Tensor:
    """Dual focal loss (Tao, Dong, Xu; ICML 2023, arXiv 2305.13665).

    L_i = −(1 − p_y + p_j)^γ log p_y, where p_j is the largest probability strictly below p_y (0 when p_y is the
    smallest one), as in the authors' code; nothing is detached.

    Args:
        gamma: γ ≥ 0; default 5 (the paper's Table 13 setting used in its code). γ = 0 is CE.
    """
    z, y = prepare(logits, labels, reduction)
    g = nonneg(gamma, "gamma")
    logp = F.log_softmax(z, dim=1)
    p = logp.exp()
    logp_y = gather_true(logp, y)
    p_y = logp_y.exp()
    p_j = torch.where(p < p_y[:, None], p, torch.zeros_like(p)).amax(dim=1)
    base = (1.0 - p_y + p_j).clamp_min(0.0)
    return reduce_loss(-base.pow(g) * logp_y, reduction)


@register("dual_focal")
class DualFocal(LogitObjective):
    """Dual focal loss L_i = −(1 − p_y + p_j)^γ log p_y, p_j the largest probability below p_y
    (:func:`dual_focal`).

    Args:
        num_classes: K.
        gamma: γ ≥ 0; default 5 (the authors' setting). 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = DualFocal(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), dual_focal(z, y))), dual_focal(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Tao, Dong, Xu; ICML 2023, arXiv 2305.13665"
    function = staticmethod(dual_focal)
    hyperparameter_names = ("gamma",)

    def __init__(self, *, num_classes: int, gamma: float = 5.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.gamma = check_number(gamma, "gamma", low=0.0)
