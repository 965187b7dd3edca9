"""The true calibration error of a model on data whose posterior is known (the synthetic sets).

For a model with predicted class yhat(x) = argmax_k p_k(x) and confidence conf(x) = max_k p_k(x), on data
with known posterior q(k | x) = P(observed label = k | x),

    TCE_r = ( E_x | q(yhat(x) | x) - conf(x) |^r )^(1/r),     r = 1 (default) or 2,

since q(yhat(x) | x) = P(correct | x). Binned estimators (ECE and its variants) estimate the weaker
E | E[correct | conf] - conf | (their bias and variance depend on the binning, Kumar et al. 2019,
arXiv 1909.10155); this quantity needs no binning and is exact up to the sampling of x, so the synthetic
datasets give a ground truth to compare the binned estimates against. By Jensen's inequality TCE_1 is at
least the population ECE of the same model.

Shapes: ``probs`` and ``true_posterior`` ``[N, K]`` (the model's probabilities over the same K classes;
for a model with an abstention output pass the K class probabilities you evaluate). Accumulated in float64.
This is the single implementation; ``caltrain.data.true_calibration_error`` re-exports it.

Example:
    >>> import torch
    >>> q = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    >>> float(true_calibration_error(q, q))  # the true posterior is perfectly calibrated
    0.0
    >>> round(float(true_calibration_error(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), q)), 3)
    0.25
"""

from __future__ import annotations

import torch

from caltrain.utils.checks import as_tensor, check_choice, check_ndim, check_nonempty, check_probabilities

__all__ = ["true_calibration_error", "true_gap"]


def true_gap(confidence: torch.Tensor, predicted: torch.Tensor, true_posterior: torch.Tensor) -> torch.Tensor:
    """``|q(yhat_i | x_i) - conf_i|`` ``[N]`` float64; a prediction outside ``[0, K)`` (unknown) has ``q = 0``."""
    k = true_posterior.shape[1]
    inside = predicted < k
    q = true_posterior.to(torch.float64).gather(1, predicted.clamp(max=k - 1)[:, None]).squeeze(1)
    return (torch.where(inside, q, torch.zeros_like(q)) - confidence.to(torch.float64)).abs()


def true_calibration_error(probs: torch.Tensor, true_posterior: torch.Tensor, *, norm: int = 1) -> torch.Tensor:
    """``(mean_i |q(yhat_i | x_i) - conf_i|^norm)^(1/norm)`` in float64 (module docstring)."""
    probs = as_tensor(probs, "probs")
    true_posterior = as_tensor(true_posterior, "true_posterior", device=probs.device)
    check_ndim(probs, "probs", 2, "[N, K]")
    if probs.shape != true_posterior.shape:
        raise ValueError(
            f"true_posterior: expected shape {list(probs.shape)}, the shape [N, K] of probs (for a model with an "
            f"abstention output pass its K class probabilities), got {list(true_posterior.shape)}"
        )
    check_nonempty(probs, "probs")
    check_probabilities(probs, "probs")
    check_probabilities(true_posterior, "true_posterior")
    check_choice(norm, "norm", (1, 2))
    conf, predicted = probs.to(torch.float64).max(dim=1)
    gap = true_gap(conf, predicted, true_posterior)
    return gap.mean() if norm == 1 else gap.pow(2).mean().sqrt()
