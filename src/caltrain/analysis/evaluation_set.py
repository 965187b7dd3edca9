"""The fixed evaluation set on which curvature is measured: validated inputs, an optional seeded subset.

Curvature estimates along a trajectory are comparable only when they are taken on the same samples,
so the subset is a function of (N, size, seed) alone: the same seed gives the same samples at every
call, and it draws from its own ``torch.Generator`` (never the global RNG, so tracking curvature does
not change the training run it observes).
"""

from __future__ import annotations

import torch

from caltrain.utils.checks import (
    as_tensor,
    check_finite,
    check_labels,
    check_ndim,
    check_nonempty,
    check_positive_int,
    check_same_length,
)

__all__ = ["check_class_labels", "evaluation_set", "evaluation_subset"]


def evaluation_subset(num_samples: int, size: int | None, *, seed: int = 0) -> torch.Tensor | None:
    """Sorted indices of ``size`` samples out of ``num_samples``, drawn without replacement from ``seed``.

    Returns ``None`` (use every sample) when ``size`` is None or at least ``num_samples``.

    Example:
        >>> evaluation_subset(10, 3, seed=0).tolist() == evaluation_subset(10, 3, seed=0).tolist()
        True
    """
    if size is None:
        return None
    size = check_positive_int(size, "subset")
    if size >= num_samples:
        return None
    generator = torch.Generator().manual_seed(int(seed))
    return torch.randperm(num_samples, generator=generator)[:size].sort().values


def evaluation_set(
    inputs,
    labels=None,
    *,
    subset: int | None = None,
    seed: int = 0,
    device: torch.device | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate ``inputs`` [N, ...] (and ``labels`` [N]), take the seeded subset, move both to ``device``.

    Labels must be integer class indices >= 0; their upper bound is checked against the model's
    output width by :func:`check_class_labels` once the logits are known.
    """
    inputs = as_tensor(inputs, "inputs")
    if inputs.ndim == 0:
        raise ValueError("inputs: expected shape [N, ...] (a batch of samples), got a scalar")
    check_nonempty(inputs, "inputs")
    check_finite(inputs, "inputs")
    if labels is not None:
        labels = as_tensor(labels, "labels")
        check_ndim(labels, "labels", 1, "[N] (one class index per sample)")
        check_same_length(inputs, labels, "inputs", "labels")
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(f"labels: expected integer class indices, got dtype {labels.dtype}")
        if int(labels.min()) < 0:
            raise ValueError(f"labels: expected class indices >= 0, got minimum {int(labels.min())}")
    index = evaluation_subset(inputs.shape[0], subset, seed=seed)
    if index is not None:
        inputs = inputs[index]
        labels = labels[index] if labels is not None else None
    inputs = inputs.to(device) if device is not None else inputs
    if labels is not None:
        labels = labels.to(device=inputs.device, dtype=torch.long)
    return inputs, labels


def check_class_labels(labels: torch.Tensor, logits: torch.Tensor) -> None:
    """Raise unless ``labels`` index the last dimension of ``logits`` (K classes: values in [0, K))."""
    check_labels(labels, logits.shape[-1], "labels")
