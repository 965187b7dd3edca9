"""Reliability-curve data: per-bin mean confidence, accuracy and count, for reliability diagrams.

With the statistics of :mod:`caltrain.metrics.binning`, ``confidence_b = S_b / n_b`` and
``accuracy_b = A_b / n_b`` (NaN for an empty bin), top-label as in :func:`expected_calibration_error`
(Guo et al. 2017, arXiv 1706.04599). The report module draws diagrams from :class:`ReliabilityCurve`.

Example:
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]], dtype=torch.float64)
    >>> curve = reliability_curve(p, torch.tensor([0, 1, 1]), n_bins=2)
    >>> curve.count.tolist(), curve.accuracy.tolist()
    ([0.0, 3.0], [nan, 0.6666666666666666])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from caltrain.metrics.binning import BINNINGS, BinStats, binned_statistics
from caltrain.metrics.ece import top_label
from caltrain.metrics.validation import prepare
from caltrain.utils.checks import check_choice, check_n_bins

__all__ = ["ReliabilityCurve", "reliability_curve"]


@dataclass(frozen=True)
class ReliabilityCurve:
    """Float64 tensors describing ``B`` bins.

    Attributes:
        edges: ``[B + 1]`` bin edges (``j / B`` for uniform bins; data-dependent for quantile bins).
        confidence: ``[B]`` mean confidence per bin (NaN for an empty bin).
        accuracy: ``[B]`` mean correctness per bin (NaN for an empty bin).
        count: ``[B]`` number of samples per bin.
    """

    edges: torch.Tensor
    confidence: torch.Tensor
    accuracy: torch.Tensor
    count: torch.Tensor

    @classmethod
    def from_stats(cls, stats: BinStats) -> "ReliabilityCurve":
        """Build from 1-D :class:`BinStats` (which must carry ``edges``)."""
        if stats.edges is None:
            raise ValueError("stats: expected BinStats with edges to build a reliability curve")
        nan = torch.full_like(stats.count, float("nan"))
        filled = stats.count > 0
        safe = stats.count.clamp(min=1)
        return cls(
            edges=stats.edges.to(torch.float64),
            confidence=torch.where(filled, stats.conf_sum / safe, nan),
            accuracy=torch.where(filled, stats.acc_sum / safe, nan),
            count=stats.count,
        )

    @property
    def gap(self) -> torch.Tensor:
        """``[B]`` ``accuracy - confidence`` (NaN for empty bins)."""
        return self.accuracy - self.confidence


def reliability_curve(
    probs: Any,
    labels: Any,
    n_bins: int = 15,
    binning: str = "uniform",
    *,
    from_logits: bool = False,
    ignore_index: int | None = None,
    validate_args: bool = True,
) -> ReliabilityCurve:
    """Top-label reliability curve of ``probs [N, K(, *spatial)]`` and ``labels`` (module docstring)."""
    n_bins = check_n_bins(n_bins)
    check_choice(binning, "binning", BINNINGS)
    p, y = prepare(probs, labels, from_logits=from_logits, ignore_index=ignore_index, validate_args=validate_args)
    conf, correct = top_label(p, y)
    return ReliabilityCurve.from_stats(binned_statistics(conf, correct, n_bins, binning))
