"""``poly1``: Poly-1, CE + ε·(1 − p_y) (the leading term of the polynomial expansion of CE, reweighted)."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["Poly1"]


@register("poly1")
class Poly1(LogitObjective):
    """Poly-1 L_i = CE_i + ε(1 − p_{i,y_i}) (:func:`caltrain.losses.functional.poly1`).

    Args:
        num_classes: K.
        epsilon: ε ≥ −1; default 1. 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "Leng et al.; ICLR 2022, arXiv 2204.12511"
    function = staticmethod(functional.poly1)
    hyperparameter_names = ("epsilon",)

    def __init__(self, *, num_classes: int, epsilon: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.epsilon = check_number(epsilon, "epsilon", low=-1.0)
