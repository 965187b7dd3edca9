"""``cals``: class-adaptive label smoothing (CALS), an augmented Lagrangian on the logit-distance constraints.

Notation: z = logits [n, K], y = labels [n], d_ik = max_j z_ij − z_ik the logit distances, m the margin,
h_ik the constraints, lambda and rho [K] the class-wise multipliers and penalty weights; the math is in
:func:`cals_constraints`, :func:`phr_penalty`, :func:`cals_loss` and :class:`ClassAdaptiveLabelSmoothing`
(with the per-epoch update, defaults and readings).

Liu, Rony, Galdran, Dolz, Ben Ayed, "Class Adaptive Network Calibration", CVPR 2023, arXiv 2211.15088
(authors' code: by-liu/CALS, ``calibrate/lagrangian/aug_lagrangian_class.py``).
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import check_logits, check_logits_labels, compute_dtype
from caltrain.losses.base import Objective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["CALSLoss", "ClassAdaptiveLabelSmoothing", "cals_constraints", "cals_loss", "phr_penalty"]


def cals_constraints(logits: torch.Tensor, margin: float, *, normalize: bool = True) -> torch.Tensor:
    """h_ik = (max_j z_ij - z_ik - m) / m (or without the division when ``normalize`` is false), [N, K].

    The constraint h_ik <= 0 asks every logit distance d_ik = max_j z_ij - z_ik to stay below the margin m.
    """
    h = logits.amax(dim=1, keepdim=True) - logits - margin
    return h / margin if normalize else h


def phr_penalty(h: torch.Tensor, lambd: torch.Tensor, rho: torch.Tensor) -> torch.Tensor:
    """The PHR augmented-Lagrangian penalty P(h, lambda, rho) = (max(0, lambda + rho h)^2 - lambda^2) / (2 rho).

    Elementwise; ``lambd`` and ``rho`` [K] broadcast over the class dimension of h [N, K]. Its derivative in h
    is max(0, lambda + rho h), the multiplier estimate used by the update.
    """
    return (torch.relu(lambd + rho * h).square() - lambd.square()) / (2.0 * rho)


def cals_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    lambd: torch.Tensor,
    rho: torch.Tensor,
    *,
    margin: float = 10.0,
    normalize: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """CALS training loss for given multipliers: L_i = CE_i + (1/K) sum_k P(h_ik, lambda_k, rho_k).

    The mean over samples is CE + the mean of P over the N x K entries (the authors' ``p.mean()``).

    Args:
        logits: z, [N, K]; labels: y, [N].
        lambd: lambda, [K] class-wise multipliers (>= 0); rho: [K] class-wise penalty weights (> 0).
        margin: m > 0 (default 10); normalize: divide h by m (default true, the authors' default).
        reduction: "mean" (default), "sum" or "none" ([N]).
    """
    z = compute_dtype(logits)
    h = cals_constraints(z, margin, normalize=normalize)
    penalty = phr_penalty(h, lambd.to(z.dtype), rho.to(z.dtype)).mean(dim=1)
    return reduce_loss(F.cross_entropy(z, labels, reduction="none") + penalty, reduction)


@register("cals")
class ClassAdaptiveLabelSmoothing(Objective):
    """CALS: CE plus class-wise PHR penalties whose multipliers are updated once per epoch on validation.

    With d_ik = max_j z_ij - z_ik and h_ik = (d_ik - m)/m <= 0 (:func:`cals_constraints`),

        L = (1/n) sum_i CE_i + (1/(nK)) sum_{i,k} P(h_ik, lambda_k, rho_k),
        P(h, lambda, rho) = (max(0, lambda + rho h)^2 - lambda^2) / (2 rho),

    with buffers lambda [K] (init lambda_min) and rho [K] (init rho_min). After epoch t (0-based), on the
    validation logits (docs/methods.md 1.2, as in by-liu/CALS):

        lambda_k <- clip( mean_i clip( max(0, lambda_k + rho_k h_ik), lambda_min, lambda_max ), lambda_min, lambda_max )
        c_k(t)    = mean_i h_ik
        if rho_step > 0 and (t + 1) % rho_step == 0 and c(t-1) exists:
            rho_k <- clip( gamma rho_k if c_k(t) > tao max(c_k(t-1), 0) else rho_k, rho_min, rho_max )

    (c(t-1) is recorded after every epoch; h and the lambda update use the multipliers before this epoch's
    update.) All multipliers and c(t-1) are buffers, so a resumed run continues exactly.

    Paper: arXiv 2211.15088 (CVPR 2023). Defaults from the authors' code: lambda in [1e-6, 1e6] (init 1e-6),
    rho in [1, 10] (init 1), rho_step 10, gamma 1.2, tao 0.9, normalised constraints; margin m = 10 (their
    README runs; the shipped config file says 20). Reading: the base loss is cross-entropy (the authors allow
    others); inputs are [N, K] classification logits (the segmentation variant is not exposed here).

    Args:
        num_classes: K.
        margin: m > 0 (default 10).
        lambd_min, lambd_max: multiplier bounds, 0 < lambd_min <= lambd_max (defaults 1e-6, 1e6).
        rho_min, rho_max: penalty-weight bounds, 0 < rho_min <= rho_max (defaults 1, 10).
        rho_step: update rho every this many epochs; 0 never (default 10).
        gamma: rho growth factor >= 1 (default 1.2).
        tao: required constraint decrease factor in [0, 1] (default 0.9).
        normalize: divide h by m (default true).
        reduction: "mean" (default), "sum" or "none".

    Example:
        >>> loss = ClassAdaptiveLabelSmoothing(num_classes=3)
        >>> loss.on_epoch_end(0, val_logits=20 * torch.eye(3), val_labels=torch.arange(3))
        >>> bool((loss.lambd > 1e-6).all())  # distances 20 > m = 10 violate the constraints
        True
    """

    needs_validation: ClassVar[bool] = True
    paper: ClassVar[str] = "Liu, Rony, Galdran, Dolz, Ben Ayed; CVPR 2023, arXiv 2211.15088"

    def __init__(
        self,
        *,
        num_classes: int,
        margin: float = 10.0,
        lambd_min: float = 1e-6,
        lambd_max: float = 1e6,
        rho_min: float = 1.0,
        rho_max: float = 10.0,
        rho_step: int = 10,
        gamma: float = 1.2,
        tao: float = 0.9,
        normalize: bool = True,
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.margin = check_number(margin, "margin", low=0.0, low_inclusive=False)
        self.lambd_min = check_number(lambd_min, "lambd_min", low=0.0, low_inclusive=False)
        self.lambd_max = check_number(lambd_max, "lambd_max", low=self.lambd_min)
        self.rho_min = check_number(rho_min, "rho_min", low=0.0, low_inclusive=False)
        self.rho_max = check_number(rho_max, "rho_max", low=self.rho_min)
        self.rho_step = check_positive_int(rho_step, "rho_step", minimum=0)
        self.gamma = check_number(gamma, "gamma", low=1.0)
        self.tao = check_number(tao, "tao", low=0.0, high=1.0)
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize: expected True or False, got {normalize!r}")
        self.normalize = normalize
        k = self.num_classes
        self.register_buffer("lambd", torch.full((k,), self.lambd_min, dtype=torch.float64))
        self.register_buffer("rho", torch.full((k,), self.rho_min, dtype=torch.float64))
        self.register_buffer("prev_constraints", torch.zeros(k, dtype=torch.float64))
        self.register_buffer("has_prev", torch.zeros((), dtype=torch.bool))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of a batch: ``logits`` [n, K], ``labels`` [n]."""
        labels = check_logits_labels(logits, labels, self.num_classes)
        return cals_loss(
            logits, labels, self.lambd, self.rho, margin=self.margin, normalize=self.normalize,
            reduction=self.reduction,
        )

    @torch.no_grad()
    def on_epoch_end(
        self, epoch: int, *, val_logits: torch.Tensor | None = None, val_labels: torch.Tensor | None = None
    ) -> None:
        """Update lambda (every epoch) and rho (every ``rho_step`` epochs) from validation logits [N, K]."""
        super().on_epoch_end(epoch)
        if val_logits is None:
            raise ValueError("val_logits: cals updates its multipliers from validation logits")
        check_logits(val_logits, self.num_outputs)
        h = cals_constraints(val_logits.to(self.lambd.device, torch.float64), self.margin, normalize=self.normalize)
        grad_p = torch.relu(self.lambd + self.rho * h).clamp(self.lambd_min, self.lambd_max)
        new_lambd = grad_p.mean(dim=0).clamp(self.lambd_min, self.lambd_max)
        constraints = h.mean(dim=0)
        if self.rho_step > 0:
            if (int(epoch) + 1) % self.rho_step == 0 and bool(self.has_prev):
                grow = constraints > self.tao * self.prev_constraints.clamp(min=0)
                self.rho.copy_(torch.where(grow, self.gamma * self.rho, self.rho).clamp(self.rho_min, self.rho_max))
            self.prev_constraints.copy_(constraints)
            self.has_prev.fill_(True)
        self.lambd.copy_(new_lambd)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, margin={self.margin}, lambd=[{self.lambd_min:g}, {self.lambd_max:g}], "
            f"rho=[{self.rho_min:g}, {self.rho_max:g}], rho_step={self.rho_step}, gamma={self.gamma}, tao={self.tao}"
        )


#: The former class name, kept for existing code.
CALSLoss = ClassAdaptiveLabelSmoothing
