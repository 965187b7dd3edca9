"""Independent references for the analysis tests: NumPy formulas and explicitly built curvature matrices.

Nothing here calls caltrain; the explicit matrices come from ``torch.autograd.functional`` (a dense
Jacobian / Hessian), the eigenvalues from ``numpy.linalg.eigvalsh``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def np_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_margins(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """m_i = z_{i,y_i} - max_{j != y_i} z_{i,j}, by a plain loop over samples."""
    out = np.empty(len(y))
    for i, (row, label) in enumerate(zip(z, y)):
        out[i] = row[label] - np.max(np.delete(row, label))
    return out


def np_ece(probs: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE, equal-width bins (lo, hi], confidence 0 in the first bin (Guo et al. 2017)."""
    conf, pred = probs.max(axis=1), probs.argmax(axis=1)
    correct = (pred == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ece = 0.0
    for b in range(n_bins):
        in_bin = (conf > edges[b]) & (conf <= edges[b + 1])
        if b == 0:
            in_bin |= conf == 0.0
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - conf[in_bin].mean())
    return ece


def _trainable(model: nn.Module) -> tuple[list[str], tuple[torch.Tensor, ...]]:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return [n for n, _ in named], tuple(p.detach().clone() for _, p in named)


def explicit_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """J [N, K, P] of the eval-mode model's logits w.r.t. its trainable parameters, built densely."""
    names, params = _trainable(model)

    def logits(*ps):
        return torch.func.functional_call(model, dict(zip(names, ps)), (x,))

    was_training = model.training
    model.eval()
    try:
        parts = torch.autograd.functional.jacobian(logits, params)
        z = logits(*params)
    finally:
        model.train(was_training)
    n, k = z.shape
    return torch.cat([j.reshape(n, k, -1) for j in parts], dim=2)


def explicit_gauss_newton(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """G = (1/N) sum_i J_i^T (diag p_i - p_i p_i^T) J_i as a dense float64 NumPy matrix [P, P]."""
    jac = explicit_jacobian(model, x).double().numpy()
    model.eval()
    with torch.no_grad():
        p = np_softmax(model(x).double().numpy())
    h = np.stack([np.diag(row) - np.outer(row, row) for row in p])
    return np.einsum("nkp,nkl,nlq->pq", jac, h, jac) / len(p)


def explicit_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """The dense Hessian [P, P] of the mean cross-entropy of the eval-mode model w.r.t. its trainable parameters."""
    names, params = _trainable(model)
    sizes = [p.numel() for p in params]

    def loss(flat):
        ps = [chunk.view_as(p) for chunk, p in zip(flat.split(sizes), params)]
        return nn.functional.cross_entropy(torch.func.functional_call(model, dict(zip(names, ps)), (x,)), y)

    model.eval()
    flat = torch.cat([p.reshape(-1) for p in params])
    return torch.autograd.functional.hessian(loss, flat).double().numpy()


def tiny_mlp(in_features: int = 3, hidden: int = 5, classes: int = 3, *, seed: int = 0) -> nn.Sequential:
    """A float64 tanh MLP small enough for dense curvature matrices (3-5-3: 38 parameters)."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(in_features, hidden), nn.Tanh(), nn.Linear(hidden, classes)).double()
