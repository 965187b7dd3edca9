"""``mdca``: CE + β·(1/K) Σ_k |mean_i p_ik − mean_i 1[y_i = k]| (multi-class difference of confidence and accuracy)."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["MDCA"]


@register("mdca")
class MDCA(LogitObjective):
    """CE + β·MDCA on the batch (:func:`caltrain.losses.functional.mdca`).

    Args:
        num_classes: K.
        weight: β ≥ 0; default 1 (the authors' code). 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]: CE_i + β·MDCA of the batch).
    """

    paper = "Hebbalaguppe, Prakash, Madan, Arora; CVPR 2022, arXiv 2203.13834"
    function = staticmethod(functional.mdca)
    hyperparameter_names = ("weight",)

    def __init__(self, *, num_classes: int, weight: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.weight = check_number(weight, "weight", low=0.0)
