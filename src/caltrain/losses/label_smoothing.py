"""``ls``: label smoothing, CE against (1 − α)·onehot + α/K."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["LabelSmoothing"]


@register("ls")
class LabelSmoothing(LogitObjective):
    """Label smoothing: L_i = (1 − α)·CE_i + α·(1/K) Σ_k (−log p_ik) (:func:`caltrain.losses.functional.ls`).

    Args:
        num_classes: K.
        smoothing: α ∈ [0, 1]; default 0.05 (Mukhoti et al. 2020 and the MbLS comparisons). 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "Szegedy et al. 2016, arXiv 1512.00567"
    function = staticmethod(functional.ls)
    hyperparameter_names = ("smoothing",)

    def __init__(self, *, num_classes: int, smoothing: float = 0.05, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.smoothing = check_number(smoothing, "smoothing", low=0.0, high=1.0)
