"""``focal``: the focal loss, −(1 − p_y)^γ log p_y.

    L_i = −(1 − p_{i,y_i})^γ log p_{i,y_i},

with z the logits [N, K], y the labels [N], p = softmax(z), γ ≥ 0 (default 3). Papers: Lin et al. 2017,
arXiv 1708.02002; Mukhoti et al. 2020, arXiv 2002.09437 (calibration).
Shapes, defaults, reductions and readings: :func:`focal` (``caltrain.losses.functional.focal``);
:class:`Focal` is its module.
"""

from __future__ import annotations

import torch

from caltrain.losses._tensors import gather_true, log_one_minus_true, nonneg, prepare
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ['Focal', 'focal']


def focal(logits: torch.Tensor, labels: torch.Tensor, *, gamma: float = 3.0, reduction: str = "mean") -> torch.Tensor:
    """Focal loss (Lin et al. 2017, arXiv 1708.02002; for calibration Mukhoti et al. 2020, arXiv 2002.09437).

    L_i = −(1 − p_y)^γ log p_y, with (1 − p_y)^γ = exp(γ·log(1 − p_y)) computed in log space
    (log(1 − p_y) = logsumexp_{k≠y} z_k − logsumexp_k z_k), so it stays finite and exact when p_y → 1.
    The focal factor is not detached (as in both papers' code).

    Args:
        gamma: γ ≥ 0; default 3 (Mukhoti's FL-3, MbLS' focal baseline). γ = 0 is CE.
    """
    z, y = prepare(logits, labels, reduction)
    g = nonneg(gamma, "gamma")
    lse = torch.logsumexp(z, dim=1)
    logp_y = gather_true(z, y) - lse
    factor = torch.exp(g * log_one_minus_true(z, y, lse))
    return reduce_loss(-factor * logp_y, reduction)


@register("focal")
class Focal(LogitObjective):
    """Focal loss L_i = −(1 − p_y)^γ log p_y, factor in log space (:func:`focal`).

    Args:
        num_classes: K.
        gamma: γ ≥ 0; default 3 (Mukhoti's FL-3). 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = Focal(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), focal(z, y))), focal(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Lin et al. 2017, arXiv 1708.02002; Mukhoti et al. 2020, arXiv 2002.09437"
    function = staticmethod(focal)
    hyperparameter_names = ("gamma",)

    def __init__(self, *, num_classes: int, gamma: float = 3.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.gamma = check_number(gamma, "gamma", low=0.0)
