"""``brier``: the Brier score as a training loss, Σ_k (p_k − onehot_k)² per sample."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register

__all__ = ["Brier"]


@register("brier")
class Brier(LogitObjective):
    """Brier loss L_i = Σ_k (p_ik − 1[k = y_i])², summed over classes, in [0, 2]
    (:func:`caltrain.losses.functional.brier`).

    Args:
        num_classes: K.
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "Brier 1950; as a training loss in Mukhoti et al. 2020, arXiv 2002.09437"
    function = staticmethod(functional.brier)

    def __init__(self, *, num_classes: int, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
