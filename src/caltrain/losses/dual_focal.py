"""``dual_focal``: dual focal loss, −(1 − p_y + p_j)^γ log p_y.

Notation: z = logits [N, K] (N samples, K classes), y = labels [N] in [0, K), p = softmax(z) [N, K],
p_y the true-class probability, CE_i = −log p_{i,y_i}, n = N the batch size; the loss is reduced by
``reduction`` ("mean" by default, "sum", or "none" for one value per sample, shape [N]). Half-precision
logits are computed in float32.

The pure function :func:`dual_focal` (also ``caltrain.losses.functional.dual_focal``) states the loss, its
hyperparameters and defaults, the paper and the readings; :class:`DualFocal` is the module over it.

Example:
    >>> import torch
    >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
    >>> dual_focal(z, y, reduction="none").shape
    torch.Size([2])
    >>> bool(torch.isclose(DualFocal(num_classes=3)(z, y), dual_focal(z, y)))
    True
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
    """

    paper = "Tao, Dong, Xu; ICML 2023, arXiv 2305.13665"
    function = staticmethod(dual_focal)
    hyperparameter_names = ("gamma",)

    def __init__(self, *, num_classes: int, gamma: float = 5.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.gamma = check_number(gamma, "gamma", low=0.0)
