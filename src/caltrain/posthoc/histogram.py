"""``histogram``: one-vs-rest histogram binning, renormalised (Zadrozny & Elkan 2001; Guo et al. 2017 Sec. 4.1).

For every class k, the uncalibrated probabilities ``p_k = softmax(z)_k`` are put in B equal-width bins on
[0, 1] with the (lo, hi] convention of the ECE bins (``p_k = 0`` in the first bin). The calibrated score of a
sample whose ``p_k`` falls in bin b is the validation frequency of class k in that bin,

    theta_kb = (sum_i 1[y_i = k] 1[p_ik in bin b]) / (sum_i 1[p_ik in bin b]),

and an empty bin takes its midpoint (netcal's choice). The K one-vs-rest scores are renormalised to sum to 1;
a sample whose K scores are all 0 gets the uniform distribution 1/K (Reading: netcal divides by zero there).
Counts are accumulated with one ``scatter_add`` over ``K * B`` cells (no per-class loop). Not a logit map, and
the argmax can change (scores are piecewise constant, so ties are common).

Zero probabilities and the NLL. A bin where class k never occurred gives ``theta_kb = 0``: the renormalised
probability of a true class can be exactly 0 and its log-likelihood is -inf. The output is therefore mixed with
the uniform distribution, :func:`smooth`:

    q = (1 - eps) * q_binned + eps / K,      eps = ``smoothing`` (default 1e-3),

a documented floor ``eps / K`` on every probability (K = 100: 1e-5, at most 11.5 nats per sample), so the NLL
that :func:`caltrain.posthoc.compare` and the report show is that of these smoothed probabilities; the
confidence moves by at most ``eps``, hence ECE by at most ``eps``. ``smoothing=0`` gives the raw binned
probabilities (netcal's); their NLL is then bounded only by the metric's own clamp at the smallest float64
(708 nats per zero-probability sample, :mod:`caltrain.metrics.proper_scores`), i.e. undefined in practice.
Reading: the smoothing and its default are caltrain's choice (the papers report no NLL for binning).

Example:
    >>> import torch
    >>> one_vs_rest_normalize(torch.tensor([[1.0, 3.0], [0.0, 0.0]])).tolist()
    [[0.25, 0.75], [0.5, 0.5]]
"""

from __future__ import annotations

from typing import Any

import torch

from caltrain.posthoc.base import Calibrator, Field
from caltrain.posthoc.registry import register
from caltrain.utils.checks import check_n_bins, check_number

__all__ = ["DEFAULT_SMOOTHING", "HistogramBinning", "one_vs_rest_normalize", "smooth"]

#: Default weight of the uniform distribution mixed into the binning calibrators' outputs.
DEFAULT_SMOOTHING = 1e-3


def smooth(probs: torch.Tensor, smoothing: float) -> torch.Tensor:
    """``(1 - eps) probs + eps / K`` with ``eps = smoothing``: rows stay on the simplex, every entry >= eps / K."""
    if not smoothing:
        return probs
    return probs * (1.0 - smoothing) + smoothing / probs.shape[1]


def check_smoothing(value: float) -> float:
    """``smoothing`` as a float in [0, 1) (1 would discard the calibrator), or ``ValueError`` naming it."""
    return check_number(value, "smoothing", low=0.0, high=1.0, high_inclusive=False)


def one_vs_rest_normalize(scores: torch.Tensor) -> torch.Tensor:
    """Rows of non-negative one-vs-rest scores ``[N, K]`` divided by their sums; all-zero rows become 1/K."""
    total = scores.sum(dim=1, keepdim=True)
    uniform = torch.full_like(scores, 1.0 / scores.shape[1])
    return torch.where(total > 0, scores / total.clamp(min=torch.finfo(scores.dtype).tiny), uniform)


def _bin_index(p: torch.Tensor, n_bins: int) -> torch.Tensor:
    edges = torch.linspace(0.0, 1.0, n_bins + 1, dtype=torch.float64, device=p.device)[1:-1]
    return torch.bucketize(p, edges, right=False)


@register("histogram")
class HistogramBinning(Calibrator):
    """One-vs-rest histogram binning on softmax probabilities, renormalised (module docstring for the math).

    Args:
        n_bins: B equal-width bins per class (default 10, netcal's and Zadrozny & Elkan's).
        smoothing: eps, the weight of the uniform distribution mixed in (default 1e-3: a floor eps / K on every
            probability, so the NLL is finite; 0 gives netcal's raw outputs, with zero probabilities).
        abstention: see :mod:`caltrain.posthoc.base`.

    Fitted attributes: ``bin_values_`` ``[K, B]`` (theta), ``bin_counts_`` ``[K, B]`` (validation samples).
    """

    is_logit_map = False
    _fitted = ("bin_values_", "bin_counts_")
    _fields = {
        "bin_values_": Field("array", shape=lambda c, k: (k, c.n_bins), low=0.0, high=1.0),
        "bin_counts_": Field("array", shape=lambda c, k: (k, c.n_bins), low=0.0),
    }

    def __init__(
        self, *, n_bins: int = 10, smoothing: float = DEFAULT_SMOOTHING, abstention: str | None = None
    ) -> None:
        super().__init__(abstention=abstention)
        check_n_bins(n_bins)
        self.n_bins = n_bins
        check_smoothing(smoothing)
        self.smoothing = smoothing

    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> None:
        n, k = z.shape
        b = self.n_bins
        p = torch.softmax(z, dim=1)
        cell = (torch.arange(k, device=z.device) * b)[None, :] + _bin_index(p, b)  # [N, K] in [0, K*B)
        hits = torch.nn.functional.one_hot(y, k).to(torch.float64)
        flat = cell.reshape(-1)
        zeros = torch.zeros(k * b, dtype=torch.float64, device=z.device)
        counts = zeros.scatter_add(0, flat, torch.ones(n * k, dtype=torch.float64, device=z.device))
        sums = zeros.scatter_add(0, flat, hits.reshape(-1))
        mids = ((torch.arange(b, dtype=torch.float64, device=z.device) + 0.5) / b).repeat(k)
        values = torch.where(counts > 0, sums / counts.clamp(min=1), mids)
        self.bin_values_ = values.reshape(k, b).cpu()
        self.bin_counts_ = counts.reshape(k, b).cpu()

    def _predict_proba(self, z: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(z, dim=1)
        values = self.bin_values_.to(z.device)
        scores = values.gather(1, _bin_index(p, self.n_bins).T).T
        return smooth(one_vs_rest_normalize(scores), self.smoothing)

    def _params(self) -> dict[str, Any]:
        return {"empty_bins": int((self.bin_counts_ == 0).sum()), "smoothing": float(self.smoothing)}
