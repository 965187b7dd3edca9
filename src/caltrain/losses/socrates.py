"""``socrates``: Socrates Loss, adaptive targets, a focal factor and an uncertainty penalty on an "unknown" output.

Notation: z = logits [n, K+1] (the last output is "unknown", idk), y = labels [n] in [0, K), p = softmax(z) over
all K+1 outputs, T [N, K] the per-sample EMA target table (N training samples), m its momentum,
tau_i = T[i, y_i], gamma/alpha the focal exponent/weight, beta_i the uncertainty penalty; the math is in
:func:`socrates_loss` and :mod:`caltrain.losses.abstention_base`, defaults and readings in :class:`Socrates`.
Evaluated under the ``with_unknown`` convention of the authors' code (:mod:`caltrain.abstention`).

Gómez-Gálvez, Olenyi, Dobbie, Taškova, "Socrates Loss: Unifying Confidence Calibration and Classification
by Leveraging the Unknown", TMLR 2026, arXiv 2604.12245 (authors' code: sandruskyi/SocratesLoss).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from caltrain.losses._tensors import check_bool, compute_dtype, gather_true, log_one_minus_true
from caltrain.losses.abstention_base import AdaptiveTargetObjective
from caltrain.losses.base import reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_choice, check_number

__all__ = ["BETA_MODES", "Socrates", "SocratesLoss", "socrates_loss"]

#: The uncertainty-penalty variants (``beta=``): the paper's, and the ablations of the authors' code.
BETA_MODES = ("dynamic", "no_relu", "step", "constant", "none")


def socrates_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    tau: torch.Tensor,
    *,
    gamma: float = 2.0,
    alpha: float = 1.0,
    beta: str = "dynamic",
    beta_constant: float = 0.25,
    focal_in_target: bool = True,
    focal_in_unknown: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """Socrates loss for given adaptive targets ``tau`` (the EMA table lives in :class:`Socrates`).

    With p = softmax(z) over all K+1 outputs (the last is "unknown", idk), for each sample i

        f_i      = alpha * (1 - p_{i,y})^gamma                 (focal factor, computed in log space),
        beta_i   = ReLU( max_{k not in {y_i, idk}} p_{i,k} - p_{i,idk} )     (dynamic uncertainty penalty),
        L_i      = -[ f_i tau_i log p_{i,y} + f_i (1 - tau_i) beta_i log p_{i,idk} ],

    reduced over the batch by ``reduction`` (mean by default). As in the authors' code, no stop-gradient is
    applied to beta or to the focal factor (gradients flow through both); tau carries no gradient.

    Args:
        logits: z, [N, K+1] floating point; the last column is the unknown output.
        labels: y, [N] integer classes in [0, K).
        tau: the adaptive targets tau_i = T[i, y_i], [N] in [0, 1] (detached).
        gamma: focal exponent >= 0 (default 2, the authors' example; 0 removes the focal factor).
        alpha: focal weight > 0 (default 1).
        beta: "dynamic" (the paper: the ReLU form above; the authors compute it as the largest non-true
            probability over all K+1 outputs minus p_idk, which is the same number), "no_relu" (their version
            2: max over k not in {y, idk} minus p_idk, may be negative), "step" (their version 3:
            ``beta_constant`` where p_idk <= that max, else 0), "constant" (``beta_constant`` everywhere:
            their ``dynamic=False``), "none" (beta = 1: their ``version_changingWithIdk=False``).
        beta_constant: the value of beta in the "constant" and "step" modes (default 0.25, the authors').
        focal_in_target: multiply the true-class term by f_i (default true; their ``version_FOCALinGT``).
        focal_in_unknown: multiply the unknown term by f_i (default true; their ``version_FOCALinSAT``).
            When a flag is off, that term has neither the focal factor nor alpha (as in the authors' code).
        reduction: "mean", "sum" or "none" ([N]).

    Returns:
        The reduced loss (a scalar, or [N] with ``reduction="none"``), float32 for half-precision logits.

    Example:
        >>> z = torch.tensor([[2.0, 0.0, -1.0]]); y = torch.tensor([0])
        >>> socrates_loss(z, y, torch.tensor([1.0]), gamma=0.0)  # tau = 1: cross-entropy over K+1 outputs
        tensor(0.1698)
    """
    z = compute_dtype(logits)
    logp = torch.log_softmax(z, dim=1)
    y = labels.unsqueeze(1)
    logp_y = gather_true(logp, labels)
    logp_idk = logp[:, -1]
    tau = tau.to(z.dtype)
    if gamma == 0.0:
        focal = torch.full_like(logp_y, alpha)
    else:
        focal = alpha * torch.exp(gamma * log_one_minus_true(z, labels))
    w_y = tau * focal if focal_in_target else tau
    w_idk = (1.0 - tau) * focal if focal_in_unknown else (1.0 - tau)
    if beta != "none":
        if beta == "constant":
            b = torch.full_like(logp_y, beta_constant)
        else:
            p = logp.exp()
            p_idk = p[:, -1]
            # the largest probability among the K classes other than y (the unknown column is excluded)
            others = p[:, :-1].scatter(1, y, float("-inf"))
            top_other = others.amax(dim=1)
            if beta == "dynamic":
                b = torch.relu(top_other - p_idk)
            elif beta == "no_relu":
                b = top_other - p_idk
            else:  # "step"
                b = torch.where(p_idk <= top_other, beta_constant, 0.0).to(z.dtype)
        w_idk = w_idk * b
    per_sample = -(w_y * logp_y + w_idk * logp_idk)
    return reduce_loss(per_sample, reduction)


@register("socrates")
class Socrates(AdaptiveTargetObjective):
    """Socrates Loss with its per-sample EMA target table (K+1 outputs, the last is "unknown").

    Per training sample i the objective keeps T[i] in R^K (rank-local state ``targets`` [N, K], with first-visit flags
    ``seen`` [N], both listed in ``sample_state``): on the first visit prev = onehot(y_i), afterwards
    prev = T[i]; q_i = softmax(z_i[:K]) on detached logits (unknown excluded);
    T[i] <- m * prev + (1 - m) * q_i, updated before the loss every time the sample is seen in training mode;
    tau_i = T[i, y_i]. The loss is :func:`socrates_loss` (docs/methods.md#socrates-loss):

        L = -(1/n) sum_i alpha (1 - p_{i,y})^gamma [ tau_i log p_{i,y} + (1 - tau_i) beta_i log p_{i,idk} ],
        beta_i = ReLU( max_{k not in {y_i, idk}} p_{i,k} - p_{i,idk} ).

    With momentum m = 1 the targets stay one-hot (tau = 1) and the unknown term vanishes: the loss is the
    focal loss over the K+1-way softmax. In ``eval()`` mode the table is read but not written (tau = prev).

    Paper: arXiv 2604.12245 (TMLR 2026); defaults from the authors' example script (m = 0.8, gamma = 2,
    alpha = 1, no warm-up: the authors always run Socrates with ``--pretrain 0``). Their code
    (sandruskyi/SocratesLoss, ``losses/Socrates.py``) is matched to float precision on random inputs by the
    tests, values and gradients. Reading: the authors' ``version_SAT_original=False`` (EMA over all K+1 outputs)
    is not exposed; the paper uses the K-class EMA.

    Args:
        num_classes: K, the number of real classes (the model has K+1 outputs: ``num_outputs``).
        num_samples: N, the training-set size (dataset indices lie in [0, N)).
        momentum: m in [0, 1] (default 0.8).
        gamma: focal exponent >= 0 (default 2).
        alpha: focal weight > 0 (default 1).
        beta: the uncertainty penalty: "dynamic" (default, the paper), "no_relu", "step", "constant", "none"
            (see :func:`socrates_loss`).
        beta_constant: beta in the "constant"/"step" ablations (default 0.25).
        focal_in_target, focal_in_unknown: the authors' focal-factor ablation switches (default true).
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> loss = Socrates(num_classes=3, num_samples=10)
        >>> z, y, idx = torch.randn(4, 4), torch.tensor([0, 1, 2, 0]), torch.tensor([0, 5, 7, 9])
        >>> bool(loss(z, y, indices=idx) > 0), int(loss.seen.sum())
        (True, 4)
    """

    paper: ClassVar[str] = "Gómez-Gálvez, Olenyi, Dobbie, Taškova; TMLR 2026, arXiv 2604.12245"

    def __init__(
        self,
        *,
        num_classes: int,
        num_samples: int,
        momentum: float = 0.8,
        gamma: float = 2.0,
        alpha: float = 1.0,
        beta: str = "dynamic",
        beta_constant: float = 0.25,
        focal_in_target: bool = True,
        focal_in_unknown: bool = True,
        reduction: str = "mean",
    ) -> None:
        super().__init__(
            num_classes=num_classes, num_samples=num_samples, momentum=momentum, warmup_epochs=0, reduction=reduction
        )
        self.gamma = check_number(gamma, "gamma", low=0.0)
        self.alpha = check_number(alpha, "alpha", low=0.0, low_inclusive=False)
        self.beta = check_choice(beta, "beta", BETA_MODES)
        self.beta_constant = check_number(beta_constant, "beta_constant", low=0.0)
        self.focal_in_target = check_bool(focal_in_target, "focal_in_target")
        self.focal_in_unknown = check_bool(focal_in_unknown, "focal_in_unknown")

    def adaptive_loss(self, logits: torch.Tensor, labels: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
        """:func:`socrates_loss` with this objective's hyperparameters and reduction."""
        return socrates_loss(
            logits, labels, tau, gamma=self.gamma, alpha=self.alpha, beta=self.beta,
            beta_constant=self.beta_constant, focal_in_target=self.focal_in_target,
            focal_in_unknown=self.focal_in_unknown, reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, num_samples={self.num_samples}, momentum={self.momentum}, "
            f"gamma={self.gamma}, alpha={self.alpha}, beta={self.beta!r}, reduction={self.reduction!r}"
        )


#: The former class name, kept for existing code.
SocratesLoss = Socrates
