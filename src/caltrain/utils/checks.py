"""Input conversion and validation shared by every subpackage.

Every check raises ``ValueError`` (``TypeError`` for a wrong type) whose message names the argument and
states what was expected, e.g. ``probs: rows must sum to 1 (within 1e-4), worst row sums to 0.93``.

These checks synchronise with the host (they read tensor values); hot paths (loss forwards, training
steps) call only the shape checks, and metrics expose ``validate_args=False`` to skip value checks.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from caltrain.utils.threads import map_chunks

__all__ = [
    "as_tensor",
    "check_choice",
    "check_finite",
    "check_labels",
    "check_n_bins",
    "check_ndim",
    "check_nonempty",
    "check_number",
    "check_positive_int",
    "check_probabilities",
    "check_same_length",
    "probability_tolerance",
    "MAX_BINS",
]

#: The largest ``n_bins`` (bins, pieces) any metric or calibrator accepts (:func:`check_n_bins`).
MAX_BINS = 10_000


def as_tensor(x: Any, name: str, *, dtype: torch.dtype | None = None, device: Any = None) -> torch.Tensor:
    """Convert a tensor, NumPy array or nested sequence to a ``torch.Tensor`` (no copy when possible).

    Args:
        x: the input.
        name: the argument name used in error messages.
        dtype: convert to this dtype if given.
        device: move to this device if given.
    """
    if isinstance(x, torch.Tensor):
        t = x
    elif isinstance(x, np.ndarray):
        if x.dtype == object:
            raise TypeError(f"{name}: expected a numeric array, got a NumPy array of dtype object")
        t = torch.from_numpy(np.ascontiguousarray(x))
    else:
        try:
            t = torch.as_tensor(np.asarray(x))
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name}: expected a torch.Tensor or NumPy array, got {type(x).__name__}") from err
    if dtype is not None or device is not None:
        t = t.to(dtype=dtype if dtype is not None else t.dtype, device=device if device is not None else t.device)
    return t


def check_ndim(t: torch.Tensor, name: str, ndim: int | Sequence[int], shape_doc: str) -> None:
    """Raise if ``t.ndim`` is not ``ndim`` (or one of them); ``shape_doc`` describes the expected shape."""
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if t.ndim not in allowed:
        raise ValueError(f"{name}: expected shape {shape_doc}, got shape {tuple(t.shape)}")


def check_nonempty(t: torch.Tensor, name: str) -> None:
    """Raise if ``t`` has no elements."""
    if t.numel() == 0:
        raise ValueError(f"{name}: expected at least one sample, got an empty input of shape {tuple(t.shape)}")


def check_same_length(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    """Raise if the first dimensions of ``a`` and ``b`` differ."""
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            f"{name_a} and {name_b} must have the same number of samples, got {a.shape[0]} and {b.shape[0]}"
        )


def check_finite(t: torch.Tensor, name: str) -> None:
    """Raise if ``t`` holds NaN or infinite values (reports how many)."""
    if t.is_floating_point() or t.is_complex():
        bad = ~torch.isfinite(t)
        n_bad = int(bad.sum())
        if n_bad:
            n_nan = int(torch.isnan(t).sum())
            raise ValueError(
                f"{name}: expected finite values, found {n_nan} NaN and {n_bad - n_nan} infinite value(s)"
            )


def probability_tolerance(dtype: torch.dtype, atol: float = 1e-4) -> float:
    """The row-sum / range tolerance :func:`check_probabilities` uses for probabilities stored in ``dtype``.

    Rule: ``atol + min(eps(dtype), 5e-3)``. A softmax rounded to ``dtype`` is off by at most ``u = eps / 2`` per
    rounding, relative: rounding each of the K probabilities moves the row sum by at most ``u * sum_k p_k = u``
    whatever K, and a normaliser rounded to ``dtype`` (a hand-rolled ``exp(z) / exp(z).sum()``) adds another
    ``u``, hence ``eps = 2u``; the check itself sums in float32 or float64. The cap 5e-3 keeps a row that is 1%
    off failing in every dtype: after bfloat16 rounding it is still off by at least ``0.01 - 1.01 u = 6e-3``.
    Values: float64 / float32 ``1e-4``, float16 ``1.1e-3``, bfloat16 ``5.1e-3`` (so in bfloat16 only a softmax
    with float accumulation, as ``torch.softmax``, which is off by at most ``u = 3.9e-3``, is sure to pass).

    Example:
        >>> round(probability_tolerance(torch.float32), 6), round(probability_tolerance(torch.bfloat16), 6)
        (0.0001, 0.0051)
    """
    if not dtype.is_floating_point:
        return atol
    return atol + min(torch.finfo(dtype).eps, 5e-3)


def check_probabilities(
    p: torch.Tensor, name: str = "probs", *, dim: int = 1, atol: float = 1e-4, row_sum: bool = True
) -> None:
    """Raise unless ``p`` is finite, within [0, 1], and sums to 1 along ``dim`` within the tolerance.

    The one probability check of caltrain (metrics, post-hoc, report all call it). A probability input that
    looks like logits (values outside [0, 1]) gets a hint to pass logits through ``from_logits=True``
    instead; nothing here guesses which it is. ``row_sum=False`` checks only the range.

    The tolerance is ``atol`` for float32 / float64 and grows with the rounding of half-precision dtypes:
    :func:`probability_tolerance` (``atol + min(eps, 5e-3)``: float16 ``1.1e-3``, bfloat16 ``5.1e-3``), so a
    softmax computed in (or cast to) float16 / bfloat16 passes and a row 1% off fails in every dtype.

    Three fast passes: one ``aminmax`` (NaN and inf propagate into it; only then does :func:`check_finite`
    count them for the message) and the sums along ``dim`` as a matrix-vector product in chunks of 2^16 rows
    (BLAS; a row reduction over a short last dim is several times slower, and the temporaries stay small).

    Example:
        >>> check_probabilities(torch.tensor([[0.25, 0.75]]))
        >>> check_probabilities(torch.tensor([[0.5, 0.4]]))
        Traceback (most recent call last):
        ValueError: probs: rows must sum to 1 along dim 1 (within 0.0001), worst row is off by 0.1
    """
    if not p.is_floating_point():
        raise TypeError(f"{name}: expected a floating-point tensor of probabilities, got dtype {p.dtype}")
    tol = probability_tolerance(p.dtype, atol)
    lo_t, hi_t = torch.aminmax(p)
    lo, hi = float(lo_t), float(hi_t)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        check_finite(p, name)
    if lo < -tol or hi > 1 + tol:
        raise ValueError(
            f"{name}: expected probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}] "
            "(if these are logits, pass from_logits=True or apply softmax first)"
        )
    if row_sum:
        q = p.movedim(dim, -1).reshape(-1, p.shape[dim]) if p.ndim > 1 else p[None]
        if q.dtype not in (torch.float32, torch.float64):
            q = q.float()
        ones = torch.ones(q.shape[1], dtype=q.dtype, device=q.device)
        rows = 1 << 16
        part = lambda a, b: (q[a:b] @ ones - 1).abs().max()  # noqa: E731
        if q.device.type == "cpu":  # many small ops: worker threads, one intra-op thread each (utils/threads.py)
            worst = float(torch.stack(map_chunks(part, q.shape[0], rows)).max())
        else:
            worst = float(torch.stack([part(i, i + rows) for i in range(0, q.shape[0], rows)]).max())
        if worst > tol:
            dtype_note = "" if torch.finfo(p.dtype).bits >= 32 else f" for {str(p.dtype).replace('torch.', '')}"
            raise ValueError(
                f"{name}: rows must sum to 1 along dim {dim} (within {tol:.2g}{dtype_note}), "
                f"worst row is off by {worst:.4g}"
            )


def check_n_bins(value: Any, name: str = "n_bins") -> int:
    """Return ``value`` as an int, raising unless it is an integer in ``[1, MAX_BINS]`` (10,000).

    The one bin-count check of every metric, streaming metric and calibrator taking ``n_bins`` (and ATS's
    ``n_pieces``). Why a cap: the binned statistics allocate O(n_bins) (classwise: O(K * n_bins)) float64
    cells per call, whatever N, so ``n_bins=10**9`` would try to allocate gigabytes before failing; and past
    ~N / 10 bins most bins are empty or hold one sample, so the binned estimate is noise. 10,000 equal-width
    bins already resolve confidences to 1e-4 and cost at most a few MB (classwise with K = 100: 8 MB a
    statistic), so no sensible evaluation needs more.

    Example:
        >>> check_n_bins(15)
        15
        >>> check_n_bins(10**9)
        Traceback (most recent call last):
        ValueError: n_bins: expected an integer in [1, 10000], got 1000000000 (more bins than 10000 are empty or noise and cost memory: see caltrain.utils.checks.check_n_bins)
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= MAX_BINS:
        extra = (
            f" (more bins than {MAX_BINS} are empty or noise and cost memory: see caltrain.utils.checks.check_n_bins)"
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > MAX_BINS
            else ""
        )
        raise ValueError(f"{name}: expected an integer in [1, {MAX_BINS}], got {value!r}{extra}")
    return int(value)


