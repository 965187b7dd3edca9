"""``focal``, ``flsd53``, ``dual_focal``: the focal-loss family, −(1 − p_y)^γ log p_y and its variants."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["DualFocal", "FLSD53", "Focal"]


@register("focal")
class Focal(LogitObjective):
    """Focal loss L_i = −(1 − p_y)^γ log p_y, factor in log space (:func:`caltrain.losses.functional.focal`).

    Args:
        num_classes: K.
        gamma: γ ≥ 0; default 3 (Mukhoti's FL-3). 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "Lin et al. 2017, arXiv 1708.02002; Mukhoti et al. 2020, arXiv 2002.09437"
    function = staticmethod(functional.focal)
    hyperparameter_names = ("gamma",)

    def __init__(self, *, num_classes: int, gamma: float = 3.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.gamma = check_number(gamma, "gamma", low=0.0)


@register("flsd53")
class FLSD53(LogitObjective):
    """FLSD-53: focal loss with γ = 5 where p_y < 0.2, else 3, on the detached p_y
    (:func:`caltrain.losses.functional.flsd53`). No hyperparameters (no neutral setting).

    Args:
        num_classes: K.
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "Mukhoti et al. 2020, arXiv 2002.09437"
    function = staticmethod(functional.flsd53)

    def __init__(self, *, num_classes: int, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)


@register("dual_focal")
class DualFocal(LogitObjective):
    """Dual focal loss L_i = −(1 − p_y + p_j)^γ log p_y, p_j the largest probability below p_y
    (:func:`caltrain.losses.functional.dual_focal`).

    Args:
        num_classes: K.
        gamma: γ ≥ 0; default 5 (the authors' setting). 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "Tao, Dong, Xu; ICML 2023, arXiv 2305.13665"
    function = staticmethod(functional.dual_focal)
    hyperparameter_names = ("gamma",)

    def __init__(self, *, num_classes: int, gamma: float = 5.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.gamma = check_number(gamma, "gamma", low=0.0)
