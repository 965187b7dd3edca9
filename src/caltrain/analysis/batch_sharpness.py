"""Batch sharpness: the curvature of each mini-batch loss along its own gradient, averaged over batches.

For mini-batches B of size b drawn from the evaluation set, with L_B the mean loss on B,
g_B = nabla L_B and H_B = nabla^2 L_B,

    batch sharpness = E_B[ g_B^T H_B g_B / ||g_B||^2 ],

the Rayleigh quotient of each batch's Hessian at its own gradient: the curvature an SGD step of that batch
actually meets. Andreyev & Beneventano ("Edge of Stochastic Stability", arXiv 2412.20553) show that
mini-batch SGD stabilises this quantity at 2/eta where full-batch GD stabilises lambda_max(H); CalMO
(Morosini et al., arXiv 2604.20614;
docs/methods.md#calmo-and-the-calibration-curvature-link) tracks it beside the Gauss-Newton sharpness.

Each batch costs one forward, one backward with ``create_graph`` and one double-backward (H_B g_B by
Pearlmutter's trick); the ratios stay on the device and are read once at the end.

Where we differ from the authors' code (github.com/arseniqum/edge-of-stochastic-stability,
``calculate_averaged_grad_H_grad``): they draw up to 1000 batches from a time-seeded generator until the
relative standard error falls below 0.5%, with the model in train mode. We draw a fixed number
``num_batches`` from ``seed`` (the same batches at every call, so a curve along training is not
resampling noise; ``stderr`` tells whether more batches are needed), and measure in eval mode like every
curvature quantity here: BatchNorm uses its running statistics and dropout is off. There is no
train-mode switch on purpose: a train-mode forward would update the BatchNorm running statistics of the
model being observed. For models without BatchNorm or dropout both modes agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.analysis.evaluation_set import evaluation_set
from caltrain.analysis.functional_model import FunctionalModel, evaluation_mode
from caltrain.analysis.hessian import LossFn, gradient_vector_product, loss_gradient
from caltrain.utils.checks import check_positive_int

__all__ = ["BatchSharpnessEstimate", "batch_sharpness"]


@dataclass(frozen=True)
class BatchSharpnessEstimate:
    """The batch sharpness estimate.

    Attributes:
        value: the mean of ``ratios`` (a Python float).
        stderr: its standard error, std(ratios, ddof=1) / sqrt(num_batches) (NaN for a single batch).
        ratios: g_B^T H_B g_B / ||g_B||^2 of each batch, float64 [num_batches] (NaN where g_B = 0).
    """

    value: float
    stderr: float
    ratios: torch.Tensor


def batch_sharpness(
    model: nn.Module,
    inputs,
    labels,
    *,
    batch_size: int = 128,
    num_batches: int = 8,
    seed: int = 0,
    loss_fn: LossFn = F.cross_entropy,
) -> BatchSharpnessEstimate:
    """E_B[g_B^T H_B g_B / ||g_B||^2] over ``num_batches`` seeded mini-batches of ``inputs``.

    Args:
        model: a classifier mapping inputs [N, ...] to logits [N, K]; measured in eval mode, left in the
            mode it was in, its parameters and ``.grad`` untouched.
        inputs: [N, ...]; labels: [N] integer class indices in [0, K).
        batch_size: b, the training batch size whose stability is in question (default 128, CalMO's);
            each batch draws b distinct samples (all N when b >= N).
        num_batches: how many batches to average (default 8).
        seed: seeds the batch draws (its own generator; the global RNG is untouched).
        loss_fn: the mean loss ``loss_fn(logits, labels)`` (default cross-entropy).

    Returns:
        :class:`BatchSharpnessEstimate`.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        >>> est = batch_sharpness(net, torch.randn(64, 4), torch.randint(0, 3, (64,)), batch_size=16)
        >>> est.ratios.shape
        torch.Size([8])
    """
    if labels is None:
        raise ValueError("labels: batch sharpness needs the class labels [N], got None")
    batch_size = check_positive_int(batch_size, "batch_size")
    num_batches = check_positive_int(num_batches, "num_batches")
    fmodel = FunctionalModel(model)
    x, y = evaluation_set(inputs, labels, device=fmodel.device)
    generator = torch.Generator().manual_seed(int(seed))
    n = x.shape[0]
    ratios = []
    with evaluation_mode(model):
        for _ in range(num_batches):
            index = torch.randperm(n, generator=generator)[:batch_size].to(x.device)
            leaves, grads = loss_gradient(fmodel, x[index], y[index], loss_fn)
            step = tuple(g.detach() for g in grads)
            curvature = gradient_vector_product(leaves, grads, step)
            g_flat, hg_flat = fmodel.flatten(step).double(), fmodel.flatten(curvature).double()
            ratios.append(torch.dot(g_flat, hg_flat) / torch.dot(g_flat, g_flat))
    values = torch.stack(ratios).detach()
    stderr = float(values.std()) / math.sqrt(num_batches) if num_batches > 1 else math.nan
    return BatchSharpnessEstimate(value=float(values.mean()), stderr=stderr, ratios=values)
