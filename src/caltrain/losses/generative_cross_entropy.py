"""``gence``: generative cross-entropy, −log(p(y|x)/p̂(y)), CE plus a class-level confidence regulariser.

Notation: z = logits [N, K] (N samples, K classes), y = labels [N] in [0, K), p = softmax(z) [N, K],
CE_i = −log p_{i,y_i}, n = N the batch size, p̂ an estimate of the class marginal p(y), λ its weight; the loss
is reduced by ``reduction`` ("mean" by default, "sum", or "none" for one value per sample, shape [N]).
Half-precision logits are computed in float32.

The pure functions :func:`gence` (batch estimate or known prior) and :func:`gence_ema` (EMA across batches)
state the loss, defaults and readings; :class:`GenerativeCrossEntropy` is the module over them (it owns the EMA
buffers). Paper: Zhan, Zhou, Shen 2026, arXiv 2604.06689. Reading: its text and code are not public; this is
a reconstruction from the abstract (docs/methods.md#gence-and-adaptive-temperature-scaling-ats).

Example:
    >>> import torch
    >>> z, y = torch.tensor([[2.0, 0.0, -1.0], [0.5, 1.5, 0.0]]), torch.tensor([0, 1])
    >>> gence(z, y, reduction="none").shape
    torch.Size([2])
    >>> bool(torch.isclose(GenerativeCrossEntropy(num_classes=3)(z, y), gence(z, y)))
    True
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from caltrain.losses._tensors import check_bool, check_num_outputs, gather_true, nonneg, prepare
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = ["GenCE", "GenerativeCrossEntropy", "batch_log_prior", "gence", "gence_ema"]


def gence(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    weight: float = 1.0,
    exclude_self: bool = False,
    class_prior: Sequence[float] | torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Generative cross-entropy, GenCE (Zhan, Zhou, Shen; arXiv 2604.06689), the reading of docs/methods.md 1.5.

    Maximise p(x|y) = p(y|x)·p(x)/p(y), with p(y) estimated on the batch as p̄_B(y) = (1/n) Σ_{j∈B} p_{j,y}:

        L_i = −log p_{i,y_i} + λ·log p̄_B(y_i)      (λ = 1: −log(p_{i,y_i} / p̄_B(y_i)))

    log p̄_B(c) = logsumexp_j log p_{j,c} − log n (log space, no underflow); the gradient flows through p̄_B.
    The loss is invariant to permuting the batch and is 0 for a batch of one (λ = 1).

    Args:
        weight: λ ≥ 0 on the class-level term; default 1 (the paper's form). λ = 0 is CE.
        exclude_self: estimate p̄ for sample i without it, (1/(n−1)) Σ_{j≠i} p_{j,y_i} (a leave-one-out reading;
            O(n²)); a batch of one falls back to including itself. Default False (the sample is in its own
            estimate, docs/methods.md's default).
        class_prior: a known class prior π [K] (long-tailed data) used instead of the batch estimate:
            L_i = CE_i + λ·log π(y_i) (constant in the logits). Default None (batch estimate).
            :func:`gence_ema` (and :class:`GenerativeCrossEntropy` with ``momentum``) is the EMA-across-batches option.

    The paper's text and code are not public: this is a reconstruction from its abstract (see docs/methods.md 1.5).
    """
    z, y = prepare(logits, labels, reduction)
    lam = nonneg(weight, "weight")
    check_bool(exclude_self, "exclude_self")
    logp = F.log_softmax(z, dim=1)
    logp_y = gather_true(logp, y)
    if class_prior is not None:
        log_prior = _log_class_prior(class_prior, z.shape[1], z).gather(0, y)
    else:
        log_prior = batch_log_prior(logp, y, exclude_self=exclude_self)
    return reduce_loss(-logp_y + lam * log_prior, reduction)