def check_labels(
    labels: torch.Tensor,
    num_classes: int,
    name: str = "labels",
    *,
    ignore_index: int | None = None,
) -> None:
    """Raise unless ``labels`` are integers in ``[0, num_classes)`` (entries equal to ``ignore_index`` excepted)."""
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name}: expected integer class indices, got dtype {labels.dtype}")
    valid = labels if ignore_index is None else labels[labels != ignore_index]
    if valid.numel() == 0:
        return
    lo, hi = (int(v) for v in torch.aminmax(valid))
    if lo < 0 or hi >= num_classes:
        extra = f" (or ignore_index={ignore_index})" if ignore_index is not None else ""
        raise ValueError(
            f"{name}: expected class indices in [0, {num_classes - 1}]{extra}, got values in [{lo}, {hi}]"
        )


def check_positive_int(value: Any, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as an int, raising unless it is an integer ``>= minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    return int(value)


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float, raising unless it is a finite number within the stated interval."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name}: expected a number, got {value!r}")
    v = float(value)
    ok = math.isfinite(v)
    if ok and low is not None:
        ok = v >= low if low_inclusive else v > low
    if ok and high is not None:
        ok = v <= high if high_inclusive else v < high
    if not ok:
        left = "-inf" if low is None else f"{low:g}"
        right = "inf" if high is None else f"{high:g}"
        interval = f"{'[' if low_inclusive and low is not None else '('}{left}, {right}{']' if high_inclusive and high is not None else ')'}"
        raise ValueError(f"{name}: expected a finite number in {interval}, got {value!r}")
    return v


def did_you_mean(value: Any, choices: Iterable[Any]) -> str:
    """``" Did you mean 'x'?"`` for the string choices closest to ``value`` (empty when none is close)."""
    import difflib

    close = difflib.get_close_matches(str(value), [str(c) for c in choices if isinstance(c, str)], n=3)
    return f"; did you mean {', '.join(map(repr, close))}?" if close else ""


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> Any:
    """Return ``value``, raising unless it is one of ``choices`` (listed in the message, with the closest)."""
    choices = list(choices)
    try:
        ok = value in choices
    except TypeError:  # an unhashable or incomparable value
        ok = False
    if not ok:
        raise ValueError(
            f"{name}: expected one of {', '.join(map(repr, choices))}, got {value!r}{did_you_mean(value, choices)}"
        )
    return value
