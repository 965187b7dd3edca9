"""Logit margins and their exponential tail functional (CalMO, Morosini et al., arXiv 2604.20614).

The margin of a sample is how far its true-class logit is ahead of the best competing logit,

    m(x, y) = z_y - max_{j != y} z_j,

positive exactly when the sample is classified correctly (ties count as wrong). The tail functional

    Q = (1/N) sum_i exp(-m_i)

controls both calibration and curvature along training (docs/methods.md#calmo-and-the-calibration-curvature-link):
for K classes,
ECE <= (K-1) Q always, and Q/K <= ECE <= (K-1) Q with ECE = mean(1 - p_y) when every margin is positive.

The margin itself has one implementation, the differentiable one CalMO trains with (``caltrain.losses``, the lower
layer); :func:`margins` adds the input checks.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from caltrain.losses._tensors import logit_margins
from caltrain.utils.checks import as_tensor, check_finite, check_labels, check_ndim, check_nonempty, check_same_length

__all__ = ["MarginTail", "margin_tail", "margin_tail_from_margins", "margins"]


class MarginTail(NamedTuple):
    """The tail functional ``q`` = Q = mean exp(-m) and its logarithm ``log_q`` (float64 scalars).

    ``log_q`` stays finite when ``q`` overflows (margins below about -709), so log it along training.
    """

    q: torch.Tensor
    log_q: torch.Tensor


def _validated_logits_and_labels(logits, labels) -> tuple[torch.Tensor, torch.Tensor]:
    """Convert and check ``logits`` [N, K] (finite floats, K >= 2) and ``labels`` [N] (integers in [0, K))."""
    logits = as_tensor(logits, "logits")
    labels = as_tensor(labels, "labels")
    check_ndim(logits, "logits", 2, "[N, K] (one row of K >= 2 class logits per sample)")
    check_ndim(labels, "labels", 1, "[N] (one class index per sample)")
    if not logits.is_floating_point():
        raise TypeError(f"logits: expected a floating-point tensor, got dtype {logits.dtype}")
    if logits.shape[1] < 2:
        raise ValueError(f"logits: expected K >= 2 classes, got shape {tuple(logits.shape)}")
    check_nonempty(logits, "logits")
    check_same_length(logits, labels, "logits", "labels")
    check_finite(logits, "logits")
    check_labels(labels, logits.shape[1], "labels")
    return logits, labels.to(device=logits.device, dtype=torch.long)


def margins(logits, labels) -> torch.Tensor:
    """Per-sample logit margins m_i = z_{i,y_i} - max_{j != y_i} z_{i,j}.

    Args:
        logits: z, shape [N, K], floating point (any float dtype; the result keeps it). Logits, not
            probabilities: the margin is a difference of logits.
        labels: y, shape [N], integer class indices in [0, K).

    Returns:
        m, shape [N], same dtype and device as ``logits``. m_i > 0 iff sample i is classified correctly
        (a tie with another class gives m_i = 0).

    Raises:
        ValueError / TypeError: wrong shapes or dtypes, K < 2, NaN/inf logits, labels out of range.

    Example:
        >>> margins(torch.tensor([[2.0, 0.5, 1.0], [0.0, 3.0, 1.0]]), torch.tensor([0, 0]))
        tensor([ 1., -3.])
    """
    logits, labels = _validated_logits_and_labels(logits, labels)
    return logit_margins(logits, labels)


def margin_tail_from_margins(m) -> MarginTail:
    """The tail functional of given margins: log Q = logsumexp(-m) - log N, computed in float64.

    Args:
        m: margins, shape [N] (any float dtype; converted to float64).

    Returns:
        :class:`MarginTail` ``(q, log_q)``, float64 scalars on ``m``'s device.

    Example:
        >>> margin_tail_from_margins(torch.tensor([0.0, math.log(3.0)])).q
        tensor(0.6667, dtype=torch.float64)
    """
    m = as_tensor(m, "margins")
    check_ndim(m, "margins", 1, "[N] (one margin per sample)")
    check_nonempty(m, "margins")
    check_finite(m, "margins")
    log_q = torch.logsumexp(-m.to(torch.float64), dim=0) - math.log(m.shape[0])
    return MarginTail(q=log_q.exp(), log_q=log_q)


def margin_tail(logits, labels) -> MarginTail:
    """The margin tail functional Q = (1/N) sum_i exp(-m_i) of a set of logits, in log space.

    Q is computed as exp(log Q) with log Q = logsumexp_i(-m_i) - log N on float64 margins, so neither
    large positive margins (exp underflow) nor large negative ones (overflow) lose the sum: ``log_q`` is
    exact where a float32 ``exp(-m).mean()`` returns 0 or inf.

    Args:
        logits: z, shape [N, K], floating point (converted to float64 before the margins are taken).
        labels: y, shape [N], integer class indices in [0, K).

    Returns:
        :class:`MarginTail` ``(q, log_q)``, float64 scalars.

    Paper: CalMO, "Too Sharp, Too Sure" (Morosini et al., arXiv 2604.20614);
    docs/methods.md#calmo-and-the-calibration-curvature-link.

    Example:
        >>> tail = margin_tail(torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]))
        >>> round(float(tail.q), 4)  # (exp(-2) + exp(-1)) / 2
        0.2516
    """
    logits, labels = _validated_logits_and_labels(logits, labels)
    return margin_tail_from_margins(logit_margins(logits.to(torch.float64), labels))
