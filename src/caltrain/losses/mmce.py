"""``mmce``: CE + λ·MMCE, the kernel maximum mean calibration error (weighted MMCE_w as an option)."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["MMCE"]


@register("mmce")
class MMCE(LogitObjective):
    """CE + λ·sqrt(MMCE²) with a Laplacian kernel on confidences (:func:`caltrain.losses.functional.mmce`).

    Args:
        num_classes: K.
        weight: λ ≥ 0; default 2. 0 is CE.
        bandwidth: kernel width h > 0 of exp(−|r − r'|/h); default 0.4.
        weighted: use the weighted MMCE_w (correct/incorrect groups); default False.
        reduction: "mean" (default), "sum" or "none" ([N]: CE_i + λ·MMCE of the batch).
    """

    paper = "Kumar, Sarawagi, Jain; ICML 2018 (PMLR 80:2805-2814)"
    function = staticmethod(functional.mmce)
    hyperparameter_names = ("weight", "bandwidth", "weighted")

    def __init__(
        self,
        *,
        num_classes: int,
        weight: float = 2.0,
        bandwidth: float = 0.4,
        weighted: bool = False,
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.weight = check_number(weight, "weight", low=0.0)
        self.bandwidth = check_number(bandwidth, "bandwidth", low=0.0, low_inclusive=False)
        if not isinstance(weighted, bool):
            raise ValueError(f"weighted: expected a bool, got {weighted!r}")
        self.weighted = weighted
