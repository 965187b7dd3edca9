"""Long-tailed variants of any classification set: the exponential profile of Cui et al. / Cao et al.

With K classes and imbalance factor rho = n_max / n_min (10, 50 or 100 in the papers), class k keeps

    n_k = floor(n_max * rho^(-k / (K - 1))),   k = 0, ..., K-1,

so class 0 is the head (n_max samples) and class K-1 the tail (n_max / rho). This is the CIFAR-10/100-LT
construction of Cui et al. 2019 ("Class-Balanced Loss Based on Effective Number of Samples", arXiv
1901.05555) used by Cao et al. 2019 (LDAM, arXiv 1906.07413); the test split stays balanced.

Reading (the papers start from the exactly balanced 50k CIFAR training set, so n_max = 5000): our training
split is a random part of the training set and its class counts differ slightly, so n_max is the smallest
class count of the split; every class can then meet its quota and the realised ratio n_0 / n_{K-1} is rho up
to rounding. Which samples a class keeps is a seeded random choice (the LDAM code shuffles with a seed too).

Example:
    >>> [round(f, 3) for f in exponential_profile(3, 100.0).tolist()]
    [1.0, 0.1, 0.01]
"""

from __future__ import annotations

import torch

from caltrain.data.seeding import make_generator
from caltrain.data.splits import Split
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["exponential_profile", "long_tailed_counts", "long_tailed_indices", "long_tailed_split"]


def exponential_profile(num_classes: int, imbalance_factor: float) -> torch.Tensor:
    """``float64 [K]`` relative class sizes ``rho^(-k/(K-1))``: 1 for class 0 down to ``1/rho`` for class K-1."""
    k = check_positive_int(num_classes, "num_classes", minimum=2)
    rho = check_number(imbalance_factor, "imbalance_factor", low=1.0)
    return rho ** (-torch.arange(k, dtype=torch.float64) / (k - 1))


def long_tailed_counts(class_counts: torch.Tensor, imbalance_factor: float) -> torch.Tensor:
    """``int64 [K]`` per-class quotas ``floor(n_max * rho^(-k/(K-1)))`` with ``n_max = min(class_counts)``."""
    n_max = int(class_counts.min())
    if n_max < 1:
        empty = torch.nonzero(class_counts == 0).flatten().tolist()
        raise ValueError(f"labels: class(es) {empty} have no sample; a long-tailed variant needs every class")
    profile = exponential_profile(class_counts.numel(), imbalance_factor)
    # The tiny offset keeps an exact product (e.g. 5000 * 0.1) from flooring to one less.
    return torch.floor(n_max * profile + 1e-9).clamp_min(1).to(torch.int64)


def long_tailed_indices(labels: torch.Tensor, num_classes: int, imbalance_factor: float, *, seed: int) -> torch.Tensor:
    """Sorted ``int64`` indices of a long-tailed subset of ``labels`` (see the module docstring).

    Args:
        labels: ``int64 [N]`` labels in ``[0, num_classes)``.
        num_classes: K.
        imbalance_factor: rho >= 1 (1 keeps ``min(class_counts)`` samples of every class).
        seed: which samples each class keeps is a pure function of ``seed``.
    """
    counts = torch.bincount(labels, minlength=num_classes)
    quotas = long_tailed_counts(counts, imbalance_factor)
    # Rank each sample within its class by a random key; keep the samples ranked below their class quota.
    keys = torch.rand(labels.numel(), generator=make_generator(seed, "long_tail"), dtype=torch.float64)
    order = torch.argsort(labels.to(torch.float64) * 2.0 + keys)  # by class, then by key
    class_start = torch.cumsum(counts, 0) - counts
    rank_in_class = torch.empty_like(order)
    rank_in_class[order] = torch.arange(labels.numel()) - class_start[labels[order]]
    keep = rank_in_class < quotas[labels]
    return torch.nonzero(keep).flatten()


def long_tailed_split(
    split: Split, num_classes: int, imbalance_factor: float, *, seed: int, name: str = "split"
) -> Split:
    """``split`` (called ``name`` in error messages) reduced to an exponential long-tailed profile.

    ``true_posterior`` is dropped (set to ``None``): it was ``p(y | x)`` under the original class prior, and
    subsampling classes changes the prior.
    """
    try:
        indices = long_tailed_indices(split.y, num_classes, imbalance_factor, seed=seed)
    except ValueError as err:
        raise ValueError(f"imbalance_factor: the {name} split: {err}") from None
    sub = split.subset(indices)
    return Split(sub.x, sub.y, None, sub.augment)
