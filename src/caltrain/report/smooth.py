"""``SmoothReliability``: a kernel-smoothed reliability curve with a bootstrap band (no bins to choose).

For top-label confidences c_i and correctness a_i (i = 1..N), the curve at t in [0, 1] estimates
P(correct | confidence = t) by Nadaraya-Watson kernel regression:

    r(t) = sum_i K_h(t, c_i) a_i / sum_i K_h(t, c_i),
    K_h(t, c) = phi((t - c)/h) + phi((t + c)/h) + phi((t - (2 - c))/h)      (Gaussian reflected at 0 and 1)

with phi the standard normal density and bandwidth h. The band is the pointwise percentile interval
[q_{alpha/2}, q_{1-alpha/2}] of r over ``n_boot`` bootstrap resamples (N indices drawn with replacement).

Computation: the confidences are first histogrammed on a fine grid of ``fine`` cells (default 2048, centres
c_j), then r = (W s) / (W n) with the G x fine kernel matrix W, cell counts n and cell correct-sums s; the
position error is at most 1/(2 fine), far below h. Each bootstrap resample only changes n and s (computed for all
resamples at once with one bincount), so the whole band costs one [n_boot, fine] x [fine, G] product.

Błasiok and Nakkiran, "Smooth ECE: Principled Reliability Diagrams via Kernel Smoothing", 2023
(arXiv:2309.12236): the reflected Gaussian kernel regression is the diagram of their ``relplot`` package
(``prepare_rel_diagram``; the tests compare with it). Reading: they choose h by a fixed point of smooth
ECE; a plot needs a stable, comparable h across objectives, so we default to a fixed h = 0.05 (pass another).
The curve is left undrawn (NaN) where the kernel-weighted count h sqrt(2 pi) sum_i K_h(t, c_i) (each sample
weighing at most 1) is below 1, i.e. where there is no data to speak of.

Example:
    >>> import torch
    >>> probs = torch.tensor([[0.8, 0.2]] * 50, dtype=torch.float64)
    >>> s = SmoothReliability.from_predictions(probs, torch.tensor([0] * 40 + [1] * 10), n_boot=50)
    >>> i = 160                          # grid point t = 0.8, where all the confidences are
    >>> round(float(s.grid[i]), 2), round(float(s.curve[i]), 6)   # 40 of 50 correct at confidence 0.8
    (0.8, 0.8)
    >>> bool(s.lower[i] <= s.curve[i] <= s.upper[i])
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from caltrain.report.figures import as_numpy, new_axes, top_label, validated_probs
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["SmoothReliability", "kernel_matrix"]


def kernel_matrix(grid: torch.Tensor, centres: torch.Tensor, bandwidth: float) -> torch.Tensor:
    """The reflected Gaussian kernel K_h(t_g, c_j) as a [G, J] float64 matrix (module docstring)."""
    t, c = grid[:, None], centres[None, :]
    scale = 1.0 / (bandwidth * math.sqrt(2 * math.pi))

    def phi(u: torch.Tensor) -> torch.Tensor:
        return torch.exp(-0.5 * (u / bandwidth) ** 2) * scale

    return phi(t - c) + phi(t + c) + phi(t - (2 - c))


@dataclass(frozen=True)
class SmoothReliability:
    """A smooth reliability curve on a grid, with its bootstrap band.

    Attributes:
        grid: the points t [G] in [0, 1].
        curve: r(t) [G] (NaN where there is no data).
        lower, upper: the bootstrap band [G] (NaN where undefined).
        density: the kernel density of the confidences at t [G] (integrates to about 1).
        bandwidth: h.
        n_boot, alpha: the bootstrap settings.
        label: a legend label, or None.
    """

    grid: np.ndarray
    curve: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    density: np.ndarray
    bandwidth: float
    n_boot: int
    alpha: float
    label: str | None = None

    @classmethod
    def from_predictions(
        cls,
        probs: Any,
        labels: Any,
        *,
        bandwidth: float = 0.05,
        grid_size: int = 201,
        n_boot: int = 200,
        alpha: float = 0.05,
        seed: int = 0,
        fine: int = 2048,
        from_logits: bool = False,
        label: str | None = None,
    ) -> "SmoothReliability":
        """Smooth the top-label correctness against confidence.

        Args:
            probs: probabilities [N, K] (or logits with ``from_logits=True``); labels: [N] in [0, K).
            bandwidth: h in (0, 1] (default 0.05, see the module docstring).
            grid_size: G >= 2 evaluation points on [0, 1].
            n_boot: bootstrap resamples (0: no band).
            alpha: the band is the (1 - alpha) percentile interval, alpha in (0, 1).
            seed: seed of the resampling (the band is reproducible).
            fine: cells of the fine histogram the kernel is applied to.
        """
        h = check_number(bandwidth, "bandwidth", low=0.0, high=1.0, low_inclusive=False)
        grid_size = check_positive_int(grid_size, "grid_size", minimum=2)
        n_boot = check_positive_int(n_boot, "n_boot", minimum=0)
        alpha = check_number(alpha, "alpha", low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
        fine = check_positive_int(fine, "fine", minimum=16)
        p, y = validated_probs(probs, labels, from_logits=from_logits)
        conf, correct = top_label(p, y)
        n = conf.shape[0]
        cell = torch.clamp((conf * fine).long(), 0, fine - 1)
        centres = (torch.arange(fine, dtype=torch.float64) + 0.5) / fine
        grid = torch.linspace(0.0, 1.0, grid_size, dtype=torch.float64)
        kern = kernel_matrix(grid, centres, h)  # [G, fine]
        counts = torch.bincount(cell, minlength=fine).double()
        sums = torch.bincount(cell, weights=correct, minlength=fine)
        mass = kern @ counts
        curve = torch.where(mass * h * math.sqrt(2 * math.pi) >= 1, (kern @ sums) / mass, torch.nan)
        lower = upper = torch.full_like(curve, torch.nan)
        if n_boot:
            gen = torch.Generator().manual_seed(seed)
            chunk = max(1, min(n_boot, 4_000_000 // max(n, 1)))
            curves = []
            for start in range(0, n_boot, chunk):  # loop over chunks of resamples, never over samples
                b = min(chunk, n_boot - start)
                idx = torch.randint(0, n, (b, n), generator=gen)
                flat = (cell[idx] + fine * torch.arange(b)[:, None]).reshape(-1)
                c_b = torch.bincount(flat, minlength=b * fine).double().reshape(b, fine)
                s_b = torch.bincount(flat, weights=correct[idx].reshape(-1), minlength=b * fine).reshape(b, fine)
                m_b = c_b @ kern.T
                curves.append(torch.where(m_b * h * math.sqrt(2 * math.pi) >= 1, (s_b @ kern.T) / m_b, torch.nan))
            boot = torch.cat(curves)
            q = torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.float64)
            lower, upper = torch.nanquantile(boot, q, dim=0)
            undefined = torch.isnan(curve)
            lower, upper = lower.masked_fill(undefined, torch.nan), upper.masked_fill(undefined, torch.nan)
        return cls(grid=as_numpy(grid), curve=as_numpy(curve), lower=as_numpy(lower), upper=as_numpy(upper),
                   density=as_numpy(mass / n), bandwidth=h, n_boot=n_boot, alpha=alpha, label=label)

    @classmethod
    def from_run(cls, run: Any, *, split: str = "test", label: str | None = None, **kwargs: Any) -> "SmoothReliability":
        """The curve of a run's saved logits (a run directory or a RunRecord); ``kwargs`` as in from_predictions."""
        from caltrain.report.loading import RunRecord, load_run

        record = run if isinstance(run, RunRecord) else load_run(Path(run))
        probs, labels = record.probs(split)
        return cls.from_predictions(probs, labels, label=label if label is not None else record.name, **kwargs)

    def plot(self, ax: Any = None, *, colour: str | None = None, linestyle: str = "-", diagonal: bool = True,
             legend: bool = True) -> "SmoothReliability":
        """Draw the curve and its band on ``ax`` (a new figure when None); several curves may share one axis."""
        ax = new_axes(ax, (4.5, 4.0))
        (line,) = ax.plot(self.grid, self.curve, color=colour, ls=linestyle, lw=1.8,
                          label=f"{self.label or 'smoothed'} (h={self.bandwidth:g})")
        if self.n_boot:
            ax.fill_between(self.grid, self.lower, self.upper, color=line.get_color(), alpha=0.2, lw=0)
        if diagonal:
            ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence")
        ax.set_ylabel("P(correct | confidence)")
        if legend:
            ax.legend(loc="upper left", fontsize=7)
        self.__dict__.update(ax_=ax, figure_=ax.figure)
        return self
