"""Linear calibration maps: ``vector`` and ``matrix`` scaling, ``dirichlet`` calibration; ODIR chosen by CV.

All three map features ``f in R^K`` of a sample to calibrated logits ``s = W f + b`` and predict
``q = softmax(s)``, fitted by minimising, in float64 with full-batch L-BFGS,

    J(W, b) = (1/N) sum_i -log softmax(W f_i + b)_{y_i}
              + lambda / (K (K-1)) * sum_{j != k} W_jk^2          (off-diagonal entries: ODIR)
              + mu / K * sum_k b_k^2                               (intercepts: ODIR)
              + nu / K * sum_k (W_kk - w_bar)^2,   w_bar = (1/K) sum_k W_kk   (spread of the diagonal)

- ``vector`` (Guo et al. 2017, arXiv 1706.04599, Sec. 4.2): ``f = z`` and W diagonal (2K parameters);
- ``matrix`` (same paper): ``f = z``, W full (K^2 + K parameters); MS-ODIR of Kull et al.;
- ``dirichlet`` (Kull et al. 2019, "Beyond temperature scaling", arXiv 1910.12656, Sec. 3-4): ``f = log p``,
  ``p = softmax(z)``, W full.

ODIR (Off-Diagonal and Intercept Regularisation, Kull et al. Sec. 4) is the lambda and mu terms: the
diagonal is free. The nu term is caltrain's addition (Reading: the paper has none). It shrinks the diagonal
towards its own mean, so the common scale (a temperature) stays free: with nu, mu and lambda large every family
becomes temperature scaling (for Dirichlet too: ``w log softmax(z) = w z - w logsumexp(z)``, and a per-sample
shift leaves the softmax unchanged). Without it, a diagonal entry runs away on a few thousand samples at
K = 100 (quasi-separation: a class whose feature separates its validation samples gets an unbounded weight;
measured on real CIFAR-100 outputs, BENCHMARKS.md).

Choosing the regularisation (the default: no ``reg_*`` given). lambda, mu and nu are chosen by seeded,
stratified k-fold cross-validation on the fitting set (``cv_folds`` = 5, ``cv_seed`` = 0), each setting scored
by the held-out NLL of every sample under the fold that left it out. Kull et al. choose lambda and mu by
5-fold CV of the log-loss over a grid crossing every lambda with every mu (hundreds of fits; their DNN
experiments' code, dirichletcal/experiments_dnn); caltrain walks a path instead (Reading: our design):

1. Units. Every penalty is expressed as ``g`` times the mean curvature of the NLL in one entry at the identity
   map (:func:`penalty_units`: with ``q = softmax(f)``, ``a = q (1 - q)``, intercepts ``h_b = mean a_ij``,
   diagonal ``h_d = mean a_ij f_ij^2``, off-diagonal ``h_o = mean_{j != k} a_ij f_ik^2``), so ``lambda =
   g h_o K (K-1)``, ``mu = g h_b K``, ``nu = g h_d K``: the penalty's curvature in one entry is ``2 g h``,
   whatever the scale of the logits and K. ``g`` runs over :data:`CV_GRID`, 10 down to 1e-4 by factors of 10.
2. A path from temperature scaling outwards. Stage "diagonal": a diagonal map (off-diagonals at 0), mu and
   nu at the same g, from 10 down. Stage "lambda" (``matrix``, ``dirichlet``): the full matrix from
   ``lambda = inf`` (the diagonal map just chosen, off-diagonals fixed at 0) through g = 10, 1, ... . Each
   stage warm-starts every fold from its previous solution and stops at the first value whose CV NLL is not
   below the stage's best; the best is kept (for lambda possibly inf, which fits the diagonal map).
3. Speed (the trainer's end of run fits calibrators): the folds are fitted as one L-BFGS problem over their
   stacked maps, with analytic gradients and centred, scaled coordinates, the data term in float32 and at
   most :data:`CV_MAX_ITER` (50) iterations per fit (the held-out NLL is then within ~1e-3 of converged,
   measured at K = 100); the scores and the final fit are float64. A few seconds at K = 100, N = 5,000 on
   one CPU thread (BENCHMARKS.md).
4. The final fit uses all samples at the chosen values, started from the mean of the folds' solutions.
   ``params_`` records the values (``reg_lambda``, ``reg_mu``, ``reg_nu``, in the units of the constructor
   arguments, so passing them back reproduces the fit; ``diagonal_only`` = 1 and no ``reg_lambda`` when
   lambda = inf, as ``params_`` holds finite numbers; the fitted ``reg_lambda_`` is ``inf`` then, written
   ``Infinity`` in the saved JSON file, which Python's json reads), ``cv_folds`` (0 when the values were
   given) and ``cv_nll``; ``cv_path_`` (not saved) lists every ``(stage, g, cv_nll)`` scored.

Giving any of ``reg_lambda``, ``reg_mu``, ``reg_nu`` turns the search off: the given values are used, a
missing ``reg_mu`` equals a finite ``reg_lambda`` (the authors' dirichletcal package; 0 otherwise) and a
missing ``reg_nu`` or ``reg_lambda`` is 0 (plain ODIR: ``create("matrix", reg_lambda=0)`` is Guo et al.'s
matrix scaling; ``reg_lambda=float("inf")`` fixes the off-diagonals at 0).

Sample size. An unregularised fit needs several validation samples per free parameter (we warn below
:data:`SAMPLES_PER_PARAMETER` = 10 when the regularisation is given): 2K for ``vector`` (2,000 at K = 100),
K^2 + K for ``matrix`` and ``dirichlet`` (101,000 at K = 100, more than any validation split). Measured on
real CIFAR-100 outputs fitted on 1,000-2,000 samples, unregularised vector scaling runs away and raises the
held-out NLL (0.94 -> 1.52 and 0.99 on a WRN-16-4), and unregularised matrix scaling on 5,000 samples takes
ECE 0.14 -> 0.42, NLL 1.19 -> 160 (DenseNet-BC-100). With the CV default the effective number of parameters is
what the held-out folds support: on those outputs (5,000 fitting samples, 50 per class) every linear
calibrator lowers the held-out NLL and ECE. With fewer than ``2 * cv_folds`` samples nothing is
cross-validated: the strongest setting (lambda = inf, mu and nu at g = 10) is used, with a warning.

Quasi-separation. After every fit the largest change of a calibrated logit per standard deviation of one
feature, ``max_gain = max_jk |W_jk| std(f_k)``, and the training NLL are checked: ``max_gain`` above
:data:`GAIN_LIMIT` (20 nats per standard deviation, an odds ratio of e^20: the CV fits on the CIFAR outputs
stay below 8, the unregularised vector scaling that runs away on them reaches 25-90) or a training NLL below
:data:`SEPARATION_NLL` (1e-3) means the weights run away to separate the validation set, and a
``RuntimeWarning`` says so (both values are in ``params_``).

Example:
    >>> import torch
    >>> z = torch.tensor([[2.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 2.0], [2.0, 0.0, 0.0]]).repeat(20, 1)
    >>> cal = VectorScaling().fit(z, torch.tensor([0, 1, 2, 1]).repeat(20))
    >>> cal.predict_proba(z).shape, tuple(cal.weight_.shape), cal.is_logit_map, cal.params_["cv_folds"]
    (torch.Size([80, 3]), (3,), True, 5)
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from caltrain.posthoc._optim import minimize_lbfgs
from caltrain.posthoc.base import FINITE, ITERATIONS, Calibrator, Field
from caltrain.posthoc.registry import register
from caltrain.utils.checks import check_choice, check_number, check_positive_int
from caltrain.utils.threads import single_thread

__all__ = [
    "CV_GRID",
    "DirichletCalibration",
    "MatrixScaling",
    "RegularisationChoice",
    "VectorScaling",
    "fit_linear_calibration",
    "linear_calibration_loss",
    "select_regularisation",
]

STRUCTURES = ("vector", "matrix")
#: Below this many validation samples per free parameter a fit with given regularisation warns.
SAMPLES_PER_PARAMETER = 10
#: Relative penalty strengths g tried by the CV search, strongest first (module docstring).
CV_GRID = (10.0, 1.0, 1e-1, 1e-2, 1e-3, 1e-4)
#: ``max_gain`` (largest |W_jk| std(f_k)) above which a fit is reported as running away.
GAIN_LIMIT = 20.0
#: A training NLL below this is reported as (quasi-)separation of the validation set.
SEPARATION_NLL = 1e-3
#: Gradient tolerance and iteration cap of the CV fits (the final fit uses the calibrator's ``tol``/``max_iter``).
CV_TOL = 1e-5
CV_FTOL = 1e-8
CV_MAX_ITER = 50
#: Arithmetic of the cross-validation fits' data term (held-out scores and the final fit are float64).
CV_DTYPE = torch.float32


def _apply(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    if weight.ndim == 1:
        return features * weight + bias
    return features @ weight.T + bias


def _diagonal(weight: torch.Tensor) -> torch.Tensor:
    return weight if weight.ndim == 1 else torch.diagonal(weight)


def linear_calibration_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    reg_lambda: float = 0.0,
    reg_mu: float = 0.0,
    reg_nu: float = 0.0,
) -> torch.Tensor:
    """``J(W, b)`` of the module docstring: mean NLL of ``softmax(W f + b)`` plus the three penalties.

    Args:
        features: ``[N, K]`` float64 features f (logits, or log-probabilities for Dirichlet calibration).
        labels: ``[N]`` int64.
        weight: ``[K]`` (diagonal, vector scaling: no off-diagonal term) or ``[K, K]``.
        bias: ``[K]``.
        reg_lambda, reg_mu: ODIR weights lambda (off-diagonal entries of W) and mu (intercepts); lambda = inf
            fixes the off-diagonal entries at 0.
        reg_nu: weight nu of the spread of W's diagonal around its mean.
    """
    k = features.shape[1]
    loss = torch.nn.functional.cross_entropy(_apply(features, weight, bias), labels)
    if reg_lambda and weight.ndim == 2:
        off = weight - torch.diag(torch.diagonal(weight))
        if math.isinf(reg_lambda):  # off-diagonals fixed at 0: no penalty there, infinite anywhere else
            loss = loss + torch.where(off == 0, 0.0, math.inf).sum()
        else:
            loss = loss + reg_lambda * off.square().sum() / (k * (k - 1))
    if reg_mu:
        loss = loss + reg_mu * bias.square().sum() / k
    if reg_nu:
        diag = _diagonal(weight)
        loss = loss + reg_nu * (diag - diag.mean()).square().sum() / k
    return loss


def _loss_and_grad(
    data: list[tuple[torch.Tensor, torch.Tensor]],
    mean: torch.Tensor,
    weight: torch.Tensor,
    offset: torch.Tensor,
    reg_lambda: float,
    reg_mu: float,
    reg_nu: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``sum_f J_f`` and its gradients for F independent maps, in centred coordinates.

    Map f is fitted on ``data[f] = (centred features f - m [N_f, K], labels [N_f])``; the maps are
    ``s = W f + b = W (f - m) + c`` with ``c = b + W m``: ``weight`` is W (``[F, K]`` diagonal or ``[F, K, K]``),
    ``offset`` is c ``[F, K]``. ``J_f`` is :func:`linear_calibration_loss` of map f on its data (the penalties
    act on the intercepts b = c - W m). Gradients with respect to (W, c), analytically: with
    ``G = (softmax(s) - onehot(y)) / N_f``, ``dW = G^T (f - m) + dP/dW - (dP/db) m^T`` and
    ``dc = sum_i G_i + dP/db`` (P the penalties; for a diagonal W the products are element-wise). Centring only
    changes coordinates (uncentred log-probabilities couple W and b strongly); the minimiser is the same map.
    """
    k = offset.shape[1]
    diagonal_map = weight.ndim == 2
    loss = torch.zeros((), dtype=torch.float64, device=offset.device)
    grad_w = torch.empty_like(weight)
    grad_c = torch.empty_like(offset)
    dtype = data[0][0].dtype  # float64, or float32 for the cross-validation fits (module docstring)
    w_c, c_c = weight.to(dtype), offset.to(dtype)
    for i, (centred, labels) in enumerate(data):
        rows = torch.arange(centred.shape[0], device=centred.device)
        s = centred * w_c[i] + c_c[i] if diagonal_map else torch.addmm(c_c[i], centred, w_c[i].T)
        top = s.amax(dim=1, keepdim=True)
        e = (s - top).exp_()
        total = e.sum(dim=1, keepdim=True)
        loss = loss + ((top + total.log())[:, 0] - s[rows, labels]).to(torch.float64).mean()
        g = e.div_(total)
        g[rows, labels] -= 1.0
        g.div_(centred.shape[0])
        grad_w[i] = (g * centred).sum(dim=0) if diagonal_map else g.T @ centred
        grad_c[i] = g.sum(dim=0)
    bias = offset - (weight * mean if diagonal_map else weight @ mean)
    if reg_lambda and not diagonal_map:
        off = weight - torch.diag_embed(torch.diagonal(weight, dim1=1, dim2=2))
        c = reg_lambda / (k * (k - 1))
        loss = loss + c * off.square().sum()
        grad_w = grad_w + 2 * c * off
    if reg_mu:
        loss = loss + reg_mu / k * bias.square().sum()
        grad_b = 2 * reg_mu / k * bias
        grad_c = grad_c + grad_b
        grad_w = grad_w - (grad_b * mean if diagonal_map else grad_b[:, :, None] * mean[None, None, :])
    if reg_nu:
        diag = weight if diagonal_map else torch.diagonal(weight, dim1=1, dim2=2)
        centred_diag = diag - diag.mean(dim=1, keepdim=True)
        loss = loss + reg_nu / k * centred_diag.square().sum()
        step = 2 * reg_nu / k * centred_diag  # the mean's own derivative cancels: sum_k centred_diag_k = 0
        grad_w = grad_w + (step if diagonal_map else torch.diag_embed(step))
    return loss, grad_w, grad_c


