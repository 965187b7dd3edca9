"""``dca``: CE + β·|mean confidence − accuracy| on the batch (difference between confidence and accuracy)."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["DCA"]


@register("dca")
class DCA(LogitObjective):
    """CE + β·|(1/n) Σ conf_i − (1/n) Σ 1[ŷ_i = y_i]| (:func:`caltrain.losses.functional.dca`).

    Args:
        num_classes: K.
        weight: β ≥ 0; default 1. 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]: CE_i + β·DCA of the batch).
    """

    paper = "Liang, Zhang, Wang, Jiang; 2020, arXiv 2009.04057"
    function = staticmethod(functional.dca)
    hyperparameter_names = ("weight",)

    def __init__(self, *, num_classes: int, weight: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.weight = check_number(weight, "weight", low=0.0)
