"""Independent references for the post-hoc calibrator tests (NumPy / plain torch, no caltrain code)."""

from __future__ import annotations

import numpy as np
import torch


def sample_logits(n: int, k: int, *, scale: float = 2.0, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(z, y)``: float64 logits ``[n, k]`` and labels drawn from ``softmax(z)`` (so z is perfectly calibrated)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, k, generator=g, dtype=torch.float64) * scale
    y = torch.multinomial(torch.softmax(z, dim=1), 1, generator=g)[:, 0]
    return z, y


def nll(probs, labels) -> float:
    """Mean negative log-likelihood of the true class."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-300, None))))


def np_softmax(z) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def np_ece(probs, labels, n_bins: int = 15) -> float:
    """Top-label ECE, equal-width bins (lo, hi], confidence 0 in the first bin (Guo et al. 2017)."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi) if lo > 0 else (conf <= hi)
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return total
