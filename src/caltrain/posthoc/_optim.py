"""Full-batch L-BFGS in float64 for the smooth, convex calibration objectives (private to posthoc).

The objective and its gradient are computed by torch on the parameters' device; scipy's L-BFGS-B drives the
iteration on the host (the parameters are small: at most K^2 + K numbers). Reading: scipy rather than
``torch.optim.LBFGS`` because the latter's first ``step`` imports ``torch._dynamo`` (seconds on a loaded CPU, more
than a whole fit) and its strong-Wolfe search needs many more evaluations on ill-conditioned Dirichlet fits.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch


def minimize_lbfgs(
    loss_fn: Callable[..., torch.Tensor],
    init: Sequence[torch.Tensor],
    *,
    max_iter: int = 500,
    tol: float = 1e-7,
) -> tuple[list[torch.Tensor], int, float]:
    """Minimise ``loss_fn(*params)`` from ``init`` (float64 tensors) with scipy's L-BFGS-B, gradients by autograd.

    Stops when the largest gradient entry is at most ``tol``, the relative decrease of the loss falls below
    1e-15, or after ``max_iter`` iterations. Returns ``(params, function_evaluations, final_loss)``; the
    params are new tensors on the device and with the shapes of ``init``.
    """
    from scipy.optimize import minimize

    device = init[0].device
    shapes = [t.shape for t in init]
    sizes = [t.numel() for t in init]

    def unpack(x: np.ndarray) -> list[torch.Tensor]:
        flat = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)).to(device)
        return [c.reshape(s).clone() for c, s in zip(torch.split(flat, sizes), shapes)]

    def fun(x: np.ndarray) -> tuple[float, np.ndarray]:
        leaves = [t.requires_grad_(True) for t in unpack(x)]
        loss = loss_fn(*leaves)
        grads = torch.autograd.grad(loss, leaves)
        flat_grad = torch.cat([g.reshape(-1) for g in grads]).detach().cpu().numpy().astype(np.float64)
        return float(loss.detach()), flat_grad

    x0 = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in init]).cpu().numpy()
    res = minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-15, "maxcor": 20},
    )
    return unpack(res.x), int(res.nfev), float(res.fun)
