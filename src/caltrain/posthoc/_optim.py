"""Full-batch L-BFGS in float64 for the smooth, convex calibration objectives (private to posthoc).

A small L-BFGS (two-loop recursion, history 20, Armijo backtracking from the unit step) that runs entirely in
torch on the parameters' device. Reading: not ``torch.optim.LBFGS`` because its first ``step`` imports
``torch._dynamo`` (seconds, more than a whole fit), and not scipy's L-BFGS-B because its BLAS threads stall on
a loaded CPU (4 ms of bookkeeping per iteration for 20 parameters, profiled) and it needs a host round trip per
evaluation. The objectives here are convex, so every accepted step has ``s^T y >= 0`` and backtracking
suffices.

Example:
    >>> import torch
    >>> init = [torch.zeros(2, dtype=torch.float64)]
    >>> (a,), iterations, loss = minimize_lbfgs(lambda a: ((a - 3.0) ** 2).sum(), init)
    >>> a.tolist(), loss
    ([3.0, 3.0], 0.0)
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch


def minimize_lbfgs(
    loss_fn: Callable[..., torch.Tensor],
    init: Sequence[torch.Tensor],
    *,
    max_iter: int = 500,
    tol: float = 1e-7,
    history: int = 20,
    ftol: float = 1e-15,
    with_grad: bool = False,
) -> tuple[list[torch.Tensor], int, float]:
    """Minimise ``loss_fn(*params)`` from ``init`` (float64 tensors), gradients by autograd.

    With ``with_grad=True`` ``loss_fn(*params)`` returns ``(loss, [gradient of each param])`` itself (an analytic
    gradient: no autograd graph is built).

    Stops when the largest gradient entry is at most ``tol``, a step lowers the loss by at most
    ``ftol * max(1, |loss|)``, or after ``max_iter`` iterations. Returns ``(params, function_evaluations,
    final_loss)``; the params are new tensors with the shapes of ``init``, on its device.
    """
    shapes = [t.shape for t in init]
    sizes = [t.numel() for t in init]

    def unpack(x: torch.Tensor) -> list[torch.Tensor]:
        return [c.reshape(s) for c, s in zip(torch.split(x, sizes), shapes)]

    def value_and_grad(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if with_grad:
            loss, grads = loss_fn(*unpack(x))
            return loss.detach(), torch.cat([g.reshape(-1) for g in grads])
        leaf = x.detach().requires_grad_(True)
        loss = loss_fn(*unpack(leaf))
        (grad,) = torch.autograd.grad(loss, leaf)
        return loss.detach(), grad

    x = torch.cat([t.detach().reshape(-1).to(torch.float64) for t in init])
    f, g = value_and_grad(x)
    n_eval = 1
    s_hist: list[torch.Tensor] = []
    y_hist: list[torch.Tensor] = []
    rho_hist: list[torch.Tensor] = []
    for _ in range(max_iter):
        if float(g.abs().max()) <= tol:
            break
        # two-loop recursion: d = -H g
        q = g.clone()
        alphas = []
        for s, y, rho in zip(reversed(s_hist), reversed(y_hist), reversed(rho_hist)):
            a = rho * (s @ q)
            q -= a * y
            alphas.append(a)
        if s_hist:
            q *= (s_hist[-1] @ y_hist[-1]) / (y_hist[-1] @ y_hist[-1])
        for (s, y, rho), a in zip(zip(s_hist, y_hist, rho_hist), reversed(alphas)):
            b = rho * (y @ q)
            q += (a - b) * s
        d = -q
        slope = float(g @ d)
        if slope >= 0:  # not a descent direction (numerical trouble): restart from steepest descent
            s_hist, y_hist, rho_hist = [], [], []
            d = -g
            slope = float(g @ d)
        step = 1.0 if s_hist else min(1.0, 1.0 / max(float(g.abs().sum()), 1e-300))
        f_val = float(f)
        while True:
            x_new = x + step * d
            f_new, g_new = value_and_grad(x_new)
            n_eval += 1
            f_new_val = float(f_new)
            if f_new_val <= f_val + 1e-4 * step * slope or step < 1e-20:
                break
            step *= 0.5
        s, y = x_new - x, g_new - g
        sy = s @ y
        if float(sy) > 1e-300:
            s_hist.append(s)
            y_hist.append(y)
            rho_hist.append(1.0 / sy)
            if len(s_hist) > history:
                s_hist.pop(0), y_hist.pop(0), rho_hist.pop(0)
        decrease = f_val - f_new_val
        x, f, g = x_new, f_new, g_new
        if decrease <= ftol * max(1.0, abs(f_new_val)):
            break
    return unpack(x.detach()), n_eval, float(f)
