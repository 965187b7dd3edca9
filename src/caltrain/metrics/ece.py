"""Top-label expected calibration error (ECE, RMSCE, MCE, AdaECE), the binary ECE and the debiased L2 ECE.

Top-label calibration (Guo et al. 2017, arXiv 1706.04599): with predicted class ``yhat_i = argmax_k p_ik``,
confidence ``c_i = max_k p_ik`` and correctness ``o_i = 1[yhat_i = y_i]``, bin the confidences into ``B`` bins
(:mod:`caltrain.metrics.binning`) and, with ``n_b``, ``conf_b = S_b / n_b``, ``acc_b = A_b / n_b`` and
``N = sum_b n_b``,

    ECE   (norm="l1")  = sum_b (n_b / N) |acc_b - conf_b| = (1/N) sum_b |A_b - S_b|
    RMSCE (norm="l2")  = sqrt( sum_b (n_b / N) (acc_b - conf_b)^2 )
    MCE   (norm="max") = max_{b : n_b > 0} |acc_b - conf_b|

AdaECE is the same with ``binning="quantile"`` (equal-mass bins, every sample kept). Ties in the argmax
go to the lowest class index (``torch.max``).

The statistics are accumulated in float64, so the result is exact up to float64 rounding at any N (a
float32 accumulator, as in torchmetrics <= 1.x, reports ECE 0.026 for a model whose ECE is 6e-5 at 1e7
samples). Reading: an empty bin contributes nothing; MCE over no non-empty bin cannot happen (N >= 1).

Example:
    >>> import torch
    >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]], dtype=torch.float64)
    >>> y = torch.tensor([0, 1, 1])
    >>> round(float(expected_calibration_error(p, y, n_bins=10)), 6)  # bins of 0.9, 0.6, 0.7: |1-.9|+|0-.6|+|1-.7|
    0.333333
"""

from __future__ import annotations

import math
from typing import Any

import torch

from caltrain.metrics.binning import (
    BINNINGS,
    BinStats,
    bin_statistics,
    binned_statistics,
    uniform_bin_index,
    uniform_edges,
)
from caltrain.metrics.validation import prepare
from caltrain.utils.checks import (
    as_tensor,
    check_choice,
    check_n_bins,
    check_probabilities,
    probability_tolerance,
)
from caltrain.utils.threads import map_chunks

__all__ = [
    "NORMS",
    "adaptive_calibration_error",
    "binary_calibration_error",
    "calibration_error_from_stats",
    "debiased_calibration_error",
    "expected_calibration_error",
    "top_label",
    "top_label_statistics",
]

#: ``norm`` values: ``"l1"`` (ECE), ``"l2"`` (RMSCE), ``"max"`` (MCE).
NORMS = ("l1", "l2", "max")


def calibration_error_from_stats(stats: BinStats, norm: str = "l1") -> torch.Tensor:
    """The calibration error of per-bin statistics ``[..., B]`` -> ``[...]`` float64 (module docstring)."""
    check_choice(norm, "norm", NORMS)
    count, gap_sum = stats.count, stats.acc_sum - stats.conf_sum
    n = count.sum(-1)
    if norm == "l1":
        return gap_sum.abs().sum(-1) / n
    gap = torch.where(count > 0, gap_sum / count.clamp(min=1), torch.zeros_like(gap_sum))
    if norm == "l2":
        return ((count * gap.square()).sum(-1) / n).sqrt()
    return gap.abs().amax(-1)


#: Rows per chunk of :func:`top_label_statistics`: 2^16 on the CPU (the float64 temporaries stay in cache),
#: 2^22 elsewhere (a GPU is limited by kernel launches, not cache: fewer, larger chunks).
_CHUNK_ROWS = 1 << 16
_DEVICE_CHUNK_ROWS = 1 << 22


