"""``dece``: CE + λ·DECE, a soft-binned differentiable expected calibration error on the batch.

    L = CE + λ·(1/n) Σ_b |Σ_i o_ib (a_i − conf_i)|   (a batch term),

with conf_i = max_k p_ik, a_i = 1[ŷ_i = y_i], o_ib the soft membership of conf_i in bin b of M (temperature
τ), λ ≥ 0 (default 0.5), M = 15, τ = 0.01. Paper: Bohdal, Yang, Hospedales 2021, arXiv 2106.09613.
Shapes, defaults, reductions and readings: :func:`dece` (``caltrain.losses.functional.dece``);
:class:`DifferentiableExpectedCalibrationError` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import gather_true, nonneg, prepare, top_label, with_batch_term
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ['DECE', 'dece', 'DifferentiableExpectedCalibrationError', 'soft_bin_membership']


def soft_bin_membership(conf: torch.Tensor, n_bins: int, temperature: float) -> torch.Tensor:
    """Soft membership [N, M] of confidences in M equal-width bins (Yang et al. 2018 soft binning).

    With cut points c_j = j/M (j = 1..M−1), w = (1, …, M) and b = (0, −c_1, −c_1 − c_2, …),
    o_i = softmax((w·conf_i + b)/τ): as τ → 0 it tends to the one-hot of the bin holding conf_i.
    """
    w = torch.arange(1, n_bins + 1, dtype=conf.dtype, device=conf.device)
    cuts = torch.arange(1, n_bins, dtype=conf.dtype, device=conf.device) / n_bins
    b = torch.cat([torch.zeros(1, dtype=conf.dtype, device=conf.device), -torch.cumsum(cuts, 0)])
    return F.softmax((conf[:, None] * w + b) / temperature, dim=1)


def dece(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    weight: float = 0.5,
    n_bins: int = 15,
    temperature: float = 0.01,
    reduction: str = "mean",
) -> torch.Tensor:
    """CE + λ·DECE, soft-binned differentiable ECE (Bohdal, Yang, Hospedales 2021, arXiv 2106.09613).

    With soft memberships o_ib (:func:`soft_bin_membership`, M bins, temperature τ) of conf_i and a_i = 1[ŷ_i = y_i],
    DECE = Σ_b (n_b/n)·|acc_b − conf_b| = (1/n) Σ_b |Σ_i o_ib (a_i − conf_i)|  (n_b = Σ_i o_ib).

    Reading: the paper also makes the accuracy differentiable through a soft ranking of the true class; we use the
    hard indicator a_i (a constant), so the gradient flows through the confidences and the memberships.

    Args:
        weight: λ ≥ 0; default 0.5 (reading: the paper's meta-learned setting has no single λ). λ = 0 is CE.
        n_bins: M ≥ 1; default 15 (the paper's).
        temperature: τ > 0 of the soft binning; default 0.01 (the paper's).
    """
    z, y = prepare(logits, labels, reduction)
    lam = nonneg(weight, "weight")
    m = check_positive_int(n_bins, "n_bins")
    t = check_number(temperature, "temperature", low=0.0, low_inclusive=False)
    logp = F.log_softmax(z, dim=1)
    conf, correct = top_label(logp, y)
    gap = correct - conf
    member = soft_bin_membership(conf, m, t)
    term = (member * gap[:, None]).sum(dim=0).abs().sum() / conf.shape[0]
    return with_batch_term(-gather_true(logp, y), term, lam, reduction)


@register("dece")
class DifferentiableExpectedCalibrationError(LogitObjective):
    """CE + λ·(1/n) Σ_b |Σ_i o_ib (1[ŷ_i = y_i] − conf_i)|, o the soft bin memberships
    (:func:`dece`).

    Args:
        num_classes: K.
        weight: λ ≥ 0; default 0.5 (reading). 0 is CE.
        n_bins: M ≥ 1 equal-width soft bins; default 15.
        temperature: τ > 0 of the soft binning; default 0.01.
        reduction: "mean" (default), "sum" or "none" ([N]: CE_i + λ·DECE of the batch).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = DifferentiableExpectedCalibrationError(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), dece(z, y))), dece(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Bohdal, Yang, Hospedales 2021, arXiv 2106.09613"
    function = staticmethod(dece)
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


#: The former class name, kept for existing code.
DECE = DifferentiableExpectedCalibrationError
