"""``gence``: generative cross-entropy, −log(p(y|x)/p̂(y)), CE plus a class-level confidence regulariser.

Notation: z = logits [N, K] (N samples, K classes), y = labels [N] in [0, K), p = softmax(z) [N, K],
CE_i = −log p_{i,y_i}, n = N the batch size, p̂ an estimate of the class marginal p(y), λ its weight; the loss
is reduced by ``reduction`` ("mean" by default, "sum", or "none" for one value per sample, shape [N]).
Half-precision logits are computed in float32.

The pure functions :func:`gence` (batch estimate) and :func:`gence_ema` (EMA across batches) state the loss,
defaults and readings; :class:`GenerativeCrossEntropy` is the module over them (it owns the EMA buffers). Paper:
Zhan, Zhou, Shen 2026, arXiv 2604.06689. Reading: its text and code are not public; this is a reconstruction
from the abstract (docs/methods.md#gence-and-adaptive-temperature-scaling-ats).

What the options do to the objective (checked numerically against exact expectations, tests/losses/test_gence.py):

- the default batch estimate (sample i in its own estimate) is a proper loss at every batch size: on a two-point
  problem with exact expectations over batches, its expected value is minimised by the true posterior;
- ``exclude_self=True`` is **not** proper: on the same problem (true P(class 0 | x) = 0.8 and 0.3) the minimiser runs
  off to (1, 0) at batch size 2 and is (0.844, 0.247) at batch size 6; it warns (:class:`ImproperLossWarning`);
- ``momentum`` m > 0 leaves only the current batch's share (1 - m) of the estimate differentiable, so the
  class-level term's gradient is about (1 - m) times the batch form's at steady state (:func:`gence_ema`);
- a known class prior (the former ``class_prior``) made the class-level term a constant: the gradient was exactly
  cross-entropy's, so the option was removed (:data:`CLASS_PRIOR_REMOVED`).

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
import warnings
from typing import Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import BeforeValidator

from caltrain.losses._tensors import check_bool, check_num_outputs, gather_true, nonneg, prepare
from caltrain.losses.base import LogitObjective, reduce_loss
from caltrain.losses.registry import register
from caltrain.utils.checks import check_number

__all__ = [
    "CLASS_PRIOR_REMOVED",
    "GenCE",
    "GenerativeCrossEntropy",
    "ImproperLossWarning",
    "batch_log_prior",
    "gence",
    "gence_ema",
]

#: Why ``class_prior`` was removed (the error an old configuration or call gets).
CLASS_PRIOR_REMOVED = (
    "class_prior: removed. With a known constant prior pi, the class-level term lambda * log pi(y) does not depend "
    "on the logits, so the loss had exactly cross-entropy's gradient: a 'GenCE with prior' run was a CE run. Use "
    "loss 'ce' for that, or 'gence' without class_prior (the batch estimate of p(y), optionally with momentum)"
)

#: What :func:`gence` and :class:`GenerativeCrossEntropy` warn with ``exclude_self=True``.
EXCLUDE_SELF_WARNING = (
    "gence: exclude_self=True is not a proper loss: its expected value is not minimised by the true posterior "
    "(two-point problem with true P(class 0 | x) = (0.8, 0.3): the minimiser runs off to (1, 0) at batch size 2 and "
    "is (0.844, 0.247) at batch size 6), so it rewards over-confidence; the default (exclude_self=False) is proper "
    "at every batch size"
)


class ImproperLossWarning(UserWarning):
    """An objective setting whose expected loss is not minimised by the true posterior."""


def _removed_class_prior(value: Any) -> None:
    if value is not None:
        raise ValueError(CLASS_PRIOR_REMOVED)
    return None


#: The annotation of the removed ``class_prior`` keyword: a configuration that sets it fails when it is built
#: (``caltrain.train.config`` checks option values against the annotations), naming the reason.
RemovedOption = Annotated[None, BeforeValidator(_removed_class_prior)]


def gence(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    weight: float = 1.0,
    exclude_self: bool = False,
    class_prior: RemovedOption = None,
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
            estimate, docs/methods.md's default). **Not proper** (module docstring: its expected loss is minimised
            by over-confident predictions, the more so the smaller the batch); warns :class:`ImproperLossWarning`.
        class_prior: removed; any value raises ``ValueError`` with the reason (:data:`CLASS_PRIOR_REMOVED`).

    :func:`gence_ema` (and :class:`GenerativeCrossEntropy` with ``momentum``) is the EMA-across-batches option.

    The paper's text and code are not public: this is a reconstruction from its abstract (see docs/methods.md 1.5).
    """
    if class_prior is not None:
        raise ValueError(CLASS_PRIOR_REMOVED)
    if check_bool(exclude_self, "exclude_self"):
        warnings.warn(EXCLUDE_SELF_WARNING, ImproperLossWarning, stacklevel=2)
    return _gence(logits, labels, weight=weight, exclude_self=exclude_self, reduction=reduction)


