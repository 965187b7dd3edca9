"""``mbls``: margin-based label smoothing, CE + λ·mean ReLU(max_j z_j − z_k − m) (an inequality, not an equality)."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["MbLS"]


@register("mbls")
class MbLS(LogitObjective):
    """MbLS: L = CE + α·mean over the n×K entries of ReLU(d_ik − m), d_ik = max_j z_ij − z_ik
    (:func:`caltrain.losses.functional.mbls`; matches by-liu/MbLS ``LogitMarginL1`` without its α schedule).

    Label smoothing, focal loss and the confidence penalty all push every d_k to 0; MbLS only asks d_k ≤ m,
    and is exactly CE while every distance is within the margin.

    Args:
        num_classes: K.
        margin: m ≥ 0; default 10.
        alpha: λ ≥ 0; default 0.1. 0 is CE.
        ignore_index: a label whose samples (pixels) are left out of the loss; default None (none).
        reduction: "mean" (default), "sum" or "none" ([N], or the labels' shape for dense inputs).

    Dense inputs: logits [N, K, *spatial] with labels [N, *spatial] (every pixel a sample).
    """

    paper = "Liu, Ben Ayed, Galdran, Dolz; CVPR 2022, arXiv 2111.15430"
    function = staticmethod(functional.mbls)
    hyperparameter_names = ("margin", "alpha", "ignore_index")

    def __init__(
        self,
        *,
        num_classes: int,
        margin: float = 10.0,
        alpha: float = 0.1,
        ignore_index: int | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.margin = check_number(margin, "margin", low=0.0)
        self.alpha = check_number(alpha, "alpha", low=0.0)
        if ignore_index is not None and not isinstance(ignore_index, int):
            raise ValueError(f"ignore_index: expected an int or None, got {ignore_index!r}")
        self.ignore_index = ignore_index
