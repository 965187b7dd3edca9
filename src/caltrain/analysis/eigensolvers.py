"""The top eigenvalue of a symmetric linear operator known only through its products A v.

Two matrix-free solvers, registered by name in :data:`EIGENSOLVERS`:

- ``"lanczos"`` (default everywhere in caltrain): the Lanczos process with full reorthogonalisation
  builds an orthonormal Krylov basis Q_k = [q_1 .. q_k] of span{v0, A v0, ..., A^{k-1} v0} and the
  tridiagonal T_k = Q_k^T A Q_k; the largest eigenvalue theta of T_k (a Ritz value) estimates
  lambda_max(A), its Ritz vector y = Q_k s the eigenvector. It returns the *algebraically* largest
  eigenvalue (the right one for an indefinite Hessian) and converges much faster than power iteration
  when the top of the spectrum is crowded (Golub & Van Loan, Matrix Computations, sec. 10.1).
  Memory: k vectors of size P.
- ``"power"``: power iteration v <- A v / ||A v||, estimate = Rayleigh quotient v^T A v. It converges to
  the eigenvalue of largest *magnitude* (so, for an indefinite matrix, possibly a negative one) at rate
  |lambda_2 / lambda_1| per product. Memory: two vectors.

Both stop when the residual r = ||A y - theta y|| of the current estimate satisfies r <= tol |theta|, or
after ``iters`` products. For a symmetric A some eigenvalue lies within r of theta, so ``residual`` is an
error bar (it bounds the distance to *an* eigenvalue, the top one once the estimate has converged).
Each iteration reads two scalars on the host (the convergence test); the products dominate the cost.
"""

from __future__ import annotations

import math
from typing import Callable
from dataclasses import dataclass

import numpy as np
import torch

from caltrain.analysis.evaluation_set import evaluation_set
from caltrain.analysis.functional_model import FunctionalModel, MatVec
from caltrain.utils.checks import check_number, check_positive_int
from caltrain.utils.registry import Registry

__all__ = [
    "EIGENSOLVERS",
    "EigenEstimate",
    "lanczos",
    "model_top_eigenvalue",
    "power_iteration",
    "top_eigenvalue",
]

#: Matrix-free top-eigenvalue solvers by name: ``solver(matvec, v0, *, iters, tol) -> EigenEstimate``.
EIGENSOLVERS: Registry = Registry("eigensolver")


@dataclass(frozen=True)
class EigenEstimate:
    """An estimate of the top eigenpair of a symmetric operator.

    Attributes:
        value: the eigenvalue estimate theta (a Python float).
        vector: the unit-norm eigenvector estimate y, shape [P], dtype of the start vector.
        iterations: the number of operator products used.
        residual: ||A y - theta y||; an eigenvalue of A lies within it of ``value``.
        converged: whether ``residual <= tol * |value|`` was reached within ``iters`` products.
    """

    value: float
    vector: torch.Tensor
    iterations: int
    residual: float
    converged: bool


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """a . b accumulated in float64, read on the host."""
    return float(torch.dot(a.to(torch.float64), b.to(torch.float64)))


def _unit(v0: torch.Tensor) -> torch.Tensor:
    if v0.ndim != 1:
        raise ValueError(f"v0: expected a flat start vector of shape [P], got shape {tuple(v0.shape)}")
    norm = float(torch.linalg.vector_norm(v0.to(torch.float64)))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError(f"v0: expected a finite, nonzero start vector, got norm {norm}")
    return v0 / norm


def _check_budget(iters: int, tol: float) -> tuple[int, float]:
    return check_positive_int(iters, "iters"), check_number(tol, "tol", low=0.0)


@EIGENSOLVERS.register("power")
def power_iteration(matvec: MatVec, v0: torch.Tensor, *, iters: int = 100, tol: float = 1e-3) -> EigenEstimate:
    """Power iteration for the eigenvalue of largest magnitude of a symmetric operator.

    Iterates w = A v, theta = v^T w (v unit norm), r = ||w - theta v||, v <- w / ||w|| until
    r <= tol |theta| or ``iters`` products. Converges geometrically at rate |lambda_2 / lambda_1|; on a
    positive semi-definite operator (the Gauss-Newton matrix) the result is lambda_max.

    Args:
        matvec: v [P] -> A v [P] (A symmetric).
        v0: start vector [P], nonzero (its dtype and device are kept).
        iters: maximum number of products (default 100).
        tol: relative residual at which to stop (default 1e-3: three significant digits).

    Example:
        >>> A = torch.diag(torch.tensor([3.0, 1.0, 0.5]))
        >>> round(power_iteration(lambda v: A @ v, torch.ones(3), tol=1e-6).value, 4)
        3.0
    """
    iters, tol = _check_budget(iters, tol)
    v = _unit(v0)
    theta, residual = 0.0, math.inf
    for k in range(1, iters + 1):
        w = matvec(v)
        theta = _dot(v, w)
        residual = float(torch.linalg.vector_norm((w - theta * v).to(torch.float64)))
        if residual <= tol * abs(theta):
            return EigenEstimate(theta, v, k, residual, True)
        w_norm = float(torch.linalg.vector_norm(w.to(torch.float64)))
        if w_norm == 0.0:  # A v = 0: v is an eigenvector with eigenvalue 0
            return EigenEstimate(0.0, v, k, 0.0, True)
        v = w / w_norm
    return EigenEstimate(theta, v, iters, residual, False)