class _Coordinates:
    """The optimiser's coordinates for features f: centred by their mean m, W scaled by their spread s."""

    def __init__(self, features: torch.Tensor) -> None:
        k = features.shape[1]
        self.mean = features.mean(dim=0)
        self.scale = (
            features.std(dim=0).clamp(min=1e-6)
            if features.shape[0] > 1
            else torch.ones(k, dtype=torch.float64, device=features.device)
        )

    def centre(self, features: torch.Tensor) -> torch.Tensor:
        return features - self.mean

    def product(self, weight: torch.Tensor) -> torch.Tensor:
        """``W m`` (``[F, K]``) of a stack of maps."""
        return weight * self.mean if weight.ndim == 2 else weight @ self.mean


def _fit_maps(
    data: list[tuple[torch.Tensor, torch.Tensor]],
    coords: _Coordinates,
    weight: torch.Tensor,
    bias: torch.Tensor,
    *,
    reg_lambda: float,
    reg_mu: float,
    reg_nu: float,
    max_iter: int,
    tol: float,
    ftol: float = 1e-15,
) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """Minimise :func:`_loss_and_grad` over F maps at once (one L-BFGS over their stacked parameters).

    ``data`` holds each map's centred features and labels. The maps are independent, so the joint minimum is
    every map's own minimum. Preconditioning (coordinates only, the objective is unchanged): features centred
    (``c = b + W m``) and the optimiser sees ``W~ = W * s``, column k scaled by the spread s_k of feature k, so
    that it works on unit-scale, centred features. Returns ``(weight, bias, function_evaluations, objective)``.
    """
    scale = coords.scale

    def objective(scaled_w: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        loss, gw, gc = _loss_and_grad(data, coords.mean, scaled_w / scale, c, reg_lambda, reg_mu, reg_nu)
        return loss, [gw / scale, gc]

    (scaled_w, c), n_eval, final = minimize_lbfgs(
        objective, [weight * scale, bias + coords.product(weight)], max_iter=max_iter, tol=tol, ftol=ftol,
        with_grad=True,
    )
    w = scaled_w / scale
    return w, c - coords.product(w), n_eval, final


def fit_linear_calibration(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    structure: str = "matrix",
    reg_lambda: float = 0.0,
    reg_mu: float = 0.0,
    reg_nu: float = 0.0,
    init: tuple[torch.Tensor, torch.Tensor] | None = None,
    max_iter: int = 500,
    tol: float = 1e-7,
) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """Fit ``W, b`` minimising :func:`linear_calibration_loss` with float64 L-BFGS (analytic gradients).

    Starts from ``init = (weight, bias)`` (a ``[K]`` weight is put on the diagonal for ``"matrix"``) or from
    the identity (W = I, b = 0). ``reg_lambda = inf`` fits ``"matrix"`` with its off-diagonal entries fixed at 0
    (the diagonal map, returned as ``[K, K]``). Returns ``(weight, bias, function_evaluations,
    final_objective)``; ``weight`` is ``[K]`` for ``structure="vector"`` and ``[K, K]`` for ``"matrix"``.
    """
    check_choice(structure, "structure", STRUCTURES)
    f = features.to(torch.float64)
    n, k = f.shape
    if init is None:
        weight0 = torch.ones(k, dtype=torch.float64, device=f.device)
        bias0 = torch.zeros(k, dtype=torch.float64, device=f.device)
    else:
        weight0, bias0 = (t.to(device=f.device, dtype=torch.float64) for t in init)
    diagonal_only = structure == "matrix" and math.isinf(reg_lambda)  # off-diagonals fixed at 0
    weight0 = _as_structure(weight0, "vector" if diagonal_only else structure)
    coords = _Coordinates(f)
    w, b, n_eval, final = _fit_maps(
        [(coords.centre(f), labels)], coords, weight0[None], bias0[None],
        reg_lambda=0.0 if diagonal_only else reg_lambda, reg_mu=reg_mu, reg_nu=reg_nu, max_iter=max_iter, tol=tol,
    )
    return (torch.diag(w[0]) if diagonal_only else w[0]), b[0], n_eval, final


@dataclass
class RegularisationChoice:
    """What :func:`select_regularisation` chose.

    Attributes:
        reg_lambda, reg_mu, reg_nu: the chosen penalty weights, in the units of :func:`linear_calibration_loss`.
        cv_nll: the held-out NLL (mean over all samples, each scored by the fold that left it out) at the choice.
        path: every setting scored, in order: ``(stage, g, cv_nll)`` with stage ``"diagonal"`` (mu and nu) or
            ``"lambda"`` and ``g`` the relative strength of :data:`CV_GRID`.
        init: ``(weight, bias)``, the mean of the folds' solutions at the choice (a warm start for the final fit).
        n_folds: folds used (0: too few samples to cross-validate, the strongest setting was taken).
    """

    reg_lambda: float
    reg_mu: float
    reg_nu: float
    cv_nll: float
    path: list[tuple[str, float, float]] = field(default_factory=list)
    init: tuple[torch.Tensor, torch.Tensor] | None = None
    n_folds: int = 0


def stratified_folds(labels: torch.Tensor, n_folds: int, seed: int) -> torch.Tensor:
    """Fold index ``[N]`` (int64 in ``[0, n_folds)``): a seeded permutation, sorted stably by label, dealt in turn.

    Every class is spread over the folds as evenly as its count allows (stratified k-fold).
    """
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(labels.shape[0], generator=g).to(labels.device)
    order = perm[torch.sort(labels[perm], stable=True).indices]
    folds = torch.empty_like(labels)
    folds[order] = torch.arange(labels.shape[0], device=labels.device) % n_folds
    return folds


def penalty_units(features: torch.Tensor) -> dict[str, float]:
    """The penalty weights at relative strength g = 1: ``{"lambda", "mu", "nu"}`` (module docstring, step 1).

    The mean curvature of the NLL in one entry at the identity map (``q = softmax(f)``, ``a = q (1 - q)``):
    intercepts ``h_b = mean_ij a_ij``, diagonal ``h_d = mean_ij a_ij f_ij^2``, off-diagonal
    ``h_o = mean_{i, j != k} a_ij f_ik^2``; then ``lambda = h_o K (K-1)``, ``nu = h_d K``, ``mu = h_b K``, so that
    each penalty's curvature in one entry is ``2 g h``.
    """
    f = features.to(torch.float64)
    n, k = f.shape
    q = torch.softmax(f, dim=1)
    a = q * (1 - q)
    sq = f.square()
    h_b = float(a.mean())
    h_d = float((a * sq).mean())
    h_o = float(((a.sum(1) * sq.sum(1)) - (a * sq).sum(1)).sum()) / (n * k * (k - 1))
    tiny = 1e-12
    return {"lambda": max(h_o, tiny) * k * (k - 1), "mu": max(h_b, tiny) * k, "nu": max(h_d, tiny) * k}


def select_regularisation(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    structure: str = "matrix",
    n_folds: int = 5,
    seed: int = 0,
    grid: tuple[float, ...] = CV_GRID,
) -> RegularisationChoice:
    """Choose (lambda, mu, nu) by k-fold CV of the held-out NLL along the path of the module docstring.

    Args:
        features: ``[N, K]`` float64 features (logits, or log-probabilities for Dirichlet calibration).
        labels: ``[N]`` int64.
        structure: ``"vector"`` (mu and nu; lambda is irrelevant and reported as 0) or ``"matrix"``.
        n_folds: k (default 5). seed: the seed of the fold assignment (default 0).
        grid: relative strengths g, strongest first (default :data:`CV_GRID`).

    With fewer than ``2 * n_folds`` samples nothing is cross-validated: the strongest setting is returned with
    ``n_folds = 0``.
    """
    check_choice(structure, "structure", STRUCTURES)
    f = features.to(torch.float64)
    n, k = f.shape
    unit = penalty_units(f)
    chosen = {name: grid[0] * value for name, value in unit.items()}
    chosen["lambda"] = 0.0 if structure == "vector" else math.inf
    if n < 2 * n_folds:
        return RegularisationChoice(chosen["lambda"], chosen["mu"], chosen["nu"], cv_nll=math.nan)
    folds = stratified_folds(labels, n_folds, seed)
    coords = _Coordinates(f)
    centred = coords.centre(f).to(CV_DTYPE)
    train = [(centred[folds != i], labels[folds != i]) for i in range(n_folds)]
    held = [(f[folds == i], labels[folds == i]) for i in range(n_folds)]
    weight = torch.ones(n_folds, k, dtype=torch.float64, device=f.device)
    bias = torch.zeros(n_folds, k, dtype=torch.float64, device=f.device)
    path: list[tuple[str, float, float]] = []

    def held_out_nll(w: torch.Tensor, b: torch.Tensor) -> float:
        total = torch.zeros((), dtype=torch.float64, device=f.device)
        for i, (f_i, y_i) in enumerate(held):
            total = total + torch.nn.functional.cross_entropy(_apply(f_i, w[i], b[i]), y_i, reduction="sum")
        return float(total) / n

    stages = [("diagonal", ("mu", "nu"))] + ([("lambda", ("lambda",))] if structure == "matrix" else [])
    best_nll = math.nan
    for stage, names in stages:
        best: tuple[float, float, torch.Tensor, torch.Tensor] | None = None
        if stage == "lambda":
            # lambda = inf (off-diagonals at 0) is the diagonal map just chosen: the path starts there, scored
            weight = torch.diag_embed(weight)
            best = (math.inf, best_nll, weight, bias)
            path.append((stage, math.inf, best_nll))
        for g in grid:
            values = {**chosen, **{name: g * unit[name] for name in names}}
            w, b, _, _ = _fit_maps(
                train, coords, weight, bias, reg_lambda=values["lambda"], reg_mu=values["mu"],
                reg_nu=values["nu"], max_iter=CV_MAX_ITER, tol=CV_TOL, ftol=CV_FTOL,
            )
            nll = held_out_nll(w, b)
            path.append((stage, g, nll))
            if best is not None and nll >= best[1]:
                break
            best = (g, nll, w, b)
            weight, bias = w, b  # warm start of the next, weaker value
        assert best is not None
        g, best_nll, weight, bias = best
        chosen.update({name: g * unit[name] for name in names})
    return RegularisationChoice(
        reg_lambda=chosen["lambda"], reg_mu=chosen["mu"], reg_nu=chosen["nu"], cv_nll=best_nll, path=path,
        init=(weight.mean(dim=0), bias.mean(dim=0)), n_folds=n_folds,
    )


def _as_structure(weight: torch.Tensor, structure: str) -> torch.Tensor:
    if structure == "matrix":
        return torch.diag(weight) if weight.ndim == 1 else weight
    return weight if weight.ndim == 1 else torch.diagonal(weight).clone()


def fit_diagnostics(
    features: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor
) -> tuple[float, float]:
    """``(max_gain, train_nll)`` of a fitted map: ``max_jk |W_jk| std(f_k)`` and the mean NLL on ``features``."""
    f = features.to(torch.float64)
    spread = f.std(dim=0) if f.shape[0] > 1 else torch.zeros(f.shape[1], dtype=torch.float64, device=f.device)
    w = weight.abs() * spread if weight.ndim == 1 else weight.abs() * spread[None, :]
    nll = torch.nn.functional.cross_entropy(_apply(f, weight, bias), labels)
    both = torch.stack([w.max(), nll]).tolist()
    return both[0], both[1]


#: Optional fitted values (``None`` in files saved before they existed, or when they do not apply).
_OPTIONAL = Field("number", low=0.0, optional=True)


class _LinearCalibrator(Calibrator):
    """Shared shell of the three linear maps (``_structure``, ``_features``)."""

    _structure: str = "matrix"
    _fitted = (
        "weight_", "bias_", "n_iter_", "loss_", "reg_lambda_", "reg_mu_", "reg_nu_", "cv_folds_", "cv_nll_",
        "max_gain_", "train_nll_",
    )
    _fields = {
        "weight_": Field("array", shape=lambda c, k: (k,) if c._structure == "vector" else (k, k)),
        "bias_": Field("array", shape=lambda c, k: (k,)),
        "n_iter_": ITERATIONS,
        "loss_": FINITE,
        "reg_lambda_": Field("number", low=0.0, infinite=True),
        "reg_mu_": Field("number", low=0.0),
        "reg_nu_": Field("number", low=0.0),
        "cv_folds_": Field("number", low=0, integer=True),
        "cv_nll_": _OPTIONAL,
        "max_gain_": _OPTIONAL,
        "train_nll_": _OPTIONAL,
    }

    def __init__(
        self,
        *,
        reg_lambda: float | None = None,
        reg_mu: float | None = None,
        reg_nu: float | None = None,
        cv_folds: int = 5,
        cv_seed: int = 0,
        max_iter: int = 500,
        tol: float = 1e-5,
        abstention: str | None = None,
    ) -> None:
        super().__init__(abstention=abstention)
        if reg_lambda is not None and not (isinstance(reg_lambda, (int, float)) and reg_lambda == math.inf):
            check_number(reg_lambda, "reg_lambda", low=0)  # inf allowed: off-diagonals fixed at 0
        for name, value in (("reg_mu", reg_mu), ("reg_nu", reg_nu)):
            if value is not None:
                check_number(value, name, low=0)
        self.reg_lambda = reg_lambda
        self.reg_mu = reg_mu
        self.reg_nu = reg_nu
        check_positive_int(cv_folds, "cv_folds", minimum=2)
        self.cv_folds = cv_folds
        check_positive_int(cv_seed, "cv_seed", minimum=0)
        self.cv_seed = cv_seed
        check_positive_int(max_iter, "max_iter")
        self.max_iter = max_iter
        check_number(tol, "tol", low=0, low_inclusive=False)
        self.tol = tol

    def _features(self, z: torch.Tensor) -> torch.Tensor:
        return z

    def _given(self) -> tuple[float, float, float] | None:
        """``(lambda, mu, nu)`` when the user gave any of them (the rest at their ODIR defaults), else None (CV)."""
        lam = None if self._structure == "vector" else self.reg_lambda
        if lam is None and self.reg_mu is None and self.reg_nu is None:
            return None
        lam = float(lam or 0.0)
        mu = (lam if math.isfinite(lam) else 0.0) if self.reg_mu is None else float(self.reg_mu)
        return lam, mu, float(self.reg_nu or 0.0)

    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> None:
        # many small operations (a [4000, 100] x [100, 100] product is 4e7 multiply-adds): one intra-op thread,
        # as caltrain.utils.threads advises below 1e9. Measured on 2 cores (Dirichlet, WRN-16-4 / CIFAR-100,
        # 5,000 samples): 2.1 s on one thread vs 1.9 s on two when idle, but 12 s vs 83 s at load average 6, and
        # a process's first two-thread fit took 9-17 s
        with single_thread():
            self._fit_one_thread(z, y)

    def _fit_one_thread(self, z: torch.Tensor, y: torch.Tensor) -> None:
        n, k = z.shape
        f = self._features(z)
        n_params = 2 * k if self._structure == "vector" else k * k + k
        given = self._given()
        init, cv_nll, folds = None, None, 0
        if given is None:
            choice = select_regularisation(f, y, structure=self._structure, n_folds=self.cv_folds, seed=self.cv_seed)
            lam, mu, nu = choice.reg_lambda, choice.reg_mu, choice.reg_nu
            init, folds = choice.init, choice.n_folds
            cv_nll = None if math.isnan(choice.cv_nll) else choice.cv_nll
            self.cv_path_ = choice.path
            if folds == 0:
                warnings.warn(
                    f"{self.name}: {n} validation samples are too few to cross-validate the regularisation with "
                    f"cv_folds={self.cv_folds} (at least {2 * self.cv_folds} needed); using the strongest setting "
                    "(off-diagonals at 0, intercepts and the spread of the diagonal strongly penalised)",
                    RuntimeWarning,
                    stacklevel=3,
                )
        else:
            lam, mu, nu = given
            self.cv_path_ = []
            if n < SAMPLES_PER_PARAMETER * n_params:
                reg = f" with reg_lambda={lam:g}" if self._structure == "matrix" else ""
                warnings.warn(
                    f"{self.name}: {n_params} parameters fitted on {n} validation samples "
                    f"(fewer than {SAMPLES_PER_PARAMETER} per parameter){reg}: expect over-fitting unless the "
                    "regularisation is strong; leave reg_lambda, reg_mu and reg_nu unset to choose them by "
                    "cross-validation",
                    RuntimeWarning,
                    stacklevel=3,
                )
        w, b, n_eval, loss = fit_linear_calibration(
            f, y, structure=self._structure, reg_lambda=lam, reg_mu=mu, reg_nu=nu, init=init,
            max_iter=self.max_iter, tol=self.tol,
        )
        max_gain, train_nll = fit_diagnostics(f, y, w, b)
        if max_gain > GAIN_LIMIT or train_nll < SEPARATION_NLL:
            warnings.warn(
                f"{self.name}: the fit separates the validation set (quasi-separation): max |W_jk| std(f_k) = "
                f"{max_gain:.4g} (limit {GAIN_LIMIT:g}), training NLL {train_nll:.4g}; the weights run away and "
                "held-out NLL will suffer. Use stronger regularisation, or leave reg_lambda, reg_mu and reg_nu "
                "unset to choose them by cross-validation",
                RuntimeWarning,
                stacklevel=3,
            )
        self.weight_, self.bias_, self.n_iter_, self.loss_ = w, b, n_eval, loss
        self.reg_lambda_, self.reg_mu_, self.reg_nu_ = float(lam), float(mu), float(nu)
        self.cv_folds_, self.cv_nll_ = folds, cv_nll
        self.max_gain_, self.train_nll_ = max_gain, train_nll

    def _legacy_fitted(self, fitted: dict[str, Any]) -> dict[str, Any]:
        """Files saved before the CV default hold no regularisation fields: their values were the given ones."""
        new = ("reg_lambda_", "reg_mu_", "reg_nu_", "cv_folds_", "cv_nll_", "max_gain_", "train_nll_")
        if any(key in fitted for key in new):
            return fitted
        lam = 0.0 if self._structure == "vector" or self.reg_lambda is None else float(self.reg_lambda)
        mu = (lam if math.isfinite(lam) else 0.0) if self.reg_mu is None else float(self.reg_mu)
        return {**fitted, "reg_lambda_": lam, "reg_mu_": mu, "reg_nu_": float(self.reg_nu or 0.0), "cv_folds_": 0,
                "cv_nll_": None, "max_gain_": None, "train_nll_": None}

    def _transform(self, z: torch.Tensor) -> torch.Tensor:
        return _apply(self._features(z), self.weight_.to(z.device), self.bias_.to(z.device))

    def _params(self) -> dict[str, Any]:
        w = _diagonal(self.weight_)
        out: dict[str, Any] = {
            "n_parameters": int(self.weight_.numel() + self.bias_.numel()),
            "objective": self.loss_,
            "n_evaluations": self.n_iter_,
            "diagonal_mean": float(w.mean()),
            "bias_l2": float(self.bias_.norm()),
        }
        if self.weight_.ndim == 2:
            off = self.weight_ - torch.diag(torch.diagonal(self.weight_))
            out["off_diagonal_l2"] = float(off.norm())
            # params_ holds finite JSON scalars: lambda = inf (off-diagonals fixed at 0) shows as diagonal_only
            out["diagonal_only"] = int(math.isinf(self.reg_lambda_))
            if math.isfinite(self.reg_lambda_):
                out["reg_lambda"] = self.reg_lambda_
        out["reg_mu"] = self.reg_mu_
        out["reg_nu"] = self.reg_nu_
        out["cv_folds"] = self.cv_folds_
        for key in ("cv_nll", "max_gain", "train_nll"):
            value = getattr(self, key + "_")
            if value is not None:
                out[key] = value
        return out


@register("vector")
class VectorScaling(_LinearCalibrator):
    """Vector scaling: ``q = softmax(w * z + b)``, w, b in R^K (Guo et al. 2017, arXiv 1706.04599).

    Fitted on validation NLL with float64 L-BFGS (:mod:`caltrain.posthoc.linear`), the intercept penalty mu and
    the diagonal-spread penalty nu chosen by cross-validation unless given (the search starts at temperature
    scaling). Can change the argmax (the bias and per-class scales re-rank classes). 2K parameters: without
    regularisation it runs away on a few thousand samples at K = 100 (module docstring).

    Args:
        reg_mu: mu, ``mu / K * sum b^2`` (default None: chosen by CV with reg_nu; 0 when only reg_nu is given).
        reg_nu: nu, ``nu / K * sum (w_k - mean w)^2`` (default None: chosen by CV; 0 when only reg_mu is given).
        cv_folds: folds of the CV (default 5). cv_seed: seed of the fold assignment (default 0).
        max_iter: most L-BFGS iterations of the final fit (default 500). tol: its tolerance on the largest
            gradient entry (default 1e-5; Reading: 1e-7 triples the K = 100 fit time and moves held-out NLL by
            < 1e-5, measured on CIFAR-100 outputs).
        abstention: see :mod:`caltrain.posthoc.base`.

    Fitted attributes: ``weight_ [K]``, ``bias_ [K]``, ``n_iter_`` (function evaluations), ``loss_``,
    ``reg_mu_``, ``reg_nu_`` (``reg_lambda_`` = 0), ``cv_folds_``, ``cv_nll_``, ``max_gain_``, ``train_nll_``,
    ``cv_path_`` (not saved).
    """

    _structure = "vector"

    def __init__(
        self,
        *,
        reg_mu: float | None = None,
        reg_nu: float | None = None,
        cv_folds: int = 5,
        cv_seed: int = 0,
        max_iter: int = 500,
        tol: float = 1e-5,
        abstention: str | None = None,
    ) -> None:
        super().__init__(reg_lambda=None, reg_mu=reg_mu, reg_nu=reg_nu, cv_folds=cv_folds, cv_seed=cv_seed,
                         max_iter=max_iter, tol=tol, abstention=abstention)


@register("matrix")
class MatrixScaling(_LinearCalibrator):
    """Matrix scaling: ``q = softmax(W z + b)``, W in R^{KxK} (Guo et al. 2017); MS-ODIR (Kull et al. 2019).

    ODIR (Kull et al. 2019, arXiv 1910.12656): ``lambda/(K(K-1)) sum_{j!=k} W_jk^2 + mu/K sum b_k^2``, plus
    caltrain's ``nu/K sum_k (W_kk - mean W_jj)^2``; all three chosen by cross-validation unless one is given
    (module docstring). Fitted on validation NLL with float64 L-BFGS. K = 100 has 10,100 parameters: plain
    matrix scaling (``reg_lambda=0``) over-fits any validation split (and warns below 10 samples per parameter).

    Args:
        reg_lambda: lambda (default None: chosen by CV; ``reg_lambda=0`` alone is Guo et al.'s matrix scaling;
            ``float("inf")`` fixes the off-diagonals at 0).
        reg_mu: mu (default None: by CV, or equal to a finite reg_lambda when that is given).
        reg_nu: nu (default None: by CV, or 0 when another is given).
        cv_folds, cv_seed, max_iter, tol, abstention: as :class:`VectorScaling`.

    Fitted attributes: ``weight_ [K, K]``, ``bias_ [K]``, ``n_iter_``, ``loss_``, ``reg_lambda_``, ``reg_mu_``,
    ``reg_nu_``, ``cv_folds_``, ``cv_nll_``, ``max_gain_``, ``train_nll_``, ``cv_path_`` (not saved).
    """

    _structure = "matrix"


@register("dirichlet")
class DirichletCalibration(_LinearCalibrator):
    """Dirichlet calibration with ODIR: ``q = softmax(W log softmax(z) + b)`` (Kull et al. 2019, arXiv 1910.12656).

    A matrix map on log-probabilities, fitted on validation NLL plus the ODIR penalty
    ``lambda/(K(K-1)) sum_{j!=k} W_jk^2 + mu/K sum b_k^2`` and caltrain's ``nu/K sum_k (W_kk - mean W_jj)^2``,
    with float64 L-BFGS; lambda, mu and nu are chosen by cross-validation unless one is given (module docstring;
    the paper cross-validates lambda and mu too).

    Args:
        reg_lambda: lambda (default None: chosen by CV; ``float("inf")`` fixes the off-diagonals at 0: diagonal
            Dirichlet calibration).
        reg_mu: mu (default None: by CV, or equal to a finite reg_lambda when that is given, as the authors'
            package).
        reg_nu: nu (default None: by CV, or 0 when another is given).
        cv_folds, cv_seed, max_iter, tol, abstention: as :class:`VectorScaling`.

    Fitted attributes: as :class:`MatrixScaling`.
    """

    _structure = "matrix"

    def _features(self, z: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(z, dim=1)
