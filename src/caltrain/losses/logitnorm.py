"""``logitnorm``: CE of the L2-normalised logits z/(τ‖z‖), which caps the logit norm's growth."""

from __future__ import annotations

from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["LogitNorm"]


@register("logitnorm")
class LogitNorm(LogitObjective):
    """LogitNorm L_i = CE(z_i / (τ(‖z_i‖₂ + 1e−7)), y_i) (:func:`caltrain.losses.functional.logitnorm`).

    Args:
        num_classes: K.
        temperature: τ > 0; default 0.04 (the paper's CIFAR-10 value). No neutral setting.
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "Wei, Xie, Cheng, Feng, An, Li; ICML 2022, arXiv 2205.09310"
    function = staticmethod(functional.logitnorm)
    hyperparameter_names = ("temperature",)

    def __init__(self, *, num_classes: int, temperature: float = 0.04, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.temperature = check_number(temperature, "temperature", low=0.0, low_inclusive=False)
