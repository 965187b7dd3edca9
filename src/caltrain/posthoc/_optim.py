"""Full-batch L-BFGS in float64 for the smooth, convex calibration objectives (private to posthoc)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch


def minimize_lbfgs(
    loss_fn: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    *,
    max_iter: int = 500,
    tol: float = 1e-7,
) -> tuple[int, float]:
    """Minimise ``loss_fn()`` over ``params`` (leaf float64 tensors, modified in place) with L-BFGS.

    Strong-Wolfe line search, history 20, stopping when the largest gradient entry is below ``tol`` or a
    step changes the loss by less than ``1e-15``. Returns ``(function evaluations, final loss)``.
    """
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.LBFGS(
        list(params),
        lr=1.0,
        max_iter=max_iter,
        max_eval=2 * max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-15,
        history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=False)
        loss = loss_fn()
        loss.backward()
        return loss

    opt.step(closure)
    state = opt.state[opt._params[0]]
    with torch.no_grad():
        final = float(loss_fn())
    for p in params:
        p.requires_grad_(False)
    return int(state.get("func_evals", 0)), final
