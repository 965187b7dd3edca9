"""Independent NumPy references for the metrics (written from the formulas, loops over bins allowed)."""

from __future__ import annotations

import math

import numpy as np


def uniform_bins(conf: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin (lo, hi] with 0 in the first bin, from the edges j / B, by explicit comparisons."""
    edges = np.array([j / n_bins for j in range(n_bins + 1)])
    idx = np.zeros(len(conf), dtype=int)
    for b in range(1, n_bins):
        idx[conf > edges[b]] = b
    return idx


def ece_from_bins(conf, outcome, idx, n_bins, norm="l1"):
    n = len(conf)
    total, sq, worst = 0.0, 0.0, 0.0
    for b in range(n_bins):
        m = idx == b
        if not m.any():
            continue
        gap = abs(outcome[m].mean() - conf[m].mean())
        total += m.sum() / n * gap
        sq += m.sum() / n * gap**2
        worst = max(worst, gap)
    return {"l1": total, "l2": math.sqrt(sq), "max": worst}[norm]


def ece(probs, labels, n_bins=15, norm="l1", binning="uniform"):
    conf = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(float)
    if binning == "uniform":
        idx = uniform_bins(conf, n_bins)
    else:  # equal mass by rank, no ties assumed
        order = np.argsort(conf, kind="stable")
        idx = np.empty(len(conf), dtype=int)
        idx[order] = np.arange(len(conf)) * n_bins // len(conf)
    return ece_from_bins(conf, correct, idx, n_bins, norm)


def classwise_ece(probs, labels, n_bins=15):
    k = probs.shape[1]
    return float(np.mean([
        ece_from_bins(probs[:, c], (labels == c).astype(float), uniform_bins(probs[:, c], n_bins), n_bins)
        for c in range(k)
    ]))


def debiased_l2(probs, labels, n_bins):
    conf = probs.max(1)
    correct = (probs.argmax(1) == labels).astype(float)
    order = np.argsort(conf, kind="stable")
    idx = np.empty(len(conf), dtype=int)
    idx[order] = np.arange(len(conf)) * n_bins // len(conf)
    total = 0.0
    for b in range(n_bins):
        m = idx == b
        nb = m.sum()
        if nb < 2:
            continue
        acc, c = correct[m].mean(), conf[m].mean()
        total += nb / len(conf) * ((acc - c) ** 2 - acc * (1 - acc) / (nb - 1))
    return math.sqrt(max(total, 0.0))


def aurc(conf, correct):
    """No ties assumed: sort decreasing, mean of running error rates."""
    order = np.argsort(-conf, kind="stable")
    err = 1.0 - correct[order]
    return float(np.mean(np.cumsum(err) / np.arange(1, len(err) + 1)))


def mmce(conf, correct, width=0.4):
    a = correct - conf
    k = np.exp(-np.abs(conf[:, None] - conf[None, :]) / width)
    return math.sqrt(max(a @ k @ a, 0.0)) / len(conf)