def top_label_statistics(probs: torch.Tensor, labels: torch.Tensor, n_bins: int, *, check: bool = False) -> BinStats:
    """Equal-width top-label :class:`BinStats` of prepared ``probs [N, K]``, ``labels [N]``, in row chunks.

    Chunks of 2^16 rows keep the float64 temporaries small and in cache: the extra memory does not grow
    with N. On the CPU the chunks go to ``torch.get_num_threads()`` worker threads that each run their
    operations on one intra-op thread (:func:`caltrain.utils.threads.map_chunks`): a chunk is a handful of
    small operations, and run on all threads each of them is a parallel region that waits for a scheduler
    time slice whenever another process holds a core (5x slower than torchmetrics at 1e7 x 10 on a loaded
    2-core machine before; BENCHMARKS.md, "Speed on a busy machine"). The chunks' sums are added in chunk order,
    so the result does not depend on the number of threads.

    ``check=True`` also does :func:`caltrain.utils.checks.check_probabilities` (range and row sums) inside
    the same pass, on each chunk while it is in cache (CPU, float32 / float64, 2 <= K; elsewhere the check
    runs first): the chunk's ``aminmax`` and its row sums by the same 2^16-row matrix-vector products as the
    check, so it passes and fails on the same inputs; on failure the check itself runs and raises its message.
    """
    fused = check and probs.device.type == "cpu" and probs.dtype in (torch.float32, torch.float64)
    if check and not fused:
        check_probabilities(probs, "probs")
    ones = torch.ones(probs.shape[1], dtype=probs.dtype)

    def chunk(start: int, stop: int) -> tuple[BinStats, torch.Tensor | None]:
        p = probs[start:stop]
        conf, correct = _top_label_values(p, labels[start:stop])
        if conf.dtype in (torch.float32, torch.float16, torch.bfloat16):  # one float64 copy for the index and S_b
            c64 = conf.to(torch.float64)
            stats = bin_statistics(c64, correct, uniform_bin_index(c64, n_bins, short=True), n_bins)
        else:
            stats = bin_statistics(conf, correct, uniform_bin_index(conf, n_bins), n_bins)
        if not fused:
            return stats, None
        return stats, torch.stack([p.amin(), conf.amax(), (p @ ones - 1).abs().max()])

    n = probs.shape[0]
    if probs.device.type == "cpu":
        parts = map_chunks(chunk, n, _CHUNK_ROWS)
    else:
        parts = [chunk(s, min(s + _DEVICE_CHUNK_ROWS, n)) for s in range(0, n, _DEVICE_CHUNK_ROWS)]
    if fused:
        ranges = torch.stack([r for _, r in parts])
        lo, hi, worst = float(ranges[:, 0].min()), float(ranges[:, 1].max()), float(ranges[:, 2].max())
        tol = probability_tolerance(probs.dtype)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo < -tol or hi > 1 + tol or worst > tol:
            check_probabilities(probs, "probs")  # raises its own message
    total = parts[0][0]
    for part, _ in parts[1:]:  # in chunk order: the same sums whatever the number of threads
        total = total + part
    return BinStats(total.count, total.conf_sum, total.acc_sum, uniform_edges(n_bins, device=probs.device))


