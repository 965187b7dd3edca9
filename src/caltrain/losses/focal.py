"""``focal``: the focal loss, −(1 − p_y)^γ log p_y.

    L_i = −(1 − p_{i,y_i})^γ log p_{i,y_i},

with z the logits [N, K], y the labels [N], p = softmax(z), γ ≥ 0 (default 3). Papers: Lin et al. 2017,
arXiv 1708.02002; Mukhoti et al. 2020, arXiv 2002.09437 (calibration).
The same entry trains dense binary models: on one logit per pixel (logits [N, 1, H, W] or [N, H, W], real
targets in [0, 1]) it is the binary focal loss −(1 − p_t)^γ log p_t per pixel (:func:`binary_focal`), so
``tasks = {"classification", "dense_binary"}``; the shape of the logits decides (classification logits are
[N, K]). Shapes, defaults, reductions and readings: :func:`focal` (``caltrain.losses.functional.focal``);
:class:`Focal` is its module.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import gather_true, log_one_minus_true, nonneg, prepare, prepare_dense_binary
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ['Focal', 'binary_focal', 'focal']


def focal(logits: torch.Tensor, labels: torch.Tensor, *, gamma: float = 3.0, reduction: str = "mean") -> torch.Tensor:
    """Focal loss (Lin et al. 2017, arXiv 1708.02002; for calibration Mukhoti et al. 2020, arXiv 2002.09437).

    L_i = −(1 − p_y)^γ log p_y, with (1 − p_y)^γ = exp(γ·log(1 − p_y)) computed in log space
    (log(1 − p_y) = logsumexp_{k≠y} z_k − logsumexp_k z_k), so it stays finite and exact when p_y → 1.
    The focal factor is not detached (as in both papers' code).

    Args:
        gamma: γ ≥ 0; default 3 (Mukhoti's FL-3, MbLS' focal baseline). γ = 0 is CE.

    Logits with more than two axes ([N, 1, H, W] or [N, H, W]) are dense binary: :func:`binary_focal`.
    """
    if isinstance(logits, torch.Tensor) and logits.dim() > 2:
        return binary_focal(logits, labels, gamma=gamma, reduction=reduction)
    z, y = prepare(logits, labels, reduction)
    g = nonneg(gamma, "gamma")
    lse = torch.logsumexp(z, dim=1)
    logp_y = gather_true(z, y) - lse
    factor = torch.exp(g * log_one_minus_true(z, y, lse))
    return reduce_loss(-factor * logp_y, reduction)


def binary_focal(
    logits: torch.Tensor, targets: torch.Tensor, *, gamma: float = 3.0, reduction: str = "mean"
) -> torch.Tensor:
    """Dense binary focal loss (Lin et al. 2017): per pixel −(1 − p_t)^γ log p_t, p_t = σ(z) where y = 1 and
    1 − σ(z) where y = 0; for soft targets y ∈ [0, 1] the two terms are weighted by y and 1 − y:

        L = −y (1 − s)^γ log s − (1 − y) s^γ log(1 − s),   s = σ(z),

    with log s = −softplus(−z), log(1 − s) = −softplus(z) (finite at any z). γ = 0 is BCE.

    Args:
        logits: z, [N, 1, H, W] or [N, H, W]. targets: y, the same shape, in [0, 1].
        gamma: γ ≥ 0 (default 3).
        reduction: "mean" (all pixels), "none" (per image, [N]) or "sum".
    """
    z, y = prepare_dense_binary(logits, targets, reduction)
    g = nonneg(gamma, "gamma")
    log_s, log_1s = -F.softplus(-z), -F.softplus(z)
    per_pixel = -(y * torch.exp(g * log_1s) * log_s + (1.0 - y) * torch.exp(g * log_s) * log_1s)
    return reduce_loss(per_pixel.mean(dim=1), reduction)


@register("focal")
class Focal(LogitObjective):
    """Focal loss L_i = −(1 − p_y)^γ log p_y, factor in log space (:func:`focal`).

    Args:
        num_classes: K.
        gamma: γ ≥ 0; default 3 (Mukhoti's FL-3). 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = Focal(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), focal(z, y))), focal(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Lin et al. 2017, arXiv 1708.02002; Mukhoti et al. 2020, arXiv 2002.09437"
    tasks: ClassVar[frozenset[str]] = frozenset({"classification", "dense_binary"})
    function = staticmethod(focal)
    hyperparameter_names = ("gamma",)

    def __init__(self, *, num_classes: int, gamma: float = 3.0, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.gamma = check_number(gamma, "gamma", low=0.0)

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Focal loss of ``logits`` [N, K] for ``labels`` [N]; binary focal on dense [N, 1, H, W] logits."""
        if isinstance(logits, torch.Tensor) and logits.dim() > 2:
            return binary_focal(logits, labels, gamma=self.gamma, reduction=self.reduction)
        return super().forward(logits, labels)
