"""Selective prediction: the risk-coverage curve, risk at coverage, AURC and E-AURC.

A selective classifier keeps the samples whose confidence score ``g_i`` is largest (the max probability,
or ``-p_unknown`` for an abstention model) and abstains on the rest. Sort the ``N`` samples by decreasing
``g``; with ``e_i = 1 - correct_i``, the risk at coverage ``j / N`` is the error rate of the ``j`` kept samples,

    risk_j = (1/j) sum_{r <= j} e_(r),        AURC = (1/N) sum_{j=1}^{N} risk_j

(Geifman & El-Yaniv 2017, arXiv 1705.08500; Geifman et al. 2019, arXiv 1805.08206). E-AURC subtracts the
AURC of a perfect ranking with the same errors (all ``E`` errors last): ``AURC* = (1/N) sum_j max(0, j - (N - E)) / j``.

Readings (the papers are silent):

- Ties in ``g``: the kept set within a group of tied scores is a uniformly random subset, and
  ``risk_j`` is its expectation: inside a tie group starting after ``s`` samples with ``m`` members and
  ``E_g`` errors, ``sum_{r <= j} e_(r) = E_{<g} + E_g (j - s) / m``. This makes every value invariant to the
  order of the samples (a stable sort alone would not be).
- ``AURC*`` is the exact finite sum above; Geifman et al. use its continuous limit
  ``r + (1 - r) ln(1 - r)`` (``r = E / N``), which differs by O(log N / N).
- Risk at coverage ``c``: the risk of the ``ceil(c N)`` (at least 1) most confident samples.

Example:
    >>> import torch
    >>> round(float(aurc(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([1, 1, 0]))), 4)  # risks 0, 0, 1/3
    0.1111
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from caltrain.metrics.validation import prepare_scores
from caltrain.utils.checks import as_tensor

__all__ = [
    "COVERAGES",
    "aurc",
    "aurc_from_sorted",
    "eaurc",
    "optimal_aurc",
    "risk_at_coverage",
    "risk_coverage_curve",
]

#: Coverages at which the Socrates paper reports the selective risk (docs/methods.md#socrates-loss).
COVERAGES = (1.0, 0.99, 0.98, 0.97, 0.95, 0.90, 0.85, 0.80, 0.75, 0.70, 0.60, 0.50, 0.40, 0.30, 0.20, 0.10)


def aurc_from_sorted(scores_desc: torch.Tensor, errors: torch.Tensor) -> torch.Tensor:
    """Expected risk curve ``risk_j`` ``[N]`` of scores sorted decreasingly and their errors (float64)."""
    n = scores_desc.shape[-1]
    e = errors.to(torch.float64)
    cum = e.cumsum(-1)
    new = torch.ones_like(scores_desc, dtype=torch.bool)
    new[..., 1:] = scores_desc[..., 1:] != scores_desc[..., :-1]
    end = torch.ones_like(new)
    end[..., :-1] = new[..., 1:]
    pos = torch.arange(n, device=scores_desc.device).expand_as(scores_desc)
    # start / end position of the tie group of every sample, by running max/min of group boundaries
    start_pos = torch.where(new, pos, torch.zeros_like(pos)).cummax(-1).values
    end_pos = torch.where(end, pos, torch.full_like(pos, n - 1)).flip(-1).cummin(-1).values.flip(-1)
    cum_before = torch.where(start_pos > 0, cum.gather(-1, (start_pos - 1).clamp(min=0)), torch.zeros_like(cum))
    group_err = cum.gather(-1, end_pos) - cum_before
    size = (end_pos - start_pos + 1).to(torch.float64)
    j = (pos + 1).to(torch.float64)
    expected = cum_before + group_err * (pos - start_pos + 1).to(torch.float64) / size
    return expected / j


def risk_coverage_curve(
    confidence: Any, correct: Any, *, validate_args: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(coverage [N], risk [N])`` float64: coverage ``j / N`` and the (tie-averaged) risk of the top ``j``."""
    g, ok = prepare_scores(confidence, correct, validate_args=validate_args)
    order = torch.argsort(g, descending=True, stable=True)
    risk = aurc_from_sorted(g[order], ~ok[order])
    n = g.shape[0]
    coverage = torch.arange(1, n + 1, dtype=torch.float64, device=g.device) / n
    return coverage, risk


def aurc(confidence: Any, correct: Any, *, validate_args: bool = True) -> torch.Tensor:
    """Area under the risk-coverage curve, float64 scalar (module docstring).

    Args:
        confidence: ``[N]`` scores, larger = kept first (max probability, or ``-p_unknown``).
        correct: ``[N]`` booleans or 0/1.
    """
    return risk_coverage_curve(confidence, correct, validate_args=validate_args)[1].mean()


def optimal_aurc(n: int, n_errors: torch.Tensor | int, *, device: Any = None) -> torch.Tensor:
    """AURC of a perfect ranking of ``n`` samples with ``n_errors`` errors (exact finite sum), float64."""
    j = torch.arange(1, n + 1, dtype=torch.float64, device=device)
    e = torch.as_tensor(n_errors, dtype=torch.float64, device=device)
    return ((j - (n - e)).clamp(min=0) / j).mean()


def eaurc(confidence: Any, correct: Any, *, validate_args: bool = True) -> torch.Tensor:
    """Excess AURC: ``AURC - AURC*`` (>= 0), float64 scalar (module docstring)."""
    g, ok = prepare_scores(confidence, correct, validate_args=validate_args)
    return aurc(g, ok, validate_args=False) - optimal_aurc(g.shape[0], (~ok).sum(), device=g.device)


def risk_at_coverage(
    confidence: Any, correct: Any, coverage: float | Sequence[float] = COVERAGES, *, validate_args: bool = True
) -> torch.Tensor:
    """Risk of the ``ceil(c N)`` most confident samples for each coverage ``c in (0, 1]``, float64 ``[C]``."""
    cov = as_tensor(coverage, "coverage", dtype=torch.float64).reshape(-1)
    if cov.numel() == 0 or bool(((cov <= 0) | (cov > 1) | ~torch.isfinite(cov)).any()):
        raise ValueError(f"coverage: expected values in (0, 1], got {cov.tolist()}")
    _, risk = risk_coverage_curve(confidence, correct, validate_args=validate_args)
    n = risk.shape[0]
    k = torch.ceil(cov.to(risk.device) * n - 1e-9).long().clamp(min=1, max=n)
    return risk[k - 1]
