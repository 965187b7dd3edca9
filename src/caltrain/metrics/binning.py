"""Binning core: the per-bin sufficient statistics every binned calibration metric derives from.

For scores ``s_i`` (a confidence in [0, 1]), outcomes ``o_i`` (1 if correct / positive) and a bin
assignment ``b(i)``, the statistics are, per bin ``b``,

    n_b = #{i : b(i) = b},   S_b = sum_{i in b} s_i,   A_b = sum_{i in b} o_i,

accumulated in **float64** with ``torch.bincount`` (no Python loop over samples or bins). Every binned metric
is a function of ``(n, S, A)``: conf_b = S_b / n_b, acc_b = A_b / n_b.

Bin conventions:

- ``"uniform"`` (Guo et al. 2017, arXiv 1706.04599): ``B`` equal-width bins ``(lo, hi]`` with edges
  ``e_j = j / B`` (computed as a correctly rounded float64 division); a score exactly on an edge goes to the
  lower bin, confidence 0.0 goes to the first bin and 1.0 to the last. Comparisons use the value as stored
  upcast to float64 (a float32 ``0.3`` is ``0.30000001...`` and lies above the edge ``3/10``).
- ``"quantile"`` (equal mass, AdaECE, Nguyen & O'Connor 2015 / Mukhoti et al. 2020, arXiv 2002.09437):
  samples are sorted by score (stable sort) and the sample of rank ``r`` (0-based) goes to bin
  ``floor(r * B / N)``: bin sizes differ by at most one and no sample is dropped (the widely copied
  reference drops the lowest-confidence sample of every bin; not here). Tied scores that straddle two bins
  share their outcomes in proportion (:func:`sorted_quantile_statistics`). With ``N < B`` some bins are empty.

Example:
    >>> import torch
    >>> s = torch.tensor([0.0, 0.2, 0.5, 1.0], dtype=torch.float64)
    >>> uniform_bin_index(s, 5).tolist()  # 0.2 is on an edge: lower bin
    [0, 0, 2, 4]
    >>> stats = bin_statistics(s, torch.tensor([0, 1, 1, 1]), uniform_bin_index(s, 5), 5)
    >>> stats.count.tolist(), stats.acc_sum.tolist()
    ([2.0, 0.0, 1.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0, 1.0])
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from caltrain.utils.checks import check_choice, check_n_bins

__all__ = [
    "BINNINGS",
    "BinStats",
    "bin_statistics",
    "binned_statistics",
    "quantile_bin_index",
    "sorted_quantile_statistics",
    "tie_mean",
    "uniform_bin_index",
    "uniform_edges",
]

#: The binning schemes every binned metric accepts.
BINNINGS = ("uniform", "quantile")


@dataclass(frozen=True)
class BinStats:
    """Per-bin sums, float64, shaped ``[..., B]`` (leading dims: classes for classwise, resamples for bootstrap).

    Attributes:
        count: ``n_b``, the number of samples in bin ``b``.
        conf_sum: ``S_b``, the sum of the scores (confidences) in bin ``b``.
        acc_sum: ``A_b``, the sum of the outcomes (1 = correct / positive) in bin ``b``.
        edges: ``[B + 1]`` bin edges (``None`` when not defined, e.g. batched quantile bins).
    """

    count: torch.Tensor
    conf_sum: torch.Tensor
    acc_sum: torch.Tensor
    edges: torch.Tensor | None = None

    @property
    def n_bins(self) -> int:
        return self.count.shape[-1]

    def __add__(self, other: "BinStats") -> "BinStats":
        """Sum of two sets of statistics over the same bins (merging batches or processes)."""
        return BinStats(
            self.count + other.count, self.conf_sum + other.conf_sum, self.acc_sum + other.acc_sum, self.edges
        )


def uniform_edges(n_bins: int, *, device: torch.device | str | None = None) -> torch.Tensor:
    """``[B + 1]`` float64 edges ``j / B`` (each correctly rounded, so ``3/10`` equals the double ``0.3``)."""
    n_bins = check_n_bins(n_bins)
    return torch.arange(n_bins + 1, dtype=torch.float64, device=device) / n_bins


#: Floating dtypes with at most 24 significant bits (``s * B`` is exact in float64 for them).
_SHORT_FLOATS = (torch.float32, torch.float16, torch.bfloat16)


@functools.lru_cache(maxsize=64)
def _float32_ceil_is_exact(n_bins: int) -> bool:
    """Whether ``ceil(s B) - 1`` in float64 bins every float32 ``s`` exactly as the float64 edges ``j / B`` do.

    For ``s`` with at most 24 significant bits, ``s * B`` is exact in float64 (``B <= 10,000`` adds at most 14
    bits), so ``ceil`` compares ``s`` with the rational ``j / B`` exactly. The float64 edge ``e_j = fl(j / B)``
    differs from ``j / B`` by less than half an ulp, and no float64 lies strictly between them, so the two
    comparisons can only disagree for ``s == e_j > j / B``, which needs ``e_j`` to be a float32 value. This
    checks the ``B - 1`` inner edges for that (it holds for every ``B`` we tried; the near-edge path covers
    any ``B`` where it does not).
    """
    for j in range(1, n_bins):
        edge = j / n_bins
        if Fraction(edge) > Fraction(j, n_bins) and float(np.float32(edge)) == edge:
            return False
    return True


def uniform_bin_index(scores: torch.Tensor, n_bins: int, *, short: bool = False) -> torch.Tensor:
    """Bin of every score under equal-width bins ``(lo, hi]`` (0 in the first bin), int64, same shape.

    ``ceil(s B) - 1`` (clamped to ``[0, B - 1]``), computed in float64. For float32 / float16 / bfloat16
    scores this is exact (:func:`_float32_ceil_is_exact`); for float64 scores the few within 1e-9 of an edge
    are re-binned by exact comparison with the float64 edges ``j / B`` (``torch.bucketize``), so the rule
    holds to the bit. ``short=True``: the scores are float64 copies of float32 / float16 / bfloat16 values
    (the caller's promise), binned by the exact short-float rule without another conversion.
    """
    s = scores.to(torch.float64)
    scaled = s * n_bins
    if (short or scores.dtype in _SHORT_FLOATS) and _float32_ceil_is_exact(n_bins):
        return scaled.ceil_().long().sub_(1).clamp_(0, n_bins - 1)
    index = scaled.ceil().long().sub_(1).clamp_(0, n_bins - 1)
    near = (scaled - scaled.round()).abs_() < 1e-9
    if bool(near.any()):
        edges = uniform_edges(n_bins, device=scores.device)
        index[near] = torch.bucketize(s[near].contiguous(), edges[1:-1], right=False)
    return index


def quantile_bin_index(scores: torch.Tensor, n_bins: int) -> torch.Tensor:
    """Equal-mass bin of each entry of 1-D ``scores [N]``: stable ascending rank ``r`` -> bin ``floor(r B / N)``."""
    n_bins = check_n_bins(n_bins)
    n = scores.shape[0]
    order = torch.argsort(scores, stable=True)
    index = torch.empty(n, dtype=torch.long, device=scores.device)
    index[order] = torch.arange(n, device=scores.device) * n_bins // n
    return index


def tie_mean(sorted_scores: torch.Tensor, sorted_outcomes: torch.Tensor) -> torch.Tensor:
    """Replace each outcome by the mean outcome of its group of equal scores (rows of ``[..., N]`` sorted)."""
    n = sorted_scores.shape[-1]
    s = sorted_scores.reshape(-1, n)
    new = torch.ones_like(s, dtype=torch.bool)
    new[:, 1:] = s[:, 1:] != s[:, :-1]
    group = new.reshape(-1).cumsum(0) - 1
    o = sorted_outcomes.reshape(-1).to(torch.float64)
    means = torch.bincount(group, o) / torch.bincount(group).to(torch.float64)
    return means[group].reshape(sorted_outcomes.shape)


def sorted_quantile_statistics(sorted_scores: torch.Tensor, sorted_outcomes: torch.Tensor, n_bins: int) -> BinStats:
    """Equal-mass :class:`BinStats` of scores sorted ascending along the last dim (``[N]`` or ``[R, N]``).

    Rank ``r`` goes to bin ``floor(r B / N)``; outcomes are first averaged within groups of tied scores, which
    gives the expected statistics over a uniformly random order of the ties (so the result does not depend
    on the order of the samples; a reading: the papers are silent on ties). For 1-D input the edges are
    ``0``, the largest score of each of the first ``B - 1`` bins, and ``1``.
    """
    n_bins = check_n_bins(n_bins)
    n = sorted_scores.shape[-1]
    rows = sorted_scores.reshape(-1, n).shape[0]
    device = sorted_scores.device
    outcomes = tie_mean(sorted_scores, sorted_outcomes)
    ranks_bin = torch.arange(n, device=device) * n_bins // n
    index = ranks_bin + (torch.arange(rows, device=device) * n_bins)[:, None]
    stats = bin_statistics(sorted_scores, outcomes, index, n_bins, groups=rows if sorted_scores.ndim > 1 else None)
    if sorted_scores.ndim > 1:
        return stats
    first = (torch.arange(1, n_bins, device=device) * n + n_bins - 1) // n_bins  # ceil(b N / B)
    inner = sorted_scores.to(torch.float64)[(first - 1).clamp(min=0, max=n - 1)]
    edges = torch.cat([inner.new_zeros(1), inner, inner.new_ones(1)])
    return BinStats(stats.count, stats.conf_sum, stats.acc_sum, edges)


def binned_statistics(scores: torch.Tensor, outcomes: torch.Tensor, n_bins: int, binning: str = "uniform") -> BinStats:
    """:class:`BinStats` (with edges) of 1-D ``scores``/``outcomes`` under ``binning`` in :data:`BINNINGS`."""
    check_choice(binning, "binning", BINNINGS)
    n_bins = check_n_bins(n_bins)
    if binning == "uniform":
        index = uniform_bin_index(scores, n_bins)
        return bin_statistics(scores, outcomes, index, n_bins, edges=uniform_edges(n_bins, device=scores.device))
    sorted_scores, order = torch.sort(scores, stable=True)
    return sorted_quantile_statistics(sorted_scores, outcomes[order], n_bins)


def bin_statistics(
    scores: torch.Tensor,
    outcomes: torch.Tensor,
    index: torch.Tensor,
    n_bins: int,
    *,
    groups: int | None = None,
    edges: torch.Tensor | None = None,
) -> BinStats:
    """Float64 per-bin ``(n, S, A)`` of ``scores``/``outcomes``/``index`` (any equal shapes, flattened).

    With ``groups=G`` the index addresses ``G * n_bins`` bins (``group * B + bin``: classes for classwise,
    resamples for the bootstrap) and the statistics are shaped ``[G, B]``; otherwise ``[B]``.
    """
    size = n_bins * (1 if groups is None else groups)
    idx = index.reshape(-1)
    s = scores.reshape(-1).to(torch.float64)
    conf_sum = torch.bincount(idx, weights=s, minlength=size)
    if outcomes.dtype == torch.bool:  # counts of (bin, outcome) pairs in one integer pass: n_b and A_b exactly
        pairs = torch.bincount(idx.add(outcomes.reshape(-1), alpha=size), minlength=2 * size).to(torch.float64)
        count, acc_sum = pairs[:size] + pairs[size:], pairs[size:]
    else:
        count = torch.bincount(idx, minlength=size).to(torch.float64)
        acc_sum = torch.bincount(idx, weights=outcomes.reshape(-1).to(torch.float64), minlength=size)
    if groups is not None:
        count, conf_sum, acc_sum = (t.reshape(groups, n_bins) for t in (count, conf_sum, acc_sum))
    return BinStats(count, conf_sum, acc_sum, edges)
