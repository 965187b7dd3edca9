"""Hessian sharpness: the top eigenvalue of the Hessian of the mean loss, by Hessian-vector products.

For the mean loss L(theta) = (1/N) sum_i l(f(x_i; theta), y_i) (cross-entropy by default), the Hessian is

    H = nabla^2_theta L = G + (1/N) sum_i sum_k (dl/dz_ik) nabla^2_theta z_ik,

the Gauss-Newton matrix G (see :mod:`caltrain.analysis.gauss_newton`) plus the network's second-order
terms weighted by the loss gradient; H can be indefinite. Its top eigenvalue lambda_max(H) is the
"sharpness" of the edge-of-stability literature (Cohen et al. 2021, arXiv 2103.00065) and the third
curvature measure CalMO tracks (Morosini et al., arXiv 2604.20614;
docs/methods.md#calmo-and-the-calibration-curvature-link).

H v is computed by double backprop (Pearlmutter 1994): g = dL/dtheta with ``create_graph=True``, then
H v = d(g . v)/dtheta. The first-order graph is built once and reused by every product.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.analysis.eigensolvers import EigenEstimate, model_top_eigenvalue
from caltrain.analysis.evaluation_set import check_class_labels
from caltrain.analysis.functional_model import FunctionalModel, MatVec, mean_operator

__all__ = ["LossFn", "gradient_vector_product", "hessian_operator", "hessian_sharpness", "loss_gradient"]

#: ``loss_fn(logits, labels) -> scalar``: the loss averaged over the samples it is given.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def loss_gradient(
    fmodel: FunctionalModel, inputs: torch.Tensor, labels: torch.Tensor, loss_fn: LossFn
) -> tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """(theta leaves, dL/dtheta with its graph) of the mean loss on (inputs, labels), for double backprop.

    The leaves are fresh copies of the parameters, so nothing accumulates in the model's ``.grad``.
    """
    with torch.enable_grad():
        leaves = fmodel.leaves()
        logits = fmodel(leaves, inputs)
        check_class_labels(labels, logits)
        grads = torch.autograd.grad(loss_fn(logits, labels), leaves, create_graph=True, materialize_grads=True)
    return leaves, grads


def gradient_vector_product(
    leaves: tuple[torch.Tensor, ...], grads: tuple[torch.Tensor, ...], vectors: tuple[torch.Tensor, ...]
) -> tuple[torch.Tensor, ...]:
    """H v = d(g . v)/dtheta by one more backward pass through the graph of ``grads`` (kept for reuse)."""
    with torch.enable_grad():
        return torch.autograd.grad(
            grads, leaves, grad_outputs=vectors, retain_graph=True, materialize_grads=True
        )


def hessian_operator(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    loss_fn: LossFn = F.cross_entropy,
    chunk_size: int | None = None,
) -> MatVec:
    """The Hessian-vector product v -> H v of the mean loss of ``model`` on (inputs, labels), in eval mode.

    Args:
        model: maps inputs [N, ...] to logits [N, K]; differentiated in its parameters with requires_grad.
        inputs: [N, ...] on the model's device; labels: [N] class indices.
        loss_fn: ``loss_fn(logits, labels)``, the *mean* loss over the samples given (default cross-entropy).
        chunk_size: as in :func:`~caltrain.analysis.gauss_newton_operator`.

    Returns:
        A function mapping a flat vector v [P] to H v [P].

    Example:
        >>> net = torch.nn.Linear(3, 2)  # P = 8
        >>> hv = hessian_operator(net, torch.randn(10, 3), torch.randint(0, 2, (10,)))
        >>> hv(torch.zeros(8)).abs().max().item()
        0.0
    """
    fmodel = FunctionalModel(model)

    def prepare(x: torch.Tensor, y: torch.Tensor | None) -> MatVec:
        leaves, grads = loss_gradient(fmodel, x, y, loss_fn)

        def matvec(v: torch.Tensor) -> torch.Tensor:
            return fmodel.flatten(gradient_vector_product(leaves, grads, fmodel.unflatten(v))).detach()

        return matvec

    return mean_operator(model, prepare, inputs, labels, chunk_size)


def hessian_sharpness(
    model: nn.Module,
    inputs,
    labels,
    *,
    loss_fn: LossFn = F.cross_entropy,
    subset: int | None = None, seed: int = 0, method: str = "lanczos", iters: int = 30, tol: float = 1e-3,
    chunk_size: int | None = None, init: torch.Tensor | None = None,
) -> EigenEstimate:
    """lambda_max(H), the top eigenvalue of the Hessian of the mean loss, by Hessian-vector products.

    Args:
        model: as in :func:`~caltrain.analysis.gauss_newton_sharpness` (eval mode, nothing of it changed).
        inputs: [N, ...]; labels: [N] integer class indices in [0, K).
        loss_fn: the mean loss ``loss_fn(logits, labels)`` (default: cross-entropy).
        subset, seed, iters, tol, chunk_size, init: as in :func:`~caltrain.analysis.gauss_newton_sharpness`.
        method: "lanczos" (default) returns the algebraically largest eigenvalue; "power" returns the
            eigenvalue of largest magnitude, which for an indefinite H may be a negative one.

    Returns:
        :class:`~caltrain.analysis.EigenEstimate` of lambda_max(H).

    Cost: one forward and backward with ``create_graph`` (a graph about twice a training step's),
    then ``iterations`` x one double-backward pass over the subset.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        >>> est = hessian_sharpness(net, torch.randn(64, 4), torch.randint(0, 3, (64,)), tol=1e-6)
        >>> est.converged
        True
    """
    if labels is None:
        raise ValueError("labels: the Hessian of the loss needs the class labels [N], got None")
    return model_top_eigenvalue(
        model, lambda x, y: hessian_operator(model, x, y, loss_fn=loss_fn, chunk_size=chunk_size), inputs, labels,
        options=dict(subset=subset, seed=seed, method=method, iters=iters, tol=tol, init=init),
    )
