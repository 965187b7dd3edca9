"""Proper scoring rules and accuracy: negative log-likelihood, Brier score, accuracy, top-k accuracy.

With probabilities ``p_i in Delta^{K-1}`` and labels ``y_i``, over ``N`` samples (float64):

    NLL      = -(1/N) sum_i log p_{i, y_i}
    Brier    =  (1/N) sum_i sum_k (p_ik - 1[y_i = k])^2     (sum over classes, range [0, 2]; Brier 1950)
    accuracy =  (1/N) sum_i 1[argmax_k p_ik = y_i]          (ties: lowest index)
    top-k    =  (1/N) sum_i 1[y_i among the k largest p_i.]

Reading (NLL): ``p_y = 0`` would give an infinite NLL; probabilities are clamped below at the smallest
positive normal float64 (2.2e-308), so the largest per-sample NLL is about 708. With ``from_logits=True``
the softmax is taken in float64, so the clamp only matters for logit gaps beyond ~700.

Brier is computed as ``sum_k p_ik^2 - 2 p_{i,y_i} + 1`` (one pass, no one-hot matrix).

Example:
    >>> import torch
    >>> p = torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64)
    >>> y = torch.tensor([0, 0])
    >>> round(float(brier_score(p, y)), 4), round(float(accuracy(p, y)), 2)
    (0.26, 1.0)
"""

from __future__ import annotations

from typing import Any

import torch

from caltrain.metrics.validation import prepare
from caltrain.utils.checks import check_positive_int

__all__ = [
    "accuracy",
    "brier_per_sample",
    "brier_score",
    "negative_log_likelihood",
    "nll_per_sample",
    "top_k_accuracy",
]

_TINY = torch.finfo(torch.float64).tiny


def nll_per_sample(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``-log p_{i, y_i}`` ``[N]`` float64 of prepared ``probs [N, K]``, ``labels [N]``."""
    p_y = probs.gather(1, labels[:, None]).squeeze(1).to(torch.float64)
    return -p_y.clamp(min=_TINY).log()


def brier_per_sample(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``sum_k (p_ik - 1[y_i = k])^2`` ``[N]`` float64 of prepared ``probs [N, K]``, ``labels [N]``."""
    p = probs.to(torch.float64)
    return p.square().sum(1) - 2 * p.gather(1, labels[:, None]).squeeze(1) + 1


def negative_log_likelihood(
    probs: Any, labels: Any, *, from_logits: bool = False, ignore_index: int | None = None, validate_args: bool = True
) -> torch.Tensor:
    """Mean negative log-likelihood of ``probs [N, K(, *spatial)]``, float64 scalar (module docstring)."""
    p, y = prepare(probs, labels, from_logits=from_logits, ignore_index=ignore_index, validate_args=validate_args)
    return nll_per_sample(p, y).mean()


def brier_score(
    probs: Any, labels: Any, *, from_logits: bool = False, ignore_index: int | None = None, validate_args: bool = True
) -> torch.Tensor:
    """Mean multiclass Brier score (sum over classes, in [0, 2]), float64 scalar (module docstring)."""
    p, y = prepare(probs, labels, from_logits=from_logits, ignore_index=ignore_index, validate_args=validate_args)
    return brier_per_sample(p, y).mean()


def accuracy(
    probs: Any, labels: Any, *, from_logits: bool = False, ignore_index: int | None = None, validate_args: bool = True
) -> torch.Tensor:
    """Fraction of samples whose argmax equals the label, float64 scalar."""
    p, y = prepare(probs, labels, from_logits=from_logits, ignore_index=ignore_index, validate_args=validate_args)
    return (p.argmax(1) == y).to(torch.float64).mean()


def top_k_accuracy(
    probs: Any,
    labels: Any,
    k: int = 5,
    *,
    from_logits: bool = False,
    ignore_index: int | None = None,
    validate_args: bool = True,
) -> torch.Tensor:
    """Fraction of samples whose label is among the ``k`` largest probabilities (``1 <= k <= K``)."""
    p, y = prepare(probs, labels, from_logits=from_logits, ignore_index=ignore_index, validate_args=validate_args)
    k = check_positive_int(k, "k")
    if k > p.shape[1]:
        raise ValueError(f"k: expected an integer in [1, {p.shape[1]}] (the number of classes), got {k}")
    top = p.topk(k, dim=1).indices
    return (top == y[:, None]).any(1).to(torch.float64).mean()
