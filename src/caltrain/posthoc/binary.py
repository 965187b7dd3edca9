"""Binary calibrators: ``platt`` (logistic on the logit) and ``beta`` calibration.

Both take the logit ``s`` of the positive class, as ``[N]``, or two-class logits ``[N, 2]`` (then
``s = z_1 - z_0``), and predict ``[N, 2]`` probabilities ``(1 - sigma(s'), sigma(s'))`` of the calibrated
logit ``s'``; ``transform`` returns ``s'`` (``[N]`` in, ``[N]`` out; ``[N, 2]`` in, ``(0, s')`` out).

- Platt scaling (Platt 1999; Guo et al. 2017, arXiv 1706.04599, Sec. 4.1): ``s' = a s + b``, (a, b) by
  maximum likelihood. Reading: plain 0/1 targets (no Platt target smoothing), as netcal and scikit-learn.
- Beta calibration (Kull, Silva Filho, Flach 2017, "Beyond sigmoids", AISTATS; the ``abm`` family):
  ``s' = a ln p - b ln(1 - p) + c`` with ``p = sigma(s)`` (computed stably as ``ln p = -softplus(-s)``,
  ``-ln(1 - p) = softplus(s)``) and ``a, b >= 0``. As the authors' betacal package: an unconstrained logistic
  fit on the two features; if ``a < 0`` refit with ``a = 0``, else if ``b < 0`` refit with ``b = 0``.
  ``a = b`` gives Platt scaling; the map is monotone non-decreasing in s.

Both are fitted in float64 by full-batch L-BFGS (torch, autograd gradients) on the mean binary NLL
(convex).

Example:
    >>> import torch
    >>> s = torch.linspace(-4, 4, 200, dtype=torch.float64)
    >>> y = (s + 3 * torch.sin(13 * s) > 0).long()  # deterministic noisy labels
    >>> cal = PlattScaling().fit(s, y)
    >>> cal.predict_proba(s).shape, cal.transform(s).shape, sorted(cal.params_)
    (torch.Size([200, 2]), torch.Size([200]), ['a', 'b'])
"""

from __future__ import annotations

from typing import Any

import torch

from caltrain.posthoc._optim import minimize_lbfgs
from caltrain.posthoc.base import FINITE, Calibrator, Field
from caltrain.posthoc.registry import register
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["BetaCalibration", "PlattScaling", "fit_logistic"]


def fit_logistic(
    features: torch.Tensor, targets: torch.Tensor, *, max_iter: int = 200, tol: float = 1e-10
) -> tuple[torch.Tensor, float]:
    """Unregularised logistic regression: ``(coef [d], intercept)`` maximising the mean log-likelihood.

    ``features [N, d]`` float64, ``targets [N]`` in {0, 1}; starts from coef = 1, intercept = 0 (the identity
    for Platt scaling).
    """
    f = features.to(torch.float64)
    t = targets.to(torch.float64)
    coef = torch.ones(f.shape[1], dtype=torch.float64, device=f.device)
    intercept = torch.zeros((), dtype=torch.float64, device=f.device)
    (coef, intercept), _, _ = minimize_lbfgs(
        lambda c, b: torch.nn.functional.binary_cross_entropy_with_logits(f @ c + b, t),
        [coef, intercept],
        max_iter=max_iter,
        tol=tol,
    )
    return coef, float(intercept)


def _binary_logit(z: torch.Tensor) -> torch.Tensor:
    return z[:, 1] - z[:, 0]


class _BinaryCalibrator(Calibrator):
    binary_only = True
    preserves_argmax = False

    def __init__(self, *, max_iter: int = 200, tol: float = 1e-10) -> None:
        super().__init__(abstention=None)
        check_positive_int(max_iter, "max_iter")
        self.max_iter = max_iter
        check_number(tol, "tol", low=0, low_inclusive=False)
        self.tol = tol

    def _calibrated_logit(self, s: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, z: torch.Tensor) -> torch.Tensor:
        s = self._calibrated_logit(_binary_logit(z))
        return torch.stack([torch.zeros_like(s), s], dim=1)


@register("platt")
class PlattScaling(_BinaryCalibrator):
    """Platt scaling for binary outputs: ``P(y=1) = sigma(a s + b)``, s the positive-class logit (module docstring).

    Args:
        max_iter: most L-BFGS iterations (default 200). tol: gradient tolerance (default 1e-10).

    Fitted attributes: ``a_``, ``b_``.
    """

    _fitted = ("a_", "b_")
    _fields = {"a_": FINITE, "b_": FINITE}

    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> None:
        coef, intercept = fit_logistic(_binary_logit(z)[:, None], y, max_iter=self.max_iter, tol=self.tol)
        self.a_, self.b_ = float(coef[0]), intercept

    def _calibrated_logit(self, s: torch.Tensor) -> torch.Tensor:
        return self.a_ * s + self.b_

    def _params(self) -> dict[str, Any]:
        return {"a": self.a_, "b": self.b_}


def _beta_features(s: torch.Tensor) -> torch.Tensor:
    """``[ln p, -ln(1 - p)]`` of ``p = sigma(s)``, computed stably: ``[-softplus(-s), softplus(s)]``."""
    return torch.stack([-torch.nn.functional.softplus(-s), torch.nn.functional.softplus(s)], dim=1)


@register("beta")
class BetaCalibration(_BinaryCalibrator):
    """Beta calibration (abm) for binary outputs: ``P(y=1) = sigma(a ln p - b ln(1-p) + c)``, a, b >= 0.

    Kull, Silva Filho, Flach 2017 ("Beyond sigmoids"); the constraint handling of the authors' betacal
    package (module docstring).

    Args:
        max_iter, tol: as :class:`PlattScaling`.

    Fitted attributes: ``a_``, ``b_``, ``c_``.
    """

    _fitted = ("a_", "b_", "c_")
    _fields = {"a_": Field("number", low=0.0), "b_": Field("number", low=0.0), "c_": FINITE}  # a, b >= 0

    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> None:
        feats = _beta_features(_binary_logit(z))
        coef, c = fit_logistic(feats, y, max_iter=self.max_iter, tol=self.tol)
        a, b = coef.tolist()
        if a < 0:
            coef1, c = fit_logistic(feats[:, 1:], y, max_iter=self.max_iter, tol=self.tol)
            a, b = 0.0, float(coef1[0])
        elif b < 0:
            coef1, c = fit_logistic(feats[:, :1], y, max_iter=self.max_iter, tol=self.tol)
            a, b = float(coef1[0]), 0.0
        self.a_, self.b_, self.c_ = a, b, c

    def _calibrated_logit(self, s: torch.Tensor) -> torch.Tensor:
        f = _beta_features(s)
        return self.a_ * f[:, 0] + self.b_ * f[:, 1] + self.c_

    def _params(self) -> dict[str, Any]:
        return {"a": self.a_, "b": self.b_, "c": self.c_}