def batch_log_prior(logp: torch.Tensor, labels: torch.Tensor, *, exclude_self: bool = False) -> torch.Tensor:
    """log p̄_B(y_i) [N] from log-probabilities ``logp`` [N, K] (leave-one-out if ``exclude_self`` and N > 1)."""
    n = logp.shape[0]
    if exclude_self and n > 1:
        cols = logp[:, labels]  # cols[j, i] = log p_{j, y_i}
        eye = torch.eye(n, dtype=torch.bool, device=logp.device)
        return torch.logsumexp(cols.masked_fill(eye, float("-inf")), dim=0) - math.log(n - 1)
    return (torch.logsumexp(logp, dim=0) - math.log(n)).gather(0, labels)


def _log_class_prior(prior: Sequence[float] | torch.Tensor, num_classes: int, like: torch.Tensor) -> torch.Tensor:
    """log π [K] from a prior given as a sequence or tensor, normalised to sum to 1 either way.

    A sequence is validated on the host (positive values); a tensor is not (no host synchronisation): its
    entries must be positive.
    """
    if isinstance(prior, torch.Tensor):
        pi = prior.to(device=like.device, dtype=like.dtype)
        pi = pi / pi.sum()
    else:
        values = [check_number(v, "class_prior", low=0.0, low_inclusive=False) for v in prior]
        total = sum(values)
        pi = torch.tensor([v / total for v in values], dtype=like.dtype, device=like.device)
    if pi.shape != (num_classes,):
        raise ValueError(
            f"class_prior: expected {num_classes} positive values (one per class), got shape {tuple(pi.shape)}"
        )
    return torch.log(pi)


def gence_ema(
    logits: torch.Tensor, labels: torch.Tensor, prior_ema: torch.Tensor, ema_steps: torch.Tensor,
    *,
    weight: float = 1.0,
    momentum: float = 0.9,
    update: bool = True,
    reduction: str = "mean",
) -> torch.Tensor:
    """GenCE with the class marginal estimated by an exponential moving average across batches.

    With A_t = ``prior_ema`` [K] the EMA after t = ``ema_steps`` batches (A_0 = 0), m the momentum and
    p̄_B(c) = (1/n) Σ_j p_{j,c} the batch estimate (n = N the batch size),

        p̂   = (m·A_t + (1 − m)·p̄_B) / (1 − m^{t+1})        (Adam-style bias correction: batch 0 uses p̄_B),
        L_i = −log p_{i,y_i} + λ·log p̂(y_i),

    computed in log space (``logaddexp``); the gradient flows through the current batch's share. When
    ``update``, A ← m·A + (1 − m)·p̄_B (detached, float64) and t ← t + 1, in place.

    Args:
        logits: z, [N, K]; labels: y, [N].
        prior_ema: A_t, [K] float64 buffer (written in place when ``update``).
        ema_steps: t, a long scalar buffer (written in place when ``update``).
        weight: λ ≥ 0 (default 1); momentum: m ∈ (0, 1) (default 0.9; not validated here:
            :class:`GenerativeCrossEntropy` does).
        update: advance A and t (training mode) or only read them (default True).
        reduction: "mean" (default), "sum" or "none" ([N]).

    Example:
        >>> ema, steps = torch.zeros(2, dtype=torch.float64), torch.zeros((), dtype=torch.long)
        >>> z, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1])
        >>> bool(torch.isclose(gence_ema(z, y, ema, steps), gence(z, y))), int(steps)  # first batch: p̂ = p̄_B
        (True, 1)
    """
    # Shape/dtype checks and the float32 upcast are those of the batch form.
    z, y = prepare(logits, labels, reduction)
    if prior_ema.shape != (z.shape[1],):
        raise ValueError(
            f"logits: expected shape [N, {prior_ema.shape[0] if prior_ema.dim() == 1 else '?'}] (one column per "
            f"entry of prior_ema, shape {tuple(prior_ema.shape)}), got shape {tuple(z.shape)}"
        )
    m = momentum
    logp = F.log_softmax(z, dim=1)
    log_batch = torch.logsumexp(logp, dim=0) - math.log(z.shape[0])  # log p̄_B, [K]
    ema = prior_ema.to(z.dtype)
    log_old = torch.log(m * ema)  # -inf before the first update; logaddexp handles it
    correction = torch.log1p(-torch.pow(m, (ema_steps + 1).to(torch.float64))).to(z.dtype)
    log_est = torch.logaddexp(log_old, math.log1p(-m) + log_batch) - correction
    if update:
        with torch.no_grad():
            prior_ema.mul_(m).add_((1.0 - m) * log_batch.detach().exp().to(torch.float64))
            ema_steps.add_(1)
    per = -logp.gather(1, y[:, None])[:, 0] + weight * log_est.gather(0, y)
    return reduce_loss(per, reduction)


