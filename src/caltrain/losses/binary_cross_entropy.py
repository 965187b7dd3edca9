"""``bce``: dense binary cross-entropy with logits, one logit per pixel.

    L = mean over the N·P pixels of the batch of  −[y log σ(z) + (1 − y) log(1 − σ(z))],

with z the logits [N, 1, H, W] or [N, H, W], y the targets of the same shape in [0, 1] (soft masks allowed).
The baseline of the dense binary objectives (``sc_bce`` with α = 0 is this loss).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import prepare_dense_binary
from caltrain.losses.base import DenseBinaryObjective, reduce_loss
from caltrain.losses.registry import register

__all__ = ["BinaryCrossEntropy", "bce"]


def bce(logits: torch.Tensor, targets: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Dense binary cross-entropy with logits (``F.binary_cross_entropy_with_logits``, stable for any z).

    Args:
        logits: z, floating point [N, 1, H, W] or [N, H, W] (one logit per pixel).
        targets: y, the same shape (the channel axis may be absent in one of the two), values in [0, 1].
        reduction: "mean" (over all pixels of the batch), "none" (per image: the mean over its pixels, [N]) or
            "sum" (the sum of the per-image means).

    Example:
        >>> z, y = torch.zeros(2, 1, 2, 2), torch.ones(2, 2, 2)
        >>> bce(z, y)  # log 2
        tensor(0.6931)
    """
    z, y = prepare_dense_binary(logits, targets, reduction)
    per_image = F.binary_cross_entropy_with_logits(z, y, reduction="none").mean(dim=1)
    return reduce_loss(per_image, reduction)


@register("bce")
class BinaryCrossEntropy(DenseBinaryObjective):
    """Dense binary cross-entropy with logits (:func:`bce`).

    Example:
        >>> objective = BinaryCrossEntropy()
        >>> objective.num_outputs, sorted(objective.tasks)
        (1, ['dense_binary'])
    """

    paper: ClassVar[str] = "binary cross-entropy (the dense baseline of Liu et al., ICCV 2023, arXiv 2307.13539)"

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of ``logits`` [N, 1, H, W] for the targets ``labels`` of the same shape."""
        return bce(logits, labels, reduction=self.reduction)
