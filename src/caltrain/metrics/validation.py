"""Input preparation shared by every metric: conversion, dense flattening, ``ignore_index``, checks.

Every functional metric and every streaming class goes through :func:`prepare`:

- ``probs`` is a torch tensor (any device) or a NumPy array shaped ``[N, K]`` or ``[N, K, *spatial]``
  (dense prediction: one distribution per pixel/voxel); ``labels`` are integer class indices shaped ``[N]``
  or ``[N, *spatial]``.
- dense inputs are flattened to ``[M, K]`` / ``[M]`` with ``M = N * prod(spatial)`` (every pixel pooled
  exactly, no subsampling), then entries whose label equals ``ignore_index`` are dropped;
- ``from_logits=True`` applies a float64 softmax over dim 1; nothing guesses logits from value ranges;
- with ``validate_args=True`` (default) the values are checked (finite, in [0, 1], rows summing to 1 within
  ``1e-4``, labels in ``[0, K)``); ``validate_args=False`` keeps only the shape checks (no host syncs beyond
  the ``ignore_index`` mask) for hot loops.

Bad input raises ``ValueError`` (``TypeError`` for a wrong dtype) naming the argument and the expectation;
the value checks are :func:`caltrain.utils.checks.check_probabilities` and
:func:`caltrain.utils.checks.check_labels`.

Example:
    >>> import torch
    >>> p, y = prepare(torch.full((2, 3, 4, 4), 1 / 3), torch.zeros(2, 4, 4, dtype=torch.long))
    >>> tuple(p.shape), tuple(y.shape)
    ((32, 3), (32,))
    >>> prepare(torch.tensor([[2.0, -1.0]]), torch.tensor([0]))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: probs: expected probabilities in [0, 1], got values in [-1, 2] (if these are logits, ...)
"""

from __future__ import annotations

from typing import Any

import torch

from caltrain.utils.checks import as_tensor, check_finite, check_labels, check_nonempty, check_probabilities

__all__ = ["prepare", "prepare_scores", "prepare_with"]


def prepare(
    probs: Any,
    labels: Any,
    *,
    from_logits: bool = False,
    ignore_index: int | None = None,
    validate_args: bool = True,
    num_classes: int | None = None,
    row_sum: bool = True,
    check_probs: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs [M, K], labels [M] int64)``: :func:`prepare_with` without an extra tensor."""
    p, y, _ = prepare_with(
        probs, labels, None, from_logits=from_logits, ignore_index=ignore_index, validate_args=validate_args,
        num_classes=num_classes, row_sum=row_sum, check_probs=check_probs,
    )
    return p, y


def prepare_with(
    probs: Any,
    labels: Any,
    extra: Any,
    *,
    from_logits: bool = False,
    ignore_index: int | None = None,
    validate_args: bool = True,
    num_classes: int | None = None,
    row_sum: bool = True,
    extra_name: str = "true_posterior",
    check_probs: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Return ``(probs [M, K] floating, labels [M] int64, extra [M, K'] or None)`` (module docstring).

    Args:
        probs: ``[N, K]`` or ``[N, K, *spatial]`` probabilities (or logits with ``from_logits=True``).
        labels: ``[N]`` or ``[N, *spatial]`` integer class indices.
        extra: ``None`` or a second per-sample distribution ``[N, K', *spatial]`` (e.g. the true posterior),
            flattened and masked like ``probs``.
        from_logits: apply a float64 softmax over dim 1 first.
        ignore_index: label value whose entries are dropped (dense masks); ``None`` keeps every entry.
        validate_args: check values (not only shapes).
        num_classes: the valid label range ``[0, num_classes)``; default ``K`` (an abstention model with
            ``K + 1`` outputs passes ``K``).
        row_sum: require rows to sum to 1 (``False`` only checks the [0, 1] range).
        check_probs: with ``validate_args``, check the probability values here; ``False`` for a caller that
            checks them itself in its own pass over ``probs`` (the top-label ECE: ``top_label_statistics``);
            the labels and shapes are checked either way.
    """
    p = as_tensor(probs, "probs")
    y = as_tensor(labels, "labels", device=p.device)
    if p.ndim < 2:
        raise ValueError(f"probs: expected shape [N, K] or [N, K, *spatial], got shape {tuple(p.shape)}")
    if not p.is_floating_point():
        raise TypeError(f"probs: expected a floating-point tensor, got dtype {p.dtype}")
    expected = (p.shape[0], *p.shape[2:])
    if tuple(y.shape) != expected:
        raise ValueError(
            f"labels: expected shape {list(expected)} to match probs of shape {list(p.shape)}, got {list(y.shape)}"
        )
    check_nonempty(p, "probs")
    k = p.shape[1]
    e = None
    if extra is not None:
        e = as_tensor(extra, extra_name, device=p.device)
        if e.ndim != p.ndim or e.shape[0] != p.shape[0] or e.shape[2:] != p.shape[2:]:
            raise ValueError(
                f"{extra_name}: expected shape [N, K', *spatial] matching probs {list(p.shape)} except dim 1, "
                f"got {list(e.shape)}"
            )
        if validate_args:
            if not e.is_floating_point():
                raise TypeError(f"{extra_name}: expected a floating-point tensor, got dtype {e.dtype}")
            check_probabilities(e, extra_name)
        if e.ndim > 2:
            e = e.movedim(1, -1).reshape(-1, e.shape[1])
    if p.ndim > 2:
        p = p.movedim(1, -1).reshape(-1, k)
        y = y.reshape(-1)
    if validate_args:
        if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(f"labels: expected integer class indices, got dtype {y.dtype}")
        check_labels(y, k if num_classes is None else num_classes, "labels", ignore_index=ignore_index)
    if from_logits:
        if validate_args:
            check_finite(p, "probs")
        p = torch.softmax(p.to(torch.float64), dim=1)
    elif validate_args and check_probs:
        check_probabilities(p, "probs", row_sum=row_sum)
    if ignore_index is not None:
        keep = y != ignore_index
        p, y = p[keep], y[keep]
        e = None if e is None else e[keep]
        if y.numel() == 0:
            raise ValueError(f"labels: every entry equals ignore_index={ignore_index}; nothing to evaluate")
    return p, y.long(), e


def prepare_scores(
    confidence: Any, correct: Any, *, validate_args: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``(confidence [N] float64, correct [N] bool)`` for the selective-prediction metrics.

    ``confidence`` is any real score where larger means "more sure" (a probability, ``-p_unknown``, ...);
    ``correct`` is boolean or 0/1.
    """
    c = as_tensor(confidence, "confidence")
    r = as_tensor(correct, "correct", device=c.device)
    if c.ndim != 1:
        raise ValueError(f"confidence: expected shape [N], got shape {tuple(c.shape)}")
    if tuple(r.shape) != tuple(c.shape):
        raise ValueError(f"correct: expected shape {list(c.shape)} like confidence, got {list(r.shape)}")
    check_nonempty(c, "confidence")
    if validate_args:
        check_finite(c, "confidence")
        if r.dtype != torch.bool:
            bad = int(((r != 0) & (r != 1)).sum())
            if bad:
                raise ValueError(f"correct: expected booleans or 0/1 values, found {bad} other value(s)")
    return c.to(torch.float64), r.bool()
