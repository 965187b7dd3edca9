"""``ecp``: the (entropy) confidence penalty, CE − β·H(p).

Notation: z = logits [N, K] (N samples, K classes), y = labels [N] in [0, K), p = softmax(z) [N, K],
p_y the true-class probability, CE_i = −log p_{i,y_i}, n = N the batch size; the loss is reduced by
``reduction`` ("mean" by default, "sum", or "none" for one value per sample, shape [N]). Half-precision
logits are computed in float32.

The pure function :func:`ecp` (also ``caltrain.losses.functional.ecp``) states the loss, its
hyperparameters and defaults, the paper and the readings; :class:`ConfidencePenalty` is the module over it.

Example:
    >>> import torch
    >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
    >>> ecp(z, y, reduction="none").shape
    torch.Size([2])
    >>> bool(torch.isclose(ConfidencePenalty(num_classes=3)(z, y), ecp(z, y)))
    True
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
    """

    paper = "Pereyra et al. 2017, arXiv 1701.06548"
    function = staticmethod(ecp)
    hyperparameter_names = ("beta",)

    def __init__(self, *, num_classes: int, beta: float = 0.1, reduction: str = "mean") -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.beta = check_number(beta, "beta", low=0.0)
