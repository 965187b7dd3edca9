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

__all__ = [
    "as_tensor",
    "check_choice",
    "check_finite",
    "check_labels",
    "check_ndim",
    "check_nonempty",
    "check_number",
    "check_positive_int",
    "check_probabilities",
    "check_same_length",
]


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


def check_probabilities(
    p: torch.Tensor, name: str = "probs", *, dim: int = 1, atol: float = 1e-4, row_sum: bool = True
) -> None:
    """Raise unless ``p`` is finite, within [0, 1], and sums to 1 along ``dim`` within ``atol``.

    The one probability check of caltrain (metrics, post-hoc, report all call it). A probability input that
    looks like logits (values outside [0, 1]) gets a hint to pass logits through ``from_logits=True``
    instead; nothing here guesses which it is. ``row_sum=False`` checks only the range.

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
    lo_t, hi_t = torch.aminmax(p)
    lo, hi = float(lo_t), float(hi_t)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        check_finite(p, name)
    if lo < -atol or hi > 1 + atol:
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
        worst = float(torch.stack([(q[i : i + rows] @ ones - 1).abs().max() for i in range(0, q.shape[0], rows)]).max())
        if worst > atol:
            raise ValueError(
                f"{name}: rows must sum to 1 along dim {dim} (within {atol:g}), worst row is off by {worst:.4g}"
            )


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
    lo, hi = int(valid.min()), int(valid.max())
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
