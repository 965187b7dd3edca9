"""Temperature scaling: ``ts`` (fitted on validation NLL, exactly) and ``ts-grid-ece`` (grid by validation ECE).

Temperature scaling (Guo, Pleiss, Sun, Weinberger 2017, "On Calibration of Modern Neural Networks",
arXiv 1706.04599, Sec. 4.2) divides every logit by one scalar T > 0: ``q = softmax(z / T)``. The argmax never
changes. T = 1 is the identity.

Fitting (``ts``). With ``beta = 1/T`` the validation NLL

    L(beta) = (1/N) sum_i [ logsumexp_k(beta z_ik) - beta z_i,y_i ]

is convex in beta (a log-sum-exp of linear functions of beta), with

    L'(beta)  = (1/N) sum_i ( E_{q_i}[z_i] - z_i,y_i ),      L''(beta) = (1/N) sum_i Var_{q_i}[z_i] >= 0,

where ``q_i = softmax(beta z_i)`` and the expectation and variance are over classes k with weights q_ik. L' is
non-decreasing, so the optimum is the unique root of L' in the bracket ``[1/t_max, 1/t_min]`` (or the bound
where L' does not change sign). :func:`fit_temperature` finds it with a safeguarded Newton iteration (Newton
steps that leave the current bracket are replaced by bisection; the bracket shrinks at every step), all in
float64. This is exact to ``tol`` in a handful of passes over the data, needs no learning rate, and cannot
diverge, unlike LBFGS on T (non-convex in T, and it stalls on flat regions for very over-confident models).

``ts-grid-ece``: what the focal-loss papers report as "after TS" (Mukhoti et al. 2020, arXiv 2002.09437, their
public code): T on a grid 0.1, 0.2, ..., 10.0 chosen by the lowest validation ECE (15 equal-width bins), ties
to the smaller T. It minimises a binned metric on the same data it reports, so its validation ECE is
optimistic; prefer ``ts`` unless reproducing those tables.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np
import torch

from caltrain.posthoc.base import ITERATIONS, Calibrator, Field, positive_temperature
from caltrain.posthoc.registry import register
from caltrain.utils.checks import check_number, check_n_bins

__all__ = ["GridECETemperatureScaling", "TemperatureScaling", "fit_temperature", "temperature_nll"]

#: Rows of the strided subset that warm-starts the search on large validation sets.
WARM_START_ROWS = 2048
#: The grid of ``ts-grid-ece``: 0.1, 0.2, ..., 10.0 (Mukhoti et al. 2020's code).
DEFAULT_GRID = tuple(round(0.1 * i, 1) for i in range(1, 101))


def temperature_nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float) -> float:
    """Mean NLL of ``softmax(logits / temperature)`` in float64 (``logits [N, K]``, ``labels [N]`` int64)."""
    z = logits.to(torch.float64) / temperature
    return float(torch.nn.functional.cross_entropy(z, labels))


def _nll_derivatives(z: torch.Tensor, y: torch.Tensor, beta: float) -> tuple[float, float]:
    """(L'(beta), L''(beta)) of the mean NLL of softmax(beta z), one pass over ``z`` (float64)."""
    q = torch.softmax(beta * z, dim=1)
    mean_z = (q * z).sum(dim=1)
    var_z = (q * (z - mean_z[:, None]).square()).sum(dim=1)
    grad = (mean_z - z.gather(1, y[:, None])[:, 0]).mean()
    both = torch.stack([grad, var_z.mean()]).tolist()  # one host sync for both numbers
    return both[0], both[1]


def fit_temperature(
    logits: torch.Tensor,
    labels: torch.Tensor,
    *,
    t_min: float = 0.01,
    t_max: float = 100.0,
    tol: float = 1e-10,
    max_iter: int = 100,
) -> tuple[float, int, bool]:
    """The temperature T minimising the validation NLL of ``softmax(logits / T)``, over ``[t_min, t_max]``.

    Safeguarded Newton on ``L'(beta) = 0``, ``beta = 1/T`` (module docstring for the math), float64. Above
    4096 rows the start point comes from the same search on a strided subset of 2048 rows (only the start).

    Args:
        logits: ``[N, K]`` float logits (converted to float64).
        labels: ``[N]`` int64 labels in ``[0, K)``.
        t_min, t_max: the bracket on T (default 0.01 and 100).
        tol: stop when a step changes beta by at most ``tol * beta`` (or L' is exactly 0).
        max_iter: most Newton/bisection steps (bisection alone would reach 1e-10 in about 40).

    Returns:
        ``(temperature, iterations, at_bound)``; ``at_bound`` is true when the optimum lies at or beyond a
        bracket end (the NLL keeps decreasing towards ``t_min`` when every validation sample is classified
        correctly, towards ``t_max`` when the logits carry no information).
    """
    z = logits.to(torch.float64)
    lo, hi = 1.0 / t_max, 1.0 / t_min
    beta = min(max(1.0, lo), hi)
    n_iter = 0
    n = z.shape[0]
    if n > 2 * WARM_START_ROWS:
        # warm start: the same search on an evenly strided subset (a few cheap passes) lands within about a
        # percent of the optimum, from where full-data Newton needs 2-3 passes instead of 5-7; the full-data
        # search below is unchanged, so the result is the same to tol
        stride = n // WARM_START_ROWS
        t_sub, _, _ = fit_temperature(z[::stride], labels[::stride], t_min=t_min, t_max=t_max, tol=1e-4)
        beta = min(max(1.0 / t_sub, lo), hi)
    for _ in range(max_iter):
        g, h = _nll_derivatives(z, labels, beta)
        n_iter += 1
        if g == 0:
            break
        # L' is non-decreasing: the root lies below beta if L'(beta) > 0, above it otherwise
        if g > 0:
            hi = beta
        else:
            lo = beta
        step = g / h if h > 0 else math.nan
        if abs(step) <= tol * beta:  # converged: accept the last Newton step whatever the bracket says
            beta = min(max(beta - step, 1.0 / t_max), 1.0 / t_min)
            break
        new = beta - step
        if not (lo < new < hi):
            new = 0.5 * (lo + hi)
        done = abs(new - beta) <= tol * beta
        beta = new
        if done:
            break
    # the bracket ends are never evaluated up front: a root outside the bracket shows as convergence onto an
    # end with L' still pointing outwards (checked with one more pass at that end)
    for end, outward in ((1.0 / t_min, -1.0), (1.0 / t_max, 1.0)):
        if abs(beta - end) <= 1e-6 * end:
            g_end, _ = _nll_derivatives(z, labels, end)
            n_iter += 1
            if g_end * outward >= 0:
                return 1.0 / end, n_iter, True
    return 1.0 / beta, n_iter, False


@register("ts")
class TemperatureScaling(Calibrator):
    """Temperature scaling fitted on validation NLL: ``q = softmax(z / T)``, one scalar T > 0.

    Guo et al. 2017 (arXiv 1706.04599). T is found exactly (to ``tol``) by :func:`fit_temperature`: a bracketed,
    safeguarded Newton iteration on ``1/T`` in float64, where the NLL is convex (module docstring).

    Args:
        t_min, t_max: the search bracket on T (default 0.01..1000); an optimum at a bound gives a warning.
        tol: relative tolerance on 1/T (default 1e-10).
        abstention: ``None``, ``"with_unknown"`` or ``"renormalized"`` (see :mod:`caltrain.posthoc.base`).

    Fitted attributes: ``temperature_`` (float), ``n_iter_`` (passes over the data).

    Example:
        >>> import torch
        >>> from caltrain.posthoc import TemperatureScaling
        >>> g = torch.Generator().manual_seed(0)
        >>> z = torch.randn(4000, 5, generator=g, dtype=torch.float64) * 2
        >>> y = torch.multinomial(torch.softmax(z, 1), 1, generator=g)[:, 0]
        >>> round(TemperatureScaling().fit(3 * z, y).temperature_, 1)  # the logits were 3x too sharp
        3.0
    """

    preserves_argmax = True
    _fitted = ("temperature_", "n_iter_")
    _fields = {
        "temperature_": positive_temperature(lambda c: c.t_min, lambda c: c.t_max),
        "n_iter_": ITERATIONS,
    }

    def __init__(
        self,
        *,
        t_min: float = 0.01,
        t_max: float = 1000.0,
        tol: float = 1e-10,
        abstention: str | None = None,
    ) -> None:
        super().__init__(abstention=abstention)
        check_number(t_min, "t_min", low=0, low_inclusive=False)
        self.t_min = t_min
        check_number(t_max, "t_max", low=self.t_min, low_inclusive=False)
        self.t_max = t_max
        check_number(tol, "tol", low=0, low_inclusive=False)
        self.tol = tol

    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> None:
        t, n_iter, at_bound = fit_temperature(z, y, t_min=self.t_min, t_max=self.t_max, tol=self.tol)
        if at_bound:
            why = (
                "every validation sample is classified correctly, or the logits are under-confident beyond the "
                "bracket: lower t_min"
                if t == self.t_min
                else "the logits are over-confident beyond the bracket (e.g. un-normalised LogitNorm outputs) or "
                "carry no information: raise t_max"
            )
            warnings.warn(
                f"ts: the NLL-optimal temperature is at the bound {t:g} of [t_min, t_max] = "
                f"[{self.t_min:g}, {self.t_max:g}]; {why}",
                RuntimeWarning,
                stacklevel=3,
            )
        self.temperature_ = t
        self.n_iter_ = n_iter

    def _transform(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.temperature_

    def _params(self) -> dict[str, float]:
        return {"temperature": self.temperature_}


@register("ts-grid-ece")
class GridECETemperatureScaling(Calibrator):
    """Temperature scaling with T picked on a grid by validation ECE (the focal-loss papers' "after TS").

    ``T* = argmin_{T in grid} ECE(softmax(z / T), y)``, ECE from :func:`caltrain.metrics.expected_calibration_error`
    with ``n_bins`` bins (default 15, equal-width, L1), the first (smallest) T on ties. Mukhoti et al. 2020
    (arXiv 2002.09437), their public code: grid 0.1..10.0 step 0.1.

    Args:
        grid: the candidate temperatures (default 0.1, 0.2, ..., 10.0), all > 0.
        n_bins: ECE bins (default 15).
        binning: ECE binning, passed to the metric (default ``"uniform"``: equal-width).
        abstention: see :mod:`caltrain.posthoc.base`.

    Fitted attributes: ``temperature_``, ``ece_`` (the validation ECE at ``temperature_``).
    """

    preserves_argmax = True
    _fitted = ("temperature_", "ece_")
    _fields = {
        "temperature_": positive_temperature(lambda c: min(c.grid), lambda c: max(c.grid)),
        "ece_": Field("number", low=0.0, high=1.0),
    }

    def __init__(
        self,
        *,
        grid: Sequence[float] = DEFAULT_GRID,
        n_bins: int = 15,
        binning: str = "uniform",
        abstention: str | None = None,
    ) -> None:
        super().__init__(abstention=abstention)
        if not isinstance(grid, (list, tuple, np.ndarray)):  # an iterator would be spent by the check below
            grid = tuple(grid)
        for t in grid:
            check_number(t, "grid", low=0, low_inclusive=False)
        if not len(grid):
            raise ValueError("grid: expected at least one temperature > 0, got an empty grid")
        self.grid = grid  # stored as given (scikit-learn's clone needs the very object back)
        check_n_bins(n_bins)
        self.n_bins = n_bins
        if not isinstance(binning, str):
            raise ValueError(f"binning: expected a binning name of caltrain.metrics, got {binning!r}")
        self.binning = binning

    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> None:
        from caltrain.metrics import expected_calibration_error

        eces = []
        for t in self.grid:
            probs = torch.softmax(z / t, dim=1)
            eces.append(
                expected_calibration_error(probs, y, n_bins=self.n_bins, binning=self.binning, validate_args=False)
            )
        values = torch.stack([torch.as_tensor(e, dtype=torch.float64).reshape(()).cpu() for e in eces])
        best = int(torch.argmin(values))  # the first minimum: the smallest T on ties (grid order)
        self.temperature_ = float(self.grid[best])
        self.ece_ = float(values[best])

    def _transform(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.temperature_

    def _params(self) -> dict[str, Any]:
        return {"temperature": self.temperature_, "ece": self.ece_}
