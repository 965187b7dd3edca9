"""``mbls``: margin-based label smoothing, CE + λ·mean ReLU(max_j z_j − z_k − m).

    d_ik = max_j z_ij − z_ik,   L_i = −log p_{i,y_i} + α·(1/K) Σ_k ReLU(d_ik − m),

with z the logits [N, K] (or [N, K, *spatial] with labels [N, *spatial]), y the labels, p = softmax(z),
m ≥ 0 the margin (default 10), α ≥ 0 the weight (default 0.1).
Paper: Liu, Ben Ayed, Galdran, Dolz; CVPR 2022, arXiv 2111.15430.
Shapes, defaults, reductions and readings: :func:`mbls` (``caltrain.losses.functional.mbls``);
:class:`MarginBasedLabelSmoothing` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import nonneg, prepare
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ['MarginBasedLabelSmoothing', 'MbLS', 'mbls']


def _flatten_dense(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense logits ``[N, K, *spatial]`` and labels ``[N, *spatial]`` -> ``[N·P, K]`` and ``[N·P]`` (P pixels)."""
    if labels.dim() != logits.dim() - 1 or labels.shape[0] != logits.shape[0] or labels.shape[1:] != logits.shape[2:]:
        raise ValueError(
            f"labels: expected shape [N, *spatial] = {(logits.shape[0], *logits.shape[2:])} for dense logits "
            f"[N, K, *spatial] of shape {tuple(logits.shape)}, got {tuple(labels.shape)}"
        )
    return logits.movedim(1, -1).reshape(-1, logits.shape[1]), labels.reshape(-1)


def mbls(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    margin: float = 10.0,
    alpha: float = 0.1,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Margin-based label smoothing, MbLS (Liu, Ben Ayed, Galdran, Dolz; CVPR 2022, arXiv 2111.15430).

    Logit distances d_ik = max_j z_ij − z_ik ≥ 0; L_i = CE_i + α·(1/K) Σ_k ReLU(d_ik − m), so the batch mean is
    CE + α·(mean over the n×K entries of ReLU(d − m)), exactly the authors' code (by-liu/MbLS,
    ``LogitMarginL1``: the argmax column, where d = 0, is included in the mean). When every d_ik ≤ m the loss
    is exactly CE.

    Args:
        margin: m ≥ 0; default 10 (the paper's).
        alpha: λ ≥ 0, the penalty weight; default 0.1 (the paper's). α = 0 is CE.

    Dense inputs (segmentation, as in the paper's VOC/Cityscapes runs): ``logits`` [N, K, *spatial] with
    ``labels`` [N, *spatial]; every pixel is a sample. Pixels whose label is ``ignore_index`` contribute neither
    CE nor penalty (the authors' code leaves them in the penalty: a bug not repeated); "mean" averages over the
    counted pixels, "none" returns the labels' shape with 0 at ignored pixels. No host synchronisation.

    We differ from the authors' code in: no α schedule (their results use none); ignored pixels masked out of the
    penalty too.
    """
    shape = labels.shape
    if isinstance(logits, torch.Tensor) and isinstance(labels, torch.Tensor) and logits.dim() > 2:
        logits, labels = _flatten_dense(logits, labels)
    z, y = prepare(logits, labels, reduction, ignore_index=ignore_index)
    m = nonneg(margin, "margin")
    a = nonneg(alpha, "alpha")
    d = z.amax(dim=1, keepdim=True) - z
    penalty = F.relu(d - m).mean(dim=1)
    if ignore_index is None:
        per_sample = F.cross_entropy(z, y, reduction="none") + a * penalty
        return reduce_loss(per_sample, reduction) if reduction != "none" else per_sample.reshape(shape)
    valid = y != ignore_index
    per_sample = (F.cross_entropy(z, torch.where(valid, y, 0), reduction="none") + a * penalty) * valid
    if reduction == "mean":
        return per_sample.sum() / valid.sum().clamp_min(1)
    return per_sample.sum() if reduction == "sum" else per_sample.reshape(shape)


@register("mbls")
class MarginBasedLabelSmoothing(LogitObjective):
    """MbLS: L = CE + α·mean over the n×K entries of ReLU(d_ik − m), d_ik = max_j z_ij − z_ik
    (:func:`mbls`; matches by-liu/MbLS ``LogitMarginL1`` without its α schedule).

    Label smoothing, focal loss and the confidence penalty all push every d_k to 0; MbLS only asks d_k ≤ m,
    and is exactly CE while every distance is within the margin.

    Args:
        num_classes: K.
        margin: m ≥ 0; default 10.
        alpha: λ ≥ 0; default 0.1. 0 is CE.
        ignore_index: a label whose samples (pixels) are left out of the loss; default None (none).
        reduction: "mean" (default), "sum" or "none" ([N], or the labels' shape for dense inputs).

    Dense inputs: logits [N, K, *spatial] with labels [N, *spatial] (every pixel a sample).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = MarginBasedLabelSmoothing(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), mbls(z, y))), mbls(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Liu, Ben Ayed, Galdran, Dolz; CVPR 2022, arXiv 2111.15430"
    function = staticmethod(mbls)
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


#: The former class name, kept for existing code.
MbLS = MarginBasedLabelSmoothing
