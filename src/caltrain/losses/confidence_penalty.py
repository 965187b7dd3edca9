"""``ecp``: the confidence penalty, CE − β·H(p) (entropy regularisation of the predictive distribution)."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["ConfidencePenalty"]


@register("ecp")
class ConfidencePenalty(LogitObjective):
    """Confidence penalty L_i = CE_i − β·H(p_i), H = −Σ_k p_k log p_k (:func:`caltrain.losses.functional.ecp`).

    Args:
        num_classes: K.
        beta: β ≥ 0; default 0.1 (reading; the paper tunes it per task). 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "Pereyra et al. 2017, arXiv 1701.06548"
    function = staticmethod(functional.ecp)
    hyperparameter_names = ("beta",)

    def __init__(self, *, num_classes: int, beta: float = 0.1, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.beta = check_number(beta, "beta", low=0.0)
