"""``mmce``: CE + λ·MMCE, the kernel maximum mean calibration error (weighted MMCE_w as an option).

    L = CE + λ·sqrt(MMCE² + 1e−10),   MMCE² = Σ_{i,j} a_i a_j exp(−|r_i − r_j|/h)   (a batch term),

with r_i = max_k p_ik the confidence, c_i = 1[ŷ_i = y_i], a_i = (c_i − r_i)/n (or the MMCE_w weights),
λ ≥ 0 (default 2), h > 0 (default 0.4). Paper: Kumar, Sarawagi, Jain; ICML 2018 (no arXiv id).
Shapes, defaults, reductions and readings: :func:`mmce` (``caltrain.losses.functional.mmce``);
:class:`MaximumMeanCalibrationError` is its module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import gather_true, nonneg, prepare, top_label, with_batch_term
from caltrain.losses.base import LogitObjective
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ['MaximumMeanCalibrationError', 'MMCE', 'mmce']


def mmce(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    weight: float = 2.0,
    bandwidth: float = 0.4,
    weighted: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """CE + λ·MMCE (Kumar, Sarawagi, Jain; ICML 2018, "Trainable calibration measures from kernel mean embeddings").

    r_i = conf_i (top-label confidence), c_i = 1[ŷ_i = y_i] (constant), k(r, r') = exp(−|r − r'|/h) (Laplacian).

    - unweighted (``weighted=False``): MMCE² = (1/n²) Σ_{i,j} (c_i − r_i)(c_j − r_j) k(r_i, r_j);
    - weighted (``weighted=True``, MMCE_w): with m correct and n' incorrect samples,
      MMCE_w² = ‖ Σ_{i correct} (1 − r_i) φ(r_i)/m − Σ_{j incorrect} r_j φ(r_j)/n' ‖²_H = aᵀ K a with
      a_i = (1 − r_i)/m for correct i and −r_i/n' for incorrect i (m, n' ≥ 1 guard empty groups).

    L = CE + λ·sqrt(MMCE² + 1e−10) (the paper's MMCE is the RKHS norm, the square root; the MbLS/Mukhoti code
    adds the square instead). For ``reduction="none"`` each sample gets CE_i + λ·MMCE (see the module docstring).

    Args:
        weight: λ ≥ 0; default 2 (docs/methods.md: λ ≈ 2). λ = 0 is CE.
        bandwidth: h > 0, the kernel width; default 0.4 (the paper's).
        weighted: use MMCE_w; default False.

    Cost: O(n²) per batch (the kernel matrix), negligible for n ≤ 1024.
    """
    z, y = prepare(logits, labels, reduction)
    lam = nonneg(weight, "weight")
    h = check_number(bandwidth, "bandwidth", low=0.0, low_inclusive=False)
    if not isinstance(weighted, bool):
        raise ValueError(f"weighted: expected a bool, got {weighted!r}")
    logp = F.log_softmax(z, dim=1)
    r, correct = top_label(logp, y)
    if weighted:
        n_correct = correct.sum().clamp_min(1.0)
        n_wrong = (1.0 - correct).sum().clamp_min(1.0)
        a = correct * (1.0 - r) / n_correct - (1.0 - correct) * r / n_wrong
    else:
        a = (correct - r) / r.shape[0]
    kernel = torch.exp(-(r[:, None] - r[None, :]).abs() / h)
    mmce_sq = (a[:, None] * kernel * a[None, :]).sum()
    term = torch.sqrt(mmce_sq.clamp_min(0.0) + 1e-10)
    return with_batch_term(-gather_true(logp, y), term, lam, reduction)


@register("mmce")
class MaximumMeanCalibrationError(LogitObjective):
    """CE + λ·sqrt(MMCE²) with a Laplacian kernel on confidences (:func:`mmce`).

    Args:
        num_classes: K.
        weight: λ ≥ 0; default 2. 0 is CE.
        bandwidth: kernel width h > 0 of exp(−|r − r'|/h); default 0.4.
        weighted: use the weighted MMCE_w (correct/incorrect groups); default False.
        reduction: "mean" (default), "sum" or "none" ([N]: CE_i + λ·MMCE of the batch).

    Example:
        >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
        >>> objective = MaximumMeanCalibrationError(num_classes=3)
        >>> bool(torch.isclose(objective(z, y), mmce(z, y))), mmce(z, y, reduction="none").shape
        (True, torch.Size([2]))
    """

    paper = "Kumar, Sarawagi, Jain; ICML 2018 (PMLR 80:2805-2814)"
    function = staticmethod(mmce)
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


#: The former class name, kept for existing code.
MMCE = MaximumMeanCalibrationError
