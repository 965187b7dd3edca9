"""Linear calibration maps: ``vector`` and ``matrix`` scaling, ``dirichlet`` calibration with ODIR.

All three map features ``f in R^K`` of a sample to calibrated logits ``s = W f + b`` and predict
``q = softmax(s)``, fitted by minimising, in float64 with full-batch L-BFGS from the identity map,

    J(W, b) = (1/N) sum_i -log softmax(W f_i + b)_{y_i}
              + lambda / (K (K-1)) * sum_{j != k} W_jk^2 + mu / K * sum_k b_k^2          (ODIR)

- ``vector`` (Guo et al. 2017, arXiv 1706.04599, Sec. 4.2): ``f = z`` and W diagonal (2K parameters);
- ``matrix`` (same paper): ``f = z``, W full (K^2 + K parameters); with ``reg_lambda > 0`` this is MS-ODIR;
- ``dirichlet`` (Kull et al. 2019, "Beyond temperature scaling", arXiv 1910.12656, Sec. 3-4): ``f = log p``,
  ``p = softmax(z)``, W full, with ODIR (Off-Diagonal and Intercept Regularisation, their Eq. in Sec. 4): the
  off-diagonal entries of W and the intercepts are penalised, the diagonal is not.

Reading: the paper chooses lambda and mu by cross-validation on a log grid; we default ``dirichlet`` to
``reg_lambda = 0.01`` and ``reg_mu = reg_lambda`` (a mild setting: tune it for K = 100) and ``matrix`` to no
regularisation, as Guo et al. Matrix scaling has K^2 + K parameters and over-fits small validation sets (Guo
et al. saw it fail on CIFAR-100): a fit on fewer than 10 samples per parameter warns. The penalty is a mean over
the K(K-1) off-diagonal entries, so at K = 100 a useful lambda is large (measured on 10,000 x 100 synthetic
logits: lambda = 1000 still over-fits; see BENCHMARKS.md).

Example:
    >>> import torch
    >>> z = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [2.0, 0.0, 0.0]]).repeat(20, 1)
    >>> cal = VectorScaling().fit(z, torch.tensor([0, 1, 2, 1]).repeat(20))
    >>> cal.predict_proba(z).shape, tuple(cal.weight_.shape), cal.is_logit_map
    (torch.Size([80, 3]), (3,), True)
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from caltrain.posthoc._optim import minimize_lbfgs
from caltrain.posthoc.base import FINITE, ITERATIONS, Calibrator, Field
from caltrain.posthoc.registry import register
from caltrain.utils.checks import check_choice, check_number, check_positive_int

__all__ = [
    "DirichletCalibration",
    "MatrixScaling",
    "VectorScaling",
    "fit_linear_calibration",
    "linear_calibration_loss",
]

STRUCTURES = ("vector", "matrix")
#: Below this many validation samples per free parameter an unregularised fit warns.
SAMPLES_PER_PARAMETER = 10


def _apply(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    if weight.ndim == 1:
        return features * weight + bias
    return features @ weight.T + bias


def linear_calibration_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    reg_lambda: float = 0.0,
    reg_mu: float = 0.0,
) -> torch.Tensor:
    """``J(W, b)`` of the module docstring: mean NLL of ``softmax(W f + b)`` plus the ODIR penalty.

    Args:
        features: ``[N, K]`` float64 features f (logits, or log-probabilities for Dirichlet calibration).
        labels: ``[N]`` int64.
        weight: ``[K]`` (diagonal, vector scaling: no off-diagonal term) or ``[K, K]``.
        bias: ``[K]``.
        reg_lambda, reg_mu: ODIR weights lambda (off-diagonal entries of W) and mu (intercepts).
    """
    k = features.shape[1]
    loss = torch.nn.functional.cross_entropy(_apply(features, weight, bias), labels)
    if reg_lambda and weight.ndim == 2:
        off = weight - torch.diag(torch.diagonal(weight))
        loss = loss + reg_lambda * off.square().sum() / (k * (k - 1))
    if reg_mu:
        loss = loss + reg_mu * bias.square().sum() / k
    return loss


def fit_linear_calibration(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    structure: str = "matrix",
    reg_lambda: float = 0.0,
    reg_mu: float = 0.0,
    max_iter: int = 500,
    tol: float = 1e-7,
) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """Fit ``W, b`` minimising :func:`linear_calibration_loss` from the identity (W = I, b = 0), float64 L-BFGS.

    Returns ``(weight, bias, function_evaluations, final_objective)``; ``weight`` is ``[K]`` for
    ``structure="vector"`` and ``[K, K]`` for ``"matrix"``.
    """
    check_choice(structure, "structure", STRUCTURES)
    f = features.to(torch.float64)
    k = f.shape[1]
    # Diagonal preconditioning: optimise W~ = W * s (column j scaled by the spread s_j of feature j), so L-BFGS
    # sees unit-scale features; the objective is unchanged (the penalty acts on W = W~ / s).
    scale = f.std(dim=0).clamp(min=1e-6) if f.shape[0] > 1 else torch.ones(k, dtype=torch.float64, device=f.device)
    if structure == "vector":
        init_w = scale.clone()
    else:
        init_w = torch.diag(scale)
    bias = torch.zeros(k, dtype=torch.float64, device=f.device)
    (scaled_w, bias), n_eval, final = minimize_lbfgs(
        lambda w, b: linear_calibration_loss(f, labels, w / scale, b, reg_lambda=reg_lambda, reg_mu=reg_mu),
        [init_w, bias],
        max_iter=max_iter,
        tol=tol,
    )
    weight = scaled_w / scale
    return weight, bias, n_eval, final


class _LinearCalibrator(Calibrator):
    """Shared shell of the three linear maps (``_structure``, ``_features``)."""

    _structure: str = "matrix"
    _fitted = ("weight_", "bias_", "n_iter_", "loss_")
    _fields = {
        "weight_": Field("array", shape=lambda c, k: (k,) if c._structure == "vector" else (k, k)),
        "bias_": Field("array", shape=lambda c, k: (k,)),
        "n_iter_": ITERATIONS,
        "loss_": FINITE,
    }

    def __init__(
        self,
        *,
        reg_lambda: float = 0.0,
        reg_mu: float | None = None,
        max_iter: int = 500,
        tol: float = 1e-7,
        abstention: str | None = None,
    ) -> None:
        super().__init__(abstention=abstention)
        check_number(reg_lambda, "reg_lambda", low=0)
        self.reg_lambda = reg_lambda
        if reg_mu is not None:
            check_number(reg_mu, "reg_mu", low=0)
        self.reg_mu = reg_mu
        check_positive_int(max_iter, "max_iter")
        self.max_iter = max_iter
        check_number(tol, "tol", low=0, low_inclusive=False)
        self.tol = tol

    def _features(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> None:
        n, k = z.shape
        mu = self.reg_lambda if self.reg_mu is None else self.reg_mu
        n_params = 2 * k if self._structure == "vector" else k * k + k
        if n < SAMPLES_PER_PARAMETER * n_params:
            reg = f" with reg_lambda={self.reg_lambda:g}" if self._structure == "matrix" else ""
            warnings.warn(
                f"{self.name}: {n_params} parameters fitted on {n} validation samples "
                f"(fewer than {SAMPLES_PER_PARAMETER} per parameter){reg}: expect over-fitting unless the "
                f"off-diagonal regularisation is strong (reg_lambda of order K^2 = {k * k}); prefer 'ts' or "
                "'vector', or tune reg_lambda on held-out data",
                RuntimeWarning,
                stacklevel=3,
            )
        w, b, n_eval, loss = fit_linear_calibration(
            self._features(z),
            y,
            structure=self._structure,
            reg_lambda=self.reg_lambda,
            reg_mu=mu,
            max_iter=self.max_iter,
            tol=self.tol,
        )
        self.weight_, self.bias_, self.n_iter_, self.loss_ = w, b, n_eval, loss

    def _transform(self, z: torch.Tensor) -> torch.Tensor:
        return _apply(self._features(z), self.weight_.to(z.device), self.bias_.to(z.device))

    def _params(self) -> dict[str, Any]:
        w = self.weight_ if self.weight_.ndim == 1 else torch.diagonal(self.weight_)
        out = {
            "n_parameters": int(self.weight_.numel() + self.bias_.numel()),
            "objective": self.loss_,
            "n_evaluations": self.n_iter_,
            "diagonal_mean": float(w.mean()),
            "bias_l2": float(self.bias_.norm()),
        }
        if self.weight_.ndim == 2:
            off = self.weight_ - torch.diag(torch.diagonal(self.weight_))
            out["off_diagonal_l2"] = float(off.norm())
        return out


@register("vector")
class VectorScaling(_LinearCalibrator):
    """Vector scaling: ``q = softmax(w * z + b)``, w, b in R^K (Guo et al. 2017, arXiv 1706.04599).

    Fitted on validation NLL with float64 L-BFGS from w = 1, b = 0 (:mod:`caltrain.posthoc.linear`). Can change
    the argmax (the bias and per-class scales re-rank classes).

    Args:
        reg_mu: L2 weight mu on the intercepts, ``mu / K * sum b^2`` (default 0).
        max_iter: most L-BFGS iterations (default 500). tol: gradient tolerance (default 1e-7).
        abstention: see :mod:`caltrain.posthoc.base`.

    Fitted attributes: ``weight_ [K]``, ``bias_ [K]``, ``n_iter_`` (function evaluations), ``loss_``.
    """

    _structure = "vector"

    def __init__(
        self,
        *,
        reg_mu: float = 0.0,
        max_iter: int = 500,
        tol: float = 1e-7,
        abstention: str | None = None,
    ) -> None:
        super().__init__(reg_lambda=0.0, reg_mu=reg_mu, max_iter=max_iter, tol=tol, abstention=abstention)


@register("matrix")
class MatrixScaling(_LinearCalibrator):
    """Matrix scaling: ``q = softmax(W z + b)``, W in R^{KxK} (Guo et al. 2017); MS-ODIR with ``reg_lambda > 0``.

    ODIR (Kull et al. 2019, arXiv 1910.12656): ``lambda/(K(K-1)) sum_{j!=k} W_jk^2 + mu/K sum b_k^2``. Fitted on
    validation NLL with float64 L-BFGS from W = I, b = 0. Warns with fewer than 10 validation samples per
    parameter (K = 100 has 10,100 parameters).

    Args:
        reg_lambda: lambda (default 0: plain matrix scaling). reg_mu: mu (default None: equal to reg_lambda).
        max_iter, tol, abstention: as :class:`VectorScaling`.

    Fitted attributes: ``weight_ [K, K]``, ``bias_ [K]``, ``n_iter_``, ``loss_``.
    """

    _structure = "matrix"


@register("dirichlet")
class DirichletCalibration(_LinearCalibrator):
    """Dirichlet calibration with ODIR: ``q = softmax(W log softmax(z) + b)`` (Kull et al. 2019, arXiv 1910.12656).

    A matrix map on log-probabilities, fitted on validation NLL plus the ODIR penalty
    ``lambda/(K(K-1)) sum_{j!=k} W_jk^2 + mu/K sum b_k^2`` with float64 L-BFGS from W = I, b = 0 (the identity:
    the uncalibrated probabilities).

    Args:
        reg_lambda: lambda (default 0.01; the paper cross-validates it, Reading in the module docstring).
        reg_mu: mu (default None: equal to reg_lambda, as the authors' dirichletcal package).
        max_iter, tol, abstention: as :class:`VectorScaling`.

    Fitted attributes: ``weight_ [K, K]``, ``bias_ [K]``, ``n_iter_``, ``loss_``.
    """

    _structure = "matrix"

    def __init__(
        self,
        *,
        reg_lambda: float = 0.01,
        reg_mu: float | None = None,
        max_iter: int = 500,
        tol: float = 1e-7,
        abstention: str | None = None,
    ) -> None:
        super().__init__(reg_lambda=reg_lambda, reg_mu=reg_mu, max_iter=max_iter, tol=tol, abstention=abstention)

    def _features(self, z: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(z, dim=1)
