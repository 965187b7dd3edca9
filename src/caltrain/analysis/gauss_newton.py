"""Gauss-Newton sharpness: the top eigenvalue of the Gauss-Newton matrix of the cross-entropy.

For a model z = f(x; theta) with K outputs, p = softmax(z), and an evaluation set of N samples,

    G = (1/N) sum_i J_i^T H_i J_i,    J_i = dz_i/dtheta  [K x P],    H_i = diag(p_i) - p_i p_i^T  [K x K],

where H_i is the Hessian of the cross-entropy -log p_{i,y} with respect to the logits (it does not depend
on the label). G is the Hessian of the mean cross-entropy with the second-order terms of the network
dropped; it is positive semi-definite, and its top eigenvalue lambda_max(G) is the "GN sharpness" of
CalMO ("Too Sharp, Too Sure", Morosini et al., arXiv 2604.20614;
docs/methods.md#calmo-and-the-calibration-curvature-link). Since
lambda_max(H_i) <= 2 (1 - max_k p_ik), G is small when the model is confident *and* its Jacobian is
small; the paper shows lambda_max(G) and ECE are controlled by the same margin tail.

Products G v are computed without forming J: u = J v by forward-mode differentiation
(``torch.func.jvp``), s_i = H_i u_i = p_i * (u_i - p_i . u_i) on the K logits, and J^T s by reverse mode
(``torch.func.vjp``, whose graph is built once and reused by every product). Everything is batched over
the evaluation set: one product costs one jvp (about 2-3 forward passes) and one backward pass over the
N samples; no per-sample loop.

Reading: the paper does not say how it estimated lambda_max (docs/methods.md#calmo-and-the-calibration-curvature-link).
We use Lanczos
(``method="lanczos"``) on a fixed seeded subset, the model in eval mode (BatchNorm running statistics,
no dropout), and expose ``iters``, ``tol``, ``subset`` and ``seed``; ``method="power"`` gives the power
iteration of the edge-of-stability literature.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.func import jvp, vjp

from caltrain.analysis.eigensolvers import EigenEstimate, model_top_eigenvalue
from caltrain.analysis.functional_model import FunctionalModel, MatVec, mean_operator
from caltrain.utils.checks import check_ndim

__all__ = ["gauss_newton_operator", "gauss_newton_sharpness", "logit_hessian_product"]


def logit_hessian_product(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Row-wise (diag(p) - p p^T) u: the cross-entropy's logit Hessian applied to ``u``.

    Args:
        probs: p, shape [N, K], rows on the simplex.
        u: shape [N, K].

    Returns:
        shape [N, K]: p * (u - sum_k p_k u_k), without forming the K x K matrices.

    Example:
        >>> logit_hessian_product(torch.tensor([[0.5, 0.5]]), torch.tensor([[1.0, -1.0]]))
        tensor([[ 0.5000, -0.5000]])
    """
    return probs * (u - (probs * u).sum(dim=-1, keepdim=True))


def gauss_newton_operator(model: nn.Module, inputs: torch.Tensor, *, chunk_size: int | None = None) -> MatVec:
    """The Gauss-Newton matrix-vector product v -> G v of ``model`` on ``inputs`` (see the module docstring).

    Args:
        model: maps ``inputs`` [N, ...] to logits [N, K]; evaluated in eval mode at its current parameters
            (those with ``requires_grad``; P of them).
        inputs: the evaluation set, on the model's device.
        chunk_size: evaluate the products over chunks of this many samples (bounds memory, costs one
            more forward and backward per chunk and product); None: one batch, graph built once.

    Returns:
        A function mapping a flat vector v [P] (the parameters' dtype and device) to G v [P].

    Example:
        >>> net = torch.nn.Linear(3, 2)  # P = 8
        >>> gv = gauss_newton_operator(net, torch.randn(10, 3))
        >>> v = torch.randn(8)
        >>> bool(torch.dot(v, gv(v)) >= 0)  # G is positive semi-definite
        True
    """
    fmodel = FunctionalModel(model)

    def prepare(x: torch.Tensor, _labels: torch.Tensor | None) -> MatVec:
        def logits_at(*params: torch.Tensor) -> torch.Tensor:
            return fmodel(params, x)

        logits, pullback = vjp(logits_at, *fmodel.primals)
        check_ndim(logits, "model output", 2, "[N, K] (one row of class logits per sample)")
        probs = logits.detach().softmax(dim=-1)
        scale = 1.0 / x.shape[0]

        def matvec(v: torch.Tensor) -> torch.Tensor:
            _, jv = jvp(logits_at, fmodel.primals, fmodel.unflatten(v))
            return fmodel.flatten(pullback(logit_hessian_product(probs, jv) * scale))

        return matvec

    return mean_operator(model, prepare, inputs, None, chunk_size)


def gauss_newton_sharpness(
    model: nn.Module,
    inputs,
    *,
    subset: int | None = None, seed: int = 0, method: str = "lanczos", iters: int = 30, tol: float = 1e-3,
    chunk_size: int | None = None, init: torch.Tensor | None = None,
) -> EigenEstimate:
    """lambda_max(G), the top eigenvalue of the cross-entropy Gauss-Newton matrix, by matrix-free products.

    Args:
        model: a classifier mapping inputs [N, ...] to logits [N, K]; measured in eval mode, left in the
            mode it was in, its parameters and ``.grad`` untouched.
        inputs: the evaluation set [N, ...] (moved to the model's device). Labels are not needed: the
            cross-entropy's logit Hessian does not depend on them.
        subset: use this many samples drawn (seeded, without replacement) from ``inputs``; None: all.
        seed: seeds the subset and the random start vector (the same seed gives the same estimate).
        method: "lanczos" (default; converges in fewer products) or "power" (power iteration).
        iters: the maximum number of products G v (default 30).
        tol: stop when ||G y - theta y|| <= tol * theta (default 1e-3).
        chunk_size: see :func:`gauss_newton_operator`.
        init: a start vector [P] instead of the random one, e.g. the previous estimate's ``vector``
            (a warm start along a training trajectory usually converges in a few products).

    Returns:
        :class:`~caltrain.analysis.EigenEstimate`: ``value`` = lambda_max(G), its eigenvector, the number
        of products, the residual and whether it converged.

    Cost: one forward pass with graph, then ``iterations`` x (one jvp + one backward) over the subset.

    Example:
        >>> net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
        >>> est = gauss_newton_sharpness(net, torch.randn(64, 4), tol=1e-6)
        >>> est.value > 0 and est.converged
        True
    """
    return model_top_eigenvalue(
        model, lambda x, _: gauss_newton_operator(model, x, chunk_size=chunk_size), inputs,
        options=dict(subset=subset, seed=seed, method=method, iters=iters, tol=tol, init=init),
    )
