"""Symmetric label noise: each label is replaced, with probability eta, by one drawn uniformly from all K classes.

If the clean label has posterior p(y | x), the observed label has

    p(y~ = k | x) = (1 - eta) * p(k | x) + eta / K,

(a replaced label can land on the true class, so a label is wrong with probability eta * (K - 1) / K). This
is the "symmetric" noise of the noisy-label literature (e.g. Patrini et al. 2017, arXiv 1609.03683, with
the transition matrix (1 - eta) I + eta / K).

Example:
    >>> import torch
    >>> y = torch.zeros(10_000, dtype=torch.int64)
    >>> noisy = symmetric_label_noise(y, 10, 0.2, torch.Generator().manual_seed(0))
    >>> round(float((noisy != 0).double().mean()), 2)  # about 0.2 * 9 / 10
    0.18
"""

from __future__ import annotations

import torch

from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["noisy_posterior", "symmetric_label_noise"]


def symmetric_label_noise(y: torch.Tensor, num_classes: int, rate: float, generator: torch.Generator) -> torch.Tensor:
    """``y`` (``int64 [N]``) with each label replaced, with probability ``rate``, by a uniform class."""
    k = check_positive_int(num_classes, "num_classes", minimum=2)
    eta = check_number(rate, "label_noise", low=0.0, high=1.0)
    replace = torch.rand(y.shape[0], generator=generator, dtype=torch.float64) < eta
    random_labels = torch.randint(0, k, y.shape, generator=generator)
    return torch.where(replace, random_labels, y)


def noisy_posterior(clean: torch.Tensor, rate: float) -> torch.Tensor:
    """The observed-label posterior ``(1 - rate) * clean + rate / K`` of a clean posterior ``[N, K]``."""
    return (1.0 - rate) * clean + rate / clean.shape[1]
