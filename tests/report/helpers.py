"""Random predictions without ties at bin edges, and NumPy references independent of the code under test."""

from __future__ import annotations

import numpy as np
import torch


def predictions(n: int = 600, k: int = 4, seed: int = 0, temperature: float = 1.5):
    """(probs [n, k] float64 tensor, labels [n] int64 tensor), over-confident and with no value on an edge."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, k)) * 2.5
    labels = np.array([rng.choice(k, p=np.exp(z / temperature) / np.exp(z / temperature).sum()) for z in logits])
    probs = torch.softmax(torch.from_numpy(logits), dim=1)
    return probs, torch.from_numpy(labels)


def np_uniform_bins(conf: np.ndarray, outcome: np.ndarray, n_bins: int):
    """(count, mean conf, mean outcome) per equal-width bin (lo, hi], conf 0 in the first bin."""
    idx = np.clip(np.ceil(conf * n_bins).astype(int) - 1, 0, n_bins - 1)
    count = np.zeros(n_bins)
    s_conf = np.zeros(n_bins)
    s_out = np.zeros(n_bins)
    for b in range(n_bins):
        m = idx == b
        count[b], s_conf[b], s_out[b] = m.sum(), conf[m].sum(), outcome[m].sum()
    with np.errstate(invalid="ignore", divide="ignore"):
        return count, s_conf / count, s_out / count
