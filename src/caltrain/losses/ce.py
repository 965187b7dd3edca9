"""``ce``: cross-entropy, the baseline every calibration objective is compared with."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register

__all__ = ["CrossEntropy"]


@register("ce")
class CrossEntropy(LogitObjective):
    """Cross-entropy, L_i = −log p_{i,y_i} (:func:`caltrain.losses.functional.ce`).

    Args:
        num_classes: K.
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "multinomial log-likelihood (no paper); Guo et al. 2017, arXiv 1706.04599 on its miscalibration"
    function = staticmethod(functional.ce)

    def __init__(self, *, num_classes: int, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
