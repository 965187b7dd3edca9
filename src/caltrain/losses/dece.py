"""``dece``: CE + λ·DECE, a soft-binned differentiable expected calibration error on the batch."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["DECE"]


@register("dece")
class DECE(LogitObjective):
    """CE + λ·(1/n) Σ_b |Σ_i o_ib (1[ŷ_i = y_i] − conf_i)|, o the soft bin memberships
    (:func:`caltrain.losses.functional.dece`).

    Args:
        num_classes: K.
        weight: λ ≥ 0; default 0.5 (reading). 0 is CE.
        n_bins: M ≥ 1 equal-width soft bins; default 15.
        temperature: τ > 0 of the soft binning; default 0.01.
        reduction: "mean" (default), "sum" or "none" ([N]: CE_i + λ·DECE of the batch).
    """

    paper = "Bohdal, Yang, Hospedales 2021, arXiv 2106.09613"
    function = staticmethod(functional.dece)
    hyperparameter_names = ("weight", "n_bins", "temperature")

    def __init__(
        self,
        *,
        num_classes: int,
        weight: float = 0.5,
        n_bins: int = 15,
        temperature: float = 0.01,
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.weight = check_number(weight, "weight", low=0.0)
        self.n_bins = check_positive_int(n_bins, "n_bins")
        self.temperature = check_number(temperature, "temperature", low=0.0, low_inclusive=False)
