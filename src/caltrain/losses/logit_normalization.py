"""``logitnorm``: logit normalisation, CE of z/(τ‖z‖), which caps the logit norm's growth.

    L_i = CE( z_i / (τ·(‖z_i‖₂ + 1e−7)), y_i ),

with z the logits [N, K], y the labels [N], τ > 0 the temperature (default 0.04).
Paper: Wei et al.; ICML 2022, arXiv 2205.09310.
Shapes, defaults, reductions and readings: :func:`logitnorm` (``caltrain.losses.functional.logitnorm``);
:class:`LogitNormalization` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import prepare
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ['LogitNorm', 'logitnorm', 'LogitNormalization']


def logitnorm(
    logits: torch.Tensor, labels: torch.Tensor, *, temperature: float = 0.04, reduction: str = "mean"
) -> torch.Tensor:
    """LogitNorm (Wei et al. ICML 2022, arXiv 2205.09310): CE of the normalised logits z / (τ·(‖z‖₂ + 1e−7)).

    Args:
        temperature: τ > 0; default 0.04 (the paper's CIFAR-10 value). The 1e−7 is the authors' guard.
    """
    z, y = prepare(logits, labels, reduction)
    t = check_number(temperature, "temperature", low=0.0, low_inclusive=False)
    norms = torch.linalg.vector_norm(z, dim=1, keepdim=True) + 1e-7
    return F.cross_entropy(z / (norms * t), y, reduction=reduction)


@register("logitnorm")
class LogitNormalization(LogitObjective):
    """LogitNorm L_i = CE(z_i / (τ(‖z_i‖₂ + 1e−7)), y_i) (:func:`logitnorm`).

    Args:
        num_classes: K.
        temperature: τ > 0; default 0.04 (the paper's CIFAR-10 value). No neutral setting.
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = LogitNormalization(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), logitnorm(z, y))), logitnorm(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Wei, Xie, Cheng, Feng, An, Li; ICML 2022, arXiv 2205.09310"
    function = staticmethod(logitnorm)
    hyperparameter_names = ("temperature",)

    def __init__(self, *, num_classes: int, temperature: float = 0.04, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.temperature = check_number(temperature, "temperature", low=0.0, low_inclusive=False)


#: The former class name, kept for existing code.
LogitNorm = LogitNormalization