@EIGENSOLVERS.register("lanczos")
def lanczos(matvec: MatVec, v0: torch.Tensor, *, iters: int = 30, tol: float = 1e-3) -> EigenEstimate:
    """Lanczos with full reorthogonalisation for the algebraically largest eigenvalue of a symmetric operator.

    Step k: w = A q_k - alpha_k q_k - beta_{k-1} q_{k-1}, alpha_k = q_k^T A q_k, then w is
    reorthogonalised twice against the whole basis (classical Gram-Schmidt), beta_k = ||w||,
    q_{k+1} = w / beta_k. The top eigenpair (theta, s) of the k x k tridiagonal T_k (diagonal alpha,
    off-diagonal beta, in float64) gives the Ritz pair (theta, Q_k s) with residual beta_k |s_k|
    (Paige 1971; Golub & Van Loan sec. 10.1.4).

    Args:
        matvec: v [P] -> A v [P] (A symmetric).
        v0: start vector [P], nonzero; a previous eigenvector makes a good warm start.
        iters: maximum number of products (default 30; capped at P).
        tol: relative residual at which to stop (default 1e-3).

    Example:
        >>> A = torch.diag(torch.tensor([3.0, 1.0, -5.0]))
        >>> round(lanczos(lambda v: A @ v, torch.ones(3), tol=1e-6).value, 4)  # power iteration would give -5
        3.0
    """
    iters, tol = _check_budget(iters, tol)
    iters = min(iters, v0.numel())
    q = _unit(v0)
    basis = q.new_empty((iters, q.numel()))
    alphas: list[float] = []
    betas: list[float] = []
    q_prev, beta_prev = torch.zeros_like(q), 0.0
    for k in range(iters):
        basis[k] = q
        w = matvec(q)
        alpha = _dot(q, w)
        w = w - alpha * q - beta_prev * q_prev
        done = basis[: k + 1]
        for _ in range(2):
            w = w - done.T @ (done @ w)
        beta = float(torch.linalg.vector_norm(w.to(torch.float64)))
        alphas.append(alpha)
        theta, s = _top_ritz_pair(alphas, betas)
        residual = beta * abs(float(s[-1]))
        if residual <= tol * abs(theta) or beta == 0.0 or k + 1 == iters:
            vector = (done.T @ s.to(done.dtype).to(done.device)).contiguous()
            vector = vector / torch.linalg.vector_norm(vector)
            return EigenEstimate(theta, vector, k + 1, residual, residual <= tol * abs(theta))
        betas.append(beta)
        q_prev, beta_prev, q = q, beta, w / beta
    raise AssertionError("unreachable: the loop returns at its last step")  # pragma: no cover


def _top_ritz_pair(alphas: list[float], betas: list[float]) -> tuple[float, torch.Tensor]:
    """The largest eigenvalue of the tridiagonal T (diagonal ``alphas``, off-diagonal ``betas``) and its eigenvector.

    NumPy rather than torch: for these k x k matrices (k <= iters) the call overhead is the whole cost.
    """
    t = np.diag(np.asarray(alphas, dtype=np.float64))
    if betas:
        t += np.diag(betas, 1) + np.diag(betas, -1)
    values, vectors = np.linalg.eigh(t)
    return float(values[-1]), torch.from_numpy(vectors[:, -1].copy())


def top_eigenvalue(
    matvec: MatVec,
    v0: torch.Tensor,
    *,
    method: str = "lanczos",
    iters: int = 30,
    tol: float = 1e-3,
) -> EigenEstimate:
    """The top eigenpair of a symmetric operator by the solver named ``method`` (see :data:`EIGENSOLVERS`).

    Example:
        >>> A = torch.tensor([[2.0, 1.0], [1.0, 2.0]])
        >>> round(top_eigenvalue(lambda v: A @ v, torch.tensor([1.0, 0.0])).value, 4)
        3.0
    """
    return EIGENSOLVERS.get(method)(matvec, v0, iters=iters, tol=tol)


def model_top_eigenvalue(
    model,
    build_operator: Callable[[torch.Tensor, torch.Tensor | None], MatVec],
    inputs,
    labels=None,
    *,
    options: dict,
) -> EigenEstimate:
    """The top eigenpair of a parameter-space operator of ``model`` on a seeded evaluation subset.

    The shared body of :func:`~caltrain.analysis.gauss_newton_sharpness` and
    :func:`~caltrain.analysis.hessian_sharpness`: take the ``options["subset"]`` samples drawn from
    ``options["seed"]`` (:func:`~caltrain.analysis.evaluation_set.evaluation_set`), build the operator with
    ``build_operator(x, y)``, start from ``options["init"]`` (or a random vector seeded by ``seed``) and run the
    solver ``options["method"]`` for at most ``options["iters"]`` products, to relative residual ``options["tol"]``.
    """
    fmodel = FunctionalModel(model)
    x, y = evaluation_set(inputs, labels, subset=options["subset"], seed=options["seed"], device=fmodel.device)
    start = fmodel.start_vector(options["init"], seed=options["seed"])
    return top_eigenvalue(build_operator(x, y), start, method=options["method"], iters=options["iters"],
                          tol=options["tol"])
