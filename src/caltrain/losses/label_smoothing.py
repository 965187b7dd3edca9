"""``ls``: label smoothing, CE against (1 − α)·onehot + α/K.

    t_i = (1 − α)·onehot(y_i) + α/K,   L_i = −Σ_k t_ik log p_ik,

with z the logits [N, K], y the labels [N], p = softmax(z), α ∈ [0, 1] the smoothing (default 0.05).
Paper: Szegedy et al. 2016, arXiv 1512.00567.
Shapes, defaults, reductions and readings: :func:`ls` (``caltrain.losses.functional.ls``);
:class:`LabelSmoothing` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import gather_true, prepare
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ['LabelSmoothing', 'ls']


def ls(logits: torch.Tensor, labels: torch.Tensor, *, smoothing: float = 0.05, reduction: str = "mean") -> torch.Tensor:
    """Label smoothing (Szegedy et al. 2016, arXiv 1512.00567): CE against a smoothed target.

    Target t = (1 − α)·onehot(y) + α/K, L_i = −Σ_k t_k log p_ik = (1 − α)·CE_i + α·(1/K) Σ_k (−log p_ik).

    Args:
        smoothing: α ∈ [0, 1]. Default 0.05, the value of Mukhoti et al. 2020 and of the MbLS comparisons
            (docs/methods.md 2; 0.1 is the other common choice). α = 0 is CE.
    """
    z, y = prepare(logits, labels, reduction)
    a = check_number(smoothing, "smoothing", low=0.0, high=1.0)
    logp = F.log_softmax(z, dim=1)
    per = -(1.0 - a) * gather_true(logp, y) - a * logp.mean(dim=1)
    return reduce_loss(per, reduction)


@register("ls")
class LabelSmoothing(LogitObjective):
    """Label smoothing: L_i = (1 − α)·CE_i + α·(1/K) Σ_k (−log p_ik) (:func:`ls`).

    Args:
        num_classes: K.
        smoothing: α ∈ [0, 1]; default 0.05 (Mukhoti et al. 2020 and the MbLS comparisons). 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = LabelSmoothing(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), ls(z, y))), ls(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Szegedy et al. 2016, arXiv 1512.00567"
    function = staticmethod(ls)
    hyperparameter_names = ("smoothing",)

    def __init__(self, *, num_classes: int, smoothing: float = 0.05, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.smoothing = check_number(smoothing, "smoothing", low=0.0, high=1.0)