def _gence(
    logits: torch.Tensor, labels: torch.Tensor, *, weight: float, exclude_self: bool, reduction: str
) -> torch.Tensor:
    """:func:`gence` without its warning (the module warns once, when it is built)."""
    z, y = prepare(logits, labels, reduction)
    lam = nonneg(weight, "weight")
    check_bool(exclude_self, "exclude_self")
    logp = F.log_softmax(z, dim=1)
    logp_y = gather_true(logp, y)
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

    The momentum weakens the class-level term: only the share (1 − m)·p̄_B is differentiable, so

        ∂ log p̂(c) / ∂ p̄_B(c) = (1 − m) / ((1 − m^{t+1}) · p̂(c))     against 1 / p̄_B(c) for the batch form;

    at steady state (t large, p̂ ≈ p̄_B) the regulariser's gradient is about (1 − m) times the batch form's
    (measured 0.47 / 0.09 / 0.009 of it at m = 0.5 / 0.9 / 0.99 on random batches; exactly
    (1 − m) / (1 − m^{t+1}) when the same batch repeats, which a test checks), while its value keeps its full
    weight λ. So m = 0.9 is a tenfold weaker class-level term, not a smoother estimate of the same one;
    λ / (1 − m) restores the strength (our reading: the paper is silent).

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
      p̄_B itself); the gradient flows through the current batch's share only, which scales the class-level
      term's gradient by about (1 − m) at steady state (:func:`gence_ema`); A_{t+1} = m·A_t + (1 − m)·p̄_B
      (detached), advanced only in training mode; A and t are buffers (resume-exact).

    Args:
        num_classes: K.
        weight: λ ≥ 0; default 1. 0 is CE.
        exclude_self: leave-one-out batch estimate; default False. Not proper (module docstring): warns
            :class:`ImproperLossWarning`; with ``momentum`` > 0 it raises (the EMA has no leave-one-out form).
        momentum: m ∈ [0, 1); 0 (default) uses the batch estimate alone. The class-level gradient is about
            (1 − m) times the batch form's.
        class_prior: removed; any value raises ``ValueError`` with the reason (:data:`CLASS_PRIOR_REMOVED`), also
            when a configuration is built.
        reduction: "mean" (default), "sum" or "none" ([N]).
    """

    paper = "Zhan, Zhou, Shen 2026, arXiv 2604.06689 (reconstruction: text and code not public)"
    function = staticmethod(_gence)  # gence() less its per-call warning: __init__ warns once
    hyperparameter_names = ("weight", "exclude_self")

    def __init__(
        self,
        *,
        num_classes: int,
        weight: float = 1.0,
        exclude_self: bool = False,
        momentum: float = 0.0,
        class_prior: RemovedOption = None,
        reduction: str = "mean",
    ) -> None:
        if class_prior is not None:
            raise ValueError(CLASS_PRIOR_REMOVED)
        super().__init__(num_classes=num_classes, reduction=reduction)
        self.weight = check_number(weight, "weight", low=0.0)
        self.exclude_self = check_bool(exclude_self, "exclude_self")
        self.momentum = check_number(momentum, "momentum", low=0.0, high=1.0, high_inclusive=False)
        if self.exclude_self and self.momentum > 0:
            raise ValueError(
                "exclude_self: cannot be combined with momentum > 0 (the EMA estimate of p(y) has no leave-one-out "
                f"form; it used to be ignored silently), got exclude_self=True, momentum={self.momentum!r}"
            )
        if self.exclude_self:
            warnings.warn(EXCLUDE_SELF_WARNING, ImproperLossWarning, stacklevel=2)
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
