"""Maximum mean calibration error (MMCE) as a metric (Kumar, Sarawagi & Jain 2018, ICML; Laplacian kernel).

With confidences ``r_i = max_k p_ik``, correctness ``c_i`` and the Laplacian kernel
``k(r, r') = exp(-|r - r'| / w)`` (width ``w = 0.4`` in the paper),

    MMCE^2 = (1/N^2) sum_{i,j} (c_i - r_i)(c_j - r_j) k(r_i, r_j),     MMCE = sqrt(max(MMCE^2, 0)).

Computed exactly in O(N log N) time and O(N) memory rather than the O(N^2) kernel matrix: after sorting by
``r``, ``sum_{j <= i} a_j e^{-(r_i - r_j)/w} = e^{-r_i/w} sum_{j <= i} a_j e^{r_j/w}`` (a prefix sum) and
likewise for ``j >= i`` with a suffix sum; the diagonal is counted once. Since ``r in [0, 1]`` the
exponentials span at most ``e^{1/w}`` (12 for ``w = 0.4``), so float64 keeps ~15 digits; for ``w < 0.05``
the precision degrades like ``e^{1/w} * 1e-16`` and ``w`` below 0.02 is refused.

Example:
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4]], dtype=torch.float64)
    >>> round(float(mmce(p, torch.tensor([0, 0]))), 4)
    0.2279
"""

from __future__ import annotations

from typing import Any

import torch

from caltrain.metrics.ece import top_label
from caltrain.metrics.validation import prepare
from caltrain.utils.checks import check_number

__all__ = ["mmce", "mmce_from_scores"]


def mmce_from_scores(confidence: torch.Tensor, correct: torch.Tensor, bandwidth: float = 0.4) -> torch.Tensor:
    """MMCE of ``confidence [N]`` in [0, 1] and ``correct [N]`` (float64 scalar, module docstring)."""
    r, order = torch.sort(confidence.to(torch.float64))
    a = correct.to(torch.float64)[order] - r
    up = torch.exp(r / bandwidth)
    down = torch.exp(-r / bandwidth)
    left = down * (a * up).cumsum(0)
    right = up * (a * down).flip(0).cumsum(0).flip(0)
    total = (a * (left + right - a)).sum()
    n = r.shape[0]
    return (total / (n * n)).clamp(min=0).sqrt()


def mmce(
    probs: Any,
    labels: Any,
    *,
    bandwidth: float = 0.4,
    from_logits: bool = False,
    ignore_index: int | None = None,
    validate_args: bool = True,
) -> torch.Tensor:
    """Top-label MMCE of ``probs [N, K(, *spatial)]`` with a Laplacian kernel of width ``bandwidth``."""
    bandwidth = check_number(bandwidth, "bandwidth", low=0.02)
    p, y = prepare(probs, labels, from_logits=from_logits, ignore_index=ignore_index, validate_args=validate_args)
    conf, correct = top_label(p, y)
    return mmce_from_scores(conf, correct, bandwidth)
