"""``ats``: adaptive piecewise temperature scaling. A RECONSTRUCTION, not the published algorithm.

ATS is named in the GenCE abstract (Zhan, Zhou, Shen; arXiv 2604.06689) as a post-hoc, gradient-free,
piecewise temperature scaling with hyperparameters; its algorithm is not public. This module implements the
reading in docs/methods.md#gence-and-adaptive-temperature-scaling-ats, labelled as such everywhere it is reported:

1. The uncalibrated confidence of a sample is ``c = max_k softmax(z)_k`` in ``[1/K, 1]``.
2. The validation confidences are split into M pieces by M-1 interior edges ``e_1 <= ... <= e_{M-1}``:
   ``"equal-mass"`` (default) puts the edges at the validation quantiles ``m/M`` of c (each piece holds about
   N/M samples); ``"equal-width"`` puts them at ``1/K + m (1 - 1/K)/M``. A sample is in piece m when
   ``e_m < c <= e_{m+1}`` (``e_0 = -inf``, ``e_M = +inf``), the (lo, hi] convention of the ECE bins.
3. In each piece with at least ``min_piece_size`` validation samples, ``T_m`` minimises the NLL of that piece
   by the same bracketed 1-D search as ``ts`` (:func:`~caltrain.posthoc.temperature.fit_temperature`, over
   ``[t_min, t_max]``); smaller pieces use the global temperature T (``ts`` on all samples).
4. At test time a sample's logits are divided by the ``T_m`` of the piece of its uncalibrated confidence.

Every sample is scaled by a positive scalar, so the argmax is preserved. What is monotone is each sample's own
confidence as a function of its temperature: ``c(T) = max_k softmax(z / T)_k = 1 / sum_k exp((z_k - z_max) / T)``
is non-increasing in T (every exponent ``(z_k - z_max) / T <= 0`` rises towards 0 as T grows). The calibrated
confidence is NOT a monotone function of the uncalibrated confidence, neither across piece edges (different
T_m) nor within a piece: for K > 2 it depends on the whole logit vector, not on c alone, so temperature scaling
itself, with one T for all samples, reorders the confidences of samples (two samples with equal c can get
different calibrated confidences; on a K = 10 test about half of the adjacent pairs in confidence order swap,
``tests/posthoc/test_ats.py``). Only for K = 2 is c(T) a monotone function of c. A piece whose samples are all
correct drives its T_m to ``t_min``; the default bracket
[0.05, 20] (narrower than ``ts``'s) bounds that sharpening, and ``min_piece_size`` keeps pieces from
fitting noise.

Hyperparameters: ``n_pieces`` M (default 10), ``binning`` ("equal-mass" or "equal-width"), ``min_piece_size``
(default 100), ``t_min``/``t_max`` (default 0.05, 20).

Example:
    >>> import torch
    >>> c = torch.tensor([0.4, 0.5, 0.6, 0.7, 0.8, 0.9], dtype=torch.float64)
    >>> edges = piece_edges(c, 3, "equal-mass", num_classes=2)
    >>> edges.tolist(), piece_index(c, edges).tolist()
    ([0.5, 0.7], [0, 0, 1, 1, 2, 2])
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from caltrain.posthoc.base import Calibrator, Field, positive_temperature
from caltrain.posthoc.registry import register
from caltrain.posthoc.temperature import fit_temperature
from caltrain.utils.checks import check_choice, check_n_bins, check_number, check_positive_int

__all__ = ["AdaptiveTemperatureScaling", "piece_edges", "piece_index"]

BINNINGS = ("equal-mass", "equal-width")


def piece_edges(confidence: torch.Tensor, n_pieces: int, binning: str, num_classes: int) -> torch.Tensor:
    """The M-1 interior edges (float64, sorted) splitting ``confidence [N]`` into ``n_pieces`` pieces.

    ``"equal-mass"``: the order statistics at ranks ``floor(m N / M)`` (``m = 1..M-1``) of the sorted
    confidences, so each piece holds N/M samples up to ties. ``"equal-width"``: equal-width steps over
    ``[1/K, 1]``, the range of a top-label confidence.
    """
    if binning == "equal-width":
        lo = 1.0 / num_classes
        edges = torch.linspace(lo, 1.0, n_pieces + 1, dtype=torch.float64, device=confidence.device)
        return edges[1:-1]
    ordered = torch.sort(confidence.to(torch.float64)).values
    n = ordered.shape[0]
    ranks = (torch.arange(1, n_pieces, device=confidence.device) * n) // n_pieces
    return ordered[(ranks - 1).clamp(min=0)]


def piece_index(confidence: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """The piece of each confidence: m such that ``edges[m-1] < c <= edges[m]`` (int64 ``[N]``)."""
    return torch.bucketize(confidence.to(torch.float64), edges.to(confidence.device), right=False)


@register("ats")
class AdaptiveTemperatureScaling(Calibrator):
    """Adaptive piecewise temperature scaling: one temperature per confidence piece (RECONSTRUCTION).

    ``q = softmax(z / T_{m(c)})``, ``c = max softmax(z)``, ``m(c)`` the piece of c; the T_m are fitted per piece
    on validation NLL, with the global temperature for pieces smaller than ``min_piece_size``. The published
    ATS algorithm is not public; this is caltrain's reading (module docstring, docs/methods.md#gence-and-adaptive-temperature-scaling-ats).

    Args:
        n_pieces: M, the number of confidence pieces (default 10).
        binning: ``"equal-mass"`` (default) or ``"equal-width"`` pieces.
        min_piece_size: pieces with fewer validation samples use the global T (default 100).
        t_min, t_max: bracket of every 1-D search (default 0.05, 20).
        abstention: see :mod:`caltrain.posthoc.base`.

    Fitted attributes: ``edges_`` ``[M-1]``, ``temperatures_`` ``[M]``, ``piece_sizes_`` ``[M]`` (validation
    samples per piece), ``temperature_`` (the global T).
    """

    preserves_argmax = True
    _fitted = ("edges_", "temperatures_", "piece_sizes_", "temperature_")
    _fields = {
        "edges_": Field("array", shape=lambda c, k: (c.n_pieces - 1,), low=0.0, high=1.0, nondecreasing=True),
        "temperatures_": Field(
            "array", shape=lambda c, k: (c.n_pieces,), low=lambda c: c.t_min, high=lambda c: c.t_max
        ),
        "piece_sizes_": Field("array", shape=lambda c, k: (c.n_pieces,), low=0.0),
        "temperature_": positive_temperature(lambda c: c.t_min, lambda c: c.t_max),
    }

    def __init__(
        self,
        *,
        n_pieces: int = 10,
        binning: str = "equal-mass",
        min_piece_size: int = 100,
        t_min: float = 0.05,
        t_max: float = 20.0,
        abstention: str | None = None,
    ) -> None:
        super().__init__(abstention=abstention)
        check_n_bins(n_pieces, "n_pieces")
        self.n_pieces = n_pieces
        check_choice(binning, "binning", BINNINGS)
        self.binning = binning
        check_positive_int(min_piece_size, "min_piece_size")
        self.min_piece_size = min_piece_size
        check_number(t_min, "t_min", low=0, low_inclusive=False)
        self.t_min = t_min
        check_number(t_max, "t_max", low=self.t_min, low_inclusive=False)
        self.t_max = t_max

    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> None:
        conf = torch.softmax(z, dim=1).amax(dim=1)
        edges = piece_edges(conf, self.n_pieces, self.binning, z.shape[1])
        piece = piece_index(conf, edges)
        sizes = torch.bincount(piece, minlength=self.n_pieces).cpu()
        t_global, _, at_bound = fit_temperature(z, y, t_min=self.t_min, t_max=self.t_max)
        if at_bound:  # as ts: an optimum at a bracket end is not a fitted temperature
            warnings.warn(
                f"ats: the NLL-optimal global temperature is at the bound {t_global:g} of [t_min, t_max] = "
                f"[{self.t_min:g}, {self.t_max:g}] (every validation sample classified correctly, or logits beyond "
                "the bracket); the pieces that fall back to it inherit the bound",
                RuntimeWarning,
                stacklevel=3,
            )
        temps = []
        for m, size in enumerate(sizes.tolist()):
            if size >= self.min_piece_size:
                mask = piece == m
                temps.append(fit_temperature(z[mask], y[mask], t_min=self.t_min, t_max=self.t_max)[0])
            else:
                temps.append(t_global)
        self.edges_ = edges.cpu()
        self.temperatures_ = torch.tensor(temps, dtype=torch.float64)
        self.piece_sizes_ = sizes.to(torch.float64)
        self.temperature_ = t_global

    def _transform(self, z: torch.Tensor) -> torch.Tensor:
        conf = torch.softmax(z, dim=1).amax(dim=1)
        piece = piece_index(conf, self.edges_.to(z.device))
        return z / self.temperatures_.to(z.device)[piece][:, None]

    def _params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"temperature": self.temperature_}
        for m, t in enumerate(self.temperatures_.tolist()):
            out[f"temperature_piece_{m}"] = t
        return out
