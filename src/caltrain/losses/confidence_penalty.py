"""``ecp``: the (entropy) confidence penalty, CE − β·H(p).

    L_i = −log p_{i,y_i} − β·H(p_i),   H(p_i) = −Σ_k p_ik log p_ik,

with z the logits [N, K], y the labels [N], p = softmax(z), β ≥ 0 (default 0.1).
Paper: Pereyra et al. 2017, arXiv 1701.06548.
Shapes, defaults, reductions and readings: :func:`ecp` (``caltrain.losses.functional.ecp``);
:class:`ConfidencePenalty` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import gather_true, nonneg, prepare
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ['ConfidencePenalty', 'ecp']


def ecp(logits: torch.Tensor, labels: torch.Tensor, *, beta: float = 0.1, reduction: str = "mean") -> torch.Tensor:
    """Confidence penalty (Pereyra et al. 2017, arXiv 1701.06548): L_i = CE_i − β·H(p_i), H = −Σ_k p_k log p_k.

    Args:
        beta: β ≥ 0; default 0.1 (reading: the paper tunes β per task; 0.1 is the MbLS baseline's value).
            β = 0 is CE. Reading: the entropy is summed over classes as in the paper (the MbLS code averages it
            over classes, i.e. uses β/K).
    """
    z, y = prepare(logits, labels, reduction)
    b = nonneg(beta, "beta")
    logp = F.log_softmax(z, dim=1)
    entropy = -(logp.exp() * logp).sum(dim=1)
    return reduce_loss(-gather_true(logp, y) - b * entropy, reduction)


@register("ecp")
class ConfidencePenalty(LogitObjective):
    """Confidence penalty L_i = CE_i − β·H(p_i), H = −Σ_k p_k log p_k (:func:`ecp`).

    Args:
        num_classes: K.
        beta: β ≥ 0; default 0.1 (reading; the paper tunes it per task). 0 is CE.
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = ConfidencePenalty(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), ecp(z, y))), ecp(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Pereyra et al. 2017, arXiv 1701.06548"
    function = staticmethod(ecp)
    hyperparameter_names = ("beta",)

    def __init__(self, *, num_classes: int, beta: float = 0.1, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.beta = check_number(beta, "beta", low=0.0)
