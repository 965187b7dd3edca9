"""``isotonic``: one-vs-rest isotonic regression, renormalised (Zadrozny & Elkan 2002; Guo et al. 2017 Sec. 4.1).

For every class k, a non-decreasing map ``g_k: [0, 1] -> [0, 1]`` is fitted to the pairs
``(p_ik, 1[y_i = k])``, ``p = softmax(z)``, by least squares (pool-adjacent-violators,
``sklearn.isotonic.IsotonicRegression``), then ``q_ik = g_k(p_ik) / sum_j g_j(p_ij)`` (all-zero rows: 1/K).
``g_k`` is the piecewise-linear interpolation between the fitted thresholds, constant outside them
(scikit-learn's ``out_of_bounds="clip"``). The thresholds are stored as padded ``[K, L]`` tensors, so
prediction needs neither scikit-learn nor a per-class loop (one batched ``searchsorted``); fitting loops over
the K classes (one PAV each). Not a logit map; the argmax can change.

A fitted ``g_k`` is 0 below the first validation sample of class k, so a true class can get probability 0: the
output is smoothed as :func:`caltrain.posthoc.histogram.smooth`, ``q = (1 - eps) q + eps / K`` with
``eps = smoothing`` (default 1e-3, a floor eps / K on every probability; the NLL reported is that of the
smoothed probabilities; ``smoothing=0`` gives scikit-learn's raw maps, and zero probabilities).

Example:
    >>> import torch
    >>> batched_interp(torch.tensor([[0.25, 2.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 2.0]])).tolist()
    [[0.5, 2.0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from caltrain.posthoc.base import Calibrator, Field
from caltrain.posthoc.histogram import DEFAULT_SMOOTHING, check_smoothing, one_vs_rest_normalize, smooth
from caltrain.posthoc.registry import register

__all__ = ["IsotonicCalibration", "batched_interp"]


def batched_interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Row-wise ``numpy.interp``: ``x [K, N]`` at knots ``xp [K, L]`` (non-decreasing rows) with values ``fp [K, L]``.

    Values outside ``[xp[:, 0], xp[:, -1]]`` take the end values; repeated knots (padding) are handled.
    """
    x = x.contiguous()
    n_knots = xp.shape[1]
    if n_knots == 1:
        return fp[:, :1].expand_as(x).clone()
    hi = torch.searchsorted(xp.contiguous(), x, right=True).clamp(1, n_knots - 1)
    lo = hi - 1
    x0, x1 = xp.gather(1, lo), xp.gather(1, hi)
    y0, y1 = fp.gather(1, lo), fp.gather(1, hi)
    dx = x1 - x0
    frac = torch.where(dx > 0, (x - x0) / dx.clamp(min=torch.finfo(xp.dtype).tiny), torch.ones_like(x))
    out = y0 + frac.clamp(0, 1) * (y1 - y0)
    out = torch.where(x <= xp[:, :1], fp[:, :1], out)
    return torch.where(x >= xp[:, -1:], fp[:, -1:], out)


@register("isotonic")
class IsotonicCalibration(Calibrator):
    """One-vs-rest isotonic regression on softmax probabilities, renormalised (module docstring).

    Needs scikit-learn to fit (the ``sklearn`` extra); prediction is pure torch.

    Args:
        smoothing: eps, the weight of the uniform distribution mixed in (default 1e-3; 0: none, module docstring).
        abstention: see :mod:`caltrain.posthoc.base`.

    Fitted attributes: ``thresholds_x_``, ``thresholds_y_`` ``[K, L]`` (knots, padded by repeating the last).
    """

    is_logit_map = False
    _fitted = ("thresholds_x_", "thresholds_y_")
    # knots: probabilities in [0, 1], sorted along each row; values: a non-decreasing map into [0, 1]
    _fields = {
        "thresholds_x_": Field("array", shape=lambda c, k: (k, None), low=0.0, high=1.0, nondecreasing=True),
        "thresholds_y_": Field("array", shape=lambda c, k: (k, None), low=0.0, high=1.0, nondecreasing=True),
    }

    def __init__(self, *, smoothing: float = DEFAULT_SMOOTHING, abstention: str | None = None) -> None:
        super().__init__(abstention=abstention)
        check_smoothing(smoothing)
        self.smoothing = smoothing

    def _check_fields(self, values: dict[str, Any]) -> None:
        if values["thresholds_x_"].shape != values["thresholds_y_"].shape:
            raise ValueError(
                f"fitted['thresholds_y_']: expected the shape of thresholds_x_ {list(values['thresholds_x_'].shape)}, "
                f"got {list(values['thresholds_y_'].shape)}"
            )

    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> None:
        from sklearn.isotonic import IsotonicRegression

        k = z.shape[1]
        p = torch.softmax(z, dim=1).cpu().numpy()
        y_np = y.cpu().numpy()
        knots = []
        for c in range(k):
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
            iso.fit(p[:, c], (y_np == c).astype(np.float64))
            knots.append((np.asarray(iso.X_thresholds_, np.float64), np.asarray(iso.y_thresholds_, np.float64)))
        length = max(len(x) for x, _ in knots)
        xs = np.stack([np.pad(x, (0, length - len(x)), mode="edge") for x, _ in knots])
        ys = np.stack([np.pad(v, (0, length - len(v)), mode="edge") for _, v in knots])
        self.thresholds_x_ = torch.from_numpy(xs)
        self.thresholds_y_ = torch.from_numpy(ys)

    def _predict_proba(self, z: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(z, dim=1)
        scores = batched_interp(p.T, self.thresholds_x_.to(z.device), self.thresholds_y_.to(z.device)).T
        return smooth(one_vs_rest_normalize(scores), self.smoothing)

    def _params(self) -> dict[str, Any]:
        return {"max_knots": int(self.thresholds_x_.shape[1]), "smoothing": float(self.smoothing)}