@register("gence")
class GenerativeCrossEntropy(LogitObjective):
    """GenCE: L_i = −log p_{i,y_i} + λ·log p̂(y_i), p̂ an estimate of the class marginal p(y)
    (:func:`gence`; the reading of docs/methods.md 1.5, the paper's code is not public).

    The estimate p̂ is, by option:

    - the batch mean p̄_B(y) = (1/n) Σ_j p_{j,y} (default; gradient flows through it), optionally leaving sample
      i out of its own estimate (``exclude_self``);
    - an exponential moving average across batches (``momentum`` m > 0): with A_t the EMA after t batches
      (A_0 = 0), p̂ = (m·A_t + (1 − m)·p̄_B) / (1 − m^{t+1}) (Adam-style bias correction, so the first batch uses
      p̄_B itself); the gradient flows through the current batch's share; A_{t+1} = m·A_t + (1 − m)·p̄_B (detached),
      advanced only in training mode; A and t are buffers (resume-exact). ``exclude_self`` does not apply;
    - a known class prior π (``class_prior``, e.g. the long-tailed training distribution): p̂ = π (a constant).

    Args:
        num_classes: K.
        weight: λ ≥ 0; default 1. 0 is CE.
        exclude_self: leave-one-out batch estimate; default False.
        momentum: m ∈ [0, 1); 0 (default) uses the batch estimate alone.
        class_prior: K positive numbers (normalised here), or None (default).
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "Zhan, Zhou, Shen 2026, arXiv 2604.06689 (reconstruction: text and code not public)"
    function = staticmethod(gence)
    hyperparameter_names = ("weight", "exclude_self", "class_prior")

    def __init__(
        self,
        *,
        num_classes: int,
        weight: float = 1.0,
        exclude_self: bool = False,
        momentum: float = 0.0,
        class_prior: Sequence[float] | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.weight = check_number(weight, "weight", low=0.0)
        self.exclude_self = check_bool(exclude_self, "exclude_self")
        self.momentum = check_number(momentum, "momentum", low=0.0, high=1.0, high_inclusive=False)
        if class_prior is not None:
            values = [check_number(v, "class_prior", low=0.0, low_inclusive=False) for v in class_prior]
            if len(values) != self.num_classes:
                raise ValueError(
                    f"class_prior: expected {self.num_classes} positive values (one per class), got {len(values)}"
                )
            if self.momentum > 0:
                raise ValueError("momentum: must be 0 when class_prior is given (the prior replaces the estimate)")
            total = sum(values)
            class_prior = [v / total for v in values]
        self.class_prior = class_prior
        self.register_buffer("prior_ema", torch.zeros(self.num_classes, dtype=torch.float64))
        self.register_buffer("ema_steps", torch.zeros((), dtype=torch.long))

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The loss of ``logits`` [N, K] for ``labels`` [N]; with ``momentum`` > 0 it advances the EMA in training."""
        if self.momentum == 0.0:
            return super().forward(logits, labels)
        check_num_outputs(logits, self.num_outputs)
        return gence_ema(
            logits, labels, self.prior_ema, self.ema_steps, weight=self.weight, momentum=self.momentum,
            update=self.training, reduction=self.reduction,
        )

    def extra_repr(self) -> str:
        return super().extra_repr() + f", momentum={self.momentum!r}"


#: The former class name, kept for existing code.
GenCE = GenerativeCrossEntropy