def top_label(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(confidence [N], correct [N] bool)`` of prepared ``probs [N, K]`` and ``labels [N]``."""
    conf, pred = probs.max(dim=1)
    return conf, pred == labels


#: ``15 - j`` for column ``j``: the tie-break bits of :func:`_top_label_values`' integer keys.
_TIE_BREAK = torch.arange(15, -1, -1, dtype=torch.int64)


def _top_label_values(probs: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`top_label` of probabilities for statistics (no gradients): the same values, faster on the CPU.

    ``torch.max(dim=1)`` tracks the index of the maximum, which on the CPU costs 3-9x a plain ``amax``
    (measured on [2^16, 10]). Here ``c = amax(p)`` and ``correct = (p_y == c)``, which differs from
    ``argmax(p) == y`` only when a class below ``y`` ties with it at the maximum; two entries equal to ``c`` in
    a row of probabilities need ``2 c <= 1 + (K - 1) tol`` (``tol``:
    :func:`caltrain.utils.checks.probability_tolerance`), so only the rows with ``y > 0``, ``p_y == c`` and
    ``c <= 1/2 + K tol`` are looked at again: those where another class also reaches ``c`` are decided by
    ``argmax`` (its first maximum). Exact for rows of probabilities (what the metrics validate unless
    ``validate_args=False``); on other devices, and for one column, :func:`top_label` itself.

    float32 with ``2 <= K <= 16`` (most classifiers' evaluation) skips that second look: each ``p_j`` becomes a
    float64 (exact, its 29 lowest bits zero) with ``15 - j`` written into its 4 lowest bits, and one float64
    ``amax`` gives the maximum (rounded back to float32: ``p`` itself) and, in those bits, its first index
    (tied entries differ only there, the lowest ``j`` largest; different values keep their order, all being
    positive). A chunk where some row's maximum is not positive (0, negative or NaN: no rows of probabilities)
    takes the path above. 1.3-1.5x faster on [2^16, 10] than ``amax`` + ``gather`` + the second look.
    """
    if probs.device.type != "cpu" or probs.shape[1] < 2:
        return top_label(probs, labels)
    k = probs.shape[1]
    if probs.dtype == torch.float32 and k <= 16:
        # max and first argmax in one float64 amax: p_j as a float64 is exact and has 29 zero low bits;
        # writing 15 - j into the lowest 4 makes tied entries differ (the lowest j largest) and leaves the
        # order of different values unchanged, for positive values; rounding back to float32 gives p exactly
        keys = probs.to(torch.float64)
        keys.view(torch.int64).bitwise_or_(_TIE_BREAK[:k])
        top = keys.amax(dim=1)
        conf = top.to(torch.float32)
        if bool((conf > 0).all()):  # a row whose maximum is <= 0 or NaN orders otherwise: torch.max below
            return conf, top.view(torch.int64).bitwise_and_(15).neg_().add_(15) == labels
    conf = probs.amax(dim=1)
    correct = probs.gather(1, labels[:, None]).squeeze(1) == conf
    bound = 0.5 + probs.shape[1] * probability_tolerance(probs.dtype)
    rows = (conf <= bound).logical_and_(correct).logical_and_(labels > 0).nonzero().squeeze(1)
    if rows.numel():  # does another class reach the maximum too? (hide p_y, take the max of the rest)
        others = probs[rows].scatter_(1, labels[rows, None], float("-inf")).amax(dim=1)
        rows = rows[others == conf[rows]]
        if rows.numel():
            correct[rows] = probs[rows].argmax(dim=1) == labels[rows]
    return conf, correct


def expected_calibration_error(
    probs: Any,
    labels: Any,
    n_bins: int = 15,
    norm: str = "l1",
    binning: str = "uniform",
    *,
    from_logits: bool = False,
    ignore_index: int | None = None,
    validate_args: bool = True,
) -> torch.Tensor:
    """Top-label calibration error (ECE / RMSCE / MCE, AdaECE with ``binning="quantile"``), float64 scalar.

    Args:
        probs: ``[N, K]`` or ``[N, K, *spatial]`` probabilities (tensor on any device, or NumPy).
        labels: ``[N]`` or ``[N, *spatial]`` integer labels.
        n_bins: ``B >= 1`` (default 15, as Guo et al. and most papers since).
        norm: ``"l1"`` (ECE), ``"l2"`` (RMSCE) or ``"max"`` (MCE).
        binning: ``"uniform"`` (equal width, ``(lo, hi]``) or ``"quantile"`` (equal mass).
        from_logits: ``probs`` holds logits; a float64 softmax is applied.
        ignore_index: label value of entries to leave out (dense inputs).
        validate_args: check values, not only shapes.

    The math, conventions and paper are in the module docstring.
    """
    n_bins = check_n_bins(n_bins)
    check_choice(norm, "norm", NORMS)
    check_choice(binning, "binning", BINNINGS)
    if binning == "uniform":  # the probability check inside the statistics' pass (top_label_statistics)
        fuse = validate_args and not from_logits and ignore_index is None
        p, y = prepare(probs, labels, from_logits=from_logits, ignore_index=ignore_index,
                       validate_args=validate_args, check_probs=not fuse)
        return calibration_error_from_stats(top_label_statistics(p, y, n_bins, check=fuse), norm)
    p, y = prepare(probs, labels, from_logits=from_logits, ignore_index=ignore_index, validate_args=validate_args)
    conf, correct = top_label(p, y)
    return calibration_error_from_stats(binned_statistics(conf, correct, n_bins, binning), norm)


def adaptive_calibration_error(
    probs: Any, labels: Any, n_bins: int = 15, norm: str = "l1", **kwargs: Any
) -> torch.Tensor:
    """AdaECE: :func:`expected_calibration_error` with equal-mass bins (Mukhoti et al. 2020, arXiv 2002.09437)."""
    return expected_calibration_error(probs, labels, n_bins, norm, "quantile", **kwargs)


def binary_calibration_error(
    probs: Any,
    labels: Any,
    n_bins: int = 15,
    norm: str = "l1",
    binning: str = "uniform",
    *,
    ignore_index: int | None = None,
    validate_args: bool = True,
) -> torch.Tensor:
    """Calibration error of the positive-class probability of a binary classifier, float64 scalar.

    ``probs``: ``[N]`` or ``[N, *spatial]`` probabilities of the positive class ``s_i``; ``labels``: the
    same shape, 0/1 (``ignore_index`` entries dropped). Bins are on ``s_i`` itself (not on ``max(s, 1 - s)``)
    and the outcome is ``y_i``: ``sum_b (n_b / N) |mean_b y - mean_b s|`` for ``norm="l1"``, as in
    scikit-learn's ``calibration_curve``. For the top-label ECE of a binary model (confidence ``max(s, 1-s)``)
    stack ``[1 - s, s]`` on dim 1 and call :func:`expected_calibration_error`.
    """
    n_bins = check_n_bins(n_bins)
    check_choice(norm, "norm", NORMS)
    s = as_tensor(probs, "probs")
    if s.ndim == 0:
        raise ValueError("probs: expected shape [N] or [N, *spatial] of positive-class probabilities, got a scalar")
    p2 = torch.stack([1 - s, s], dim=1) if s.is_floating_point() else s
    p, y = prepare(p2, labels, ignore_index=ignore_index, validate_args=validate_args)
    pos = p[:, 1]
    return calibration_error_from_stats(binned_statistics(pos, y, n_bins, binning), norm)


def debiased_calibration_error(
    probs: Any,
    labels: Any,
    n_bins: int = 15,
    binning: str = "quantile",
    *,
    from_logits: bool = False,
    ignore_index: int | None = None,
    validate_args: bool = True,
) -> torch.Tensor:
    """Debiased top-label L2 calibration error (Kumar, Liang & Ma 2019, arXiv 1909.10155), float64 scalar.

    The plug-in ``sum_b (n_b/N) (acc_b - conf_b)^2`` is biased upwards by the sampling variance of
    ``acc_b``; the debiased estimate subtracts its unbiased estimate per bin:

        CE^2 = sum_b (n_b / N) [ (acc_b - conf_b)^2 - acc_b (1 - acc_b) / (n_b - 1) ],
        result = sqrt(max(CE^2, 0)),

    bins with ``n_b < 2`` contributing 0 (as in the authors' ``calibration`` package). The authors bin with
    equal mass, hence the default ``binning="quantile"``.
    """
    n_bins = check_n_bins(n_bins)
    p, y = prepare(probs, labels, from_logits=from_logits, ignore_index=ignore_index, validate_args=validate_args)
    conf, correct = top_label(p, y)
    stats = binned_statistics(conf, correct, n_bins, binning)
    count = stats.count
    safe = count.clamp(min=1)
    acc, cbar = stats.acc_sum / safe, stats.conf_sum / safe
    term = (acc - cbar).square() - acc * (1 - acc) / (count - 1).clamp(min=1)
    term = torch.where(count >= 2, term, torch.zeros_like(term))
    return ((count * term).sum() / count.sum()).clamp(min=0).sqrt()
