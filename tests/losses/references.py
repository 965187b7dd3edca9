"""Independent NumPy references (float64) of the logit-only objectives: per-sample losses [N] (batch terms added)."""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax, logsumexp


def _logp(z):
    return log_softmax(np.asarray(z, np.float64), axis=1)


def _py(z, y):
    return np.exp(_logp(z)[np.arange(len(y)), y])


def ce(z, y):
    return -_logp(z)[np.arange(len(y)), y]


def ls(z, y, smoothing=0.05):
    k = z.shape[1]
    t = np.full(z.shape, smoothing / k)
    t[np.arange(len(y)), y] += 1 - smoothing
    return -(t * _logp(z)).sum(1)


def focal(z, y, gamma=3.0):
    return -((1 - _py(z, y)) ** gamma) * np.log(_py(z, y))


def flsd53(z, y):
    p = _py(z, y)
    g = np.where(p < 0.2, 5.0, 3.0)
    return -((1 - p) ** g) * np.log(p)


def dual_focal(z, y, gamma=5.0):
    p = np.exp(_logp(z))
    out = []
    for i in range(len(y)):
        py = p[i, y[i]]
        below = [q for q in p[i] if q < py]
        pj = max(below) if below else 0.0
        out.append(-((1 - py + pj) ** gamma) * np.log(py))
    return np.array(out)


def ecp(z, y, beta=0.1):
    p = np.exp(_logp(z))
    h = -(p * np.log(p)).sum(1)
    return ce(z, y) - beta * h


def brier(z, y):
    p = np.exp(_logp(z))
    onehot = np.eye(z.shape[1])[y]
    return ((p - onehot) ** 2).sum(1)


def logitnorm(z, y, temperature=0.04):
    zn = z / (temperature * (np.linalg.norm(z, axis=1, keepdims=True) + 1e-7))
    return ce(zn, y)


def poly1(z, y, epsilon=1.0):
    return ce(z, y) + epsilon * (1 - _py(z, y))


def mbls(z, y, margin=10.0, alpha=0.1):
    d = z.max(1, keepdims=True) - z
    return ce(z, y) + alpha * np.maximum(d - margin, 0).mean(1)


def mmce(z, y, weight=2.0, bandwidth=0.4, weighted=False):
    p = np.exp(_logp(z))
    r, pred = p.max(1), p.argmax(1)
    c = (pred == y).astype(float)
    n = len(y)
    total = 0.0
    if not weighted:
        for i in range(n):
            for j in range(n):
                total += (c[i] - r[i]) * (c[j] - r[j]) * np.exp(-abs(r[i] - r[j]) / bandwidth)
        sq = total / n**2
    else:
        m, w = max(c.sum(), 1), max((1 - c).sum(), 1)
        cor, inc = np.where(c == 1)[0], np.where(c == 0)[0]
        k = lambda a, b: np.exp(-abs(r[a] - r[b]) / bandwidth)  # noqa: E731
        sq = sum((1 - r[i]) * (1 - r[j]) * k(i, j) for i in cor for j in cor) / m**2
        sq += sum(r[i] * r[j] * k(i, j) for i in inc for j in inc) / w**2
        sq -= 2 * sum((1 - r[i]) * r[j] * k(i, j) for i in cor for j in inc) / (m * w)
    return ce(z, y) + weight * np.sqrt(max(sq, 0) + 1e-10)


def dca(z, y, weight=1.0):
    p = np.exp(_logp(z))
    return ce(z, y) + weight * abs(p.max(1).mean() - (p.argmax(1) == y).mean())


def mdca(z, y, weight=1.0):
    p = np.exp(_logp(z))
    k = z.shape[1]
    term = np.mean([abs(p[:, c].mean() - (y == c).mean()) for c in range(k)])
    return ce(z, y) + weight * term


def dece(z, y, weight=0.5, n_bins=15, temperature=0.01):
    p = np.exp(_logp(z))
    conf, acc = p.max(1), (p.argmax(1) == y).astype(float)
    cuts = np.arange(1, n_bins) / n_bins
    w = np.arange(1, n_bins + 1)
    b = np.concatenate([[0.0], -np.cumsum(cuts)])
    s = (conf[:, None] * w + b) / temperature
    o = np.exp(s - logsumexp(s, axis=1, keepdims=True))
    nb = o.sum(0)
    acc_b = (o * acc[:, None]).sum(0) / nb
    conf_b = (o * conf[:, None]).sum(0) / nb
    return ce(z, y) + weight * (nb / len(y) * abs(acc_b - conf_b)).sum()


def gence(z, y, weight=1.0, exclude_self=False):
    p = np.exp(_logp(z))
    n = len(y)
    if exclude_self and n > 1:
        est = np.array([(p[:, y[i]].sum() - p[i, y[i]]) / (n - 1) for i in range(n)])
    else:
        est = p[:, y].mean(0)
    return ce(z, y) + weight * np.log(est)


REFERENCES = {
    "ce": ce, "ls": ls, "focal": focal, "flsd53": flsd53, "dual_focal": dual_focal, "ecp": ecp, "brier": brier,
    "logitnorm": logitnorm, "poly1": poly1, "mbls": mbls, "mmce": mmce, "dca": dca, "mdca": mdca, "dece": dece,
    "gence": gence,
}
