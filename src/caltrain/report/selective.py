"""``RiskCoverageCurve`` (selective prediction) and ``OODHistogram`` (score distributions in and out of distribution).

Risk-coverage: sort the N samples by a confidence score s_i (descending) and keep the top n of them; then

    coverage_n = n / N,   risk_n = (1/n) sum_{j <= n} (1 - a_(j))      (a = top-label correctness),

for n = 1..N (tied scores share their errors evenly, the reading of :func:`caltrain.metrics.risk_coverage_curve`,
which computes the points); the area under the curve, AURC = (1/N) sum_n risk_n, is the quantity of Geifman, Uziel and
El-Yaniv, "Bias-Reduced Uncertainty Estimation for Deep Neural Classifiers", ICLR 2019 (arXiv:1805.08206); the
tests check it against :func:`caltrain.metrics.aurc`. The score defaults to the maximum softmax probability; pass
another (e.g. 1 - p_idk for an abstention model, or the negative entropy).

OOD histograms: the distributions of a score on in-distribution and out-of-distribution inputs, on shared bins.
Scores (higher = more in-distribution): ``"msp"`` max_k p_k (Hendrycks and Gimpel 2017, arXiv:1610.02136),
``"entropy"`` the negative entropy sum_k p_k log p_k, ``"energy"`` logsumexp_k z_k (Liu et al. 2020,
arXiv:2010.03759; needs logits).

Example:
    >>> import torch
    >>> probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]], dtype=torch.float64)
    >>> rc = RiskCoverageCurve.from_predictions(probs, torch.tensor([0, 1, 0]))  # the least confident is wrong
    >>> rc.risk.tolist(), round(rc.aurc, 4)
    ([0.0, 0.0, 0.3333333333333333], 0.1111)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from caltrain.report.figures import as_numpy, metric, new_axes, top_label, validated_probs
from caltrain.utils.checks import as_tensor, check_choice, check_finite, check_ndim, check_nonempty, \
    check_positive_int, check_same_length

__all__ = ["OODHistogram", "OOD_SCORES", "RiskCoverageCurve", "ood_score"]

#: Scores :meth:`OODHistogram.from_predictions` computes.
OOD_SCORES = ("msp", "entropy", "energy")


@dataclass(frozen=True)
class RiskCoverageCurve:
    """Selective risk against coverage.

    Attributes:
        coverage: n/N for n = 1..N [N].
        risk: error rate among the n most confident samples [N].
        aurc: mean of ``risk``.
        label: legend label, or None.
    """

    coverage: np.ndarray
    risk: np.ndarray
    aurc: float
    label: str | None = None

    @classmethod
    def from_predictions(cls, probs: Any, labels: Any, *, score: Any = None, from_logits: bool = False,
                         label: str | None = None) -> "RiskCoverageCurve":
        """The curve of top-label predictions (probs [N, K] or logits; labels [N]; optional score [N])."""
        p, y = validated_probs(probs, labels, from_logits=from_logits)
        conf, correct = top_label(p, y)
        if score is not None:
            s = as_tensor(score, "score", dtype=torch.float64)
            check_ndim(s, "score", 1, "[N]")
            check_same_length(s, conf, "score", "probs")
            check_finite(s, "score")
            conf = s
        coverage, risk = metric("risk_coverage_curve")(conf, correct > 0.5)
        return cls(coverage=as_numpy(coverage), risk=as_numpy(risk), aurc=float(risk.mean()), label=label)

    @classmethod
    def from_run(cls, run: Any, *, split: str = "test", label: str | None = None) -> "RiskCoverageCurve":
        """The curve of a run's saved logits; for an abstention run the score is 1 - p_idk.

        See docs/methods.md#socrates-loss.
        """
        from caltrain.report.loading import RunRecord, load_run

        record = run if isinstance(run, RunRecord) else load_run(Path(run))
        probs, labels = record.probs(split)
        score = None
        if record.abstention:
            z, _ = record.logits(split)
            score = 1.0 - torch.softmax(torch.from_numpy(np.asarray(z, dtype=np.float64)), dim=1)[:, -1]
        return cls.from_predictions(probs, labels, score=score, label=label if label is not None else record.name)

    def risk_at(self, coverage: float) -> float:
        """The risk at the smallest kept fraction >= ``coverage`` (in (0, 1])."""
        i = int(np.searchsorted(self.coverage, coverage - 1e-12))
        return float(self.risk[min(i, len(self.risk) - 1)])

    def plot(self, ax: Any = None, *, colour: str | None = None, linestyle: str = "-",
             legend: bool = True) -> "RiskCoverageCurve":
        """Draw risk (in %) against coverage on ``ax`` (a new figure when None); curves may share an axis."""
        ax = new_axes(ax, (4.5, 3.6))
        ax.plot(self.coverage, 100 * self.risk, color=colour, ls=linestyle, lw=1.6,
                label=f"{self.label or 'model'} (AURC {100 * self.aurc:.2f}%)")
        ax.set_xlim(0, 1)
        ax.set_xlabel("coverage")
        ax.set_ylabel("selective risk (%)")
        if legend:
            ax.legend(fontsize=7)
        self.__dict__.update(ax_=ax, figure_=ax.figure)
        return self


def ood_score(outputs: Any, score: str = "msp", *, from_logits: bool = False) -> torch.Tensor:
    """The OOD score [N] (higher = more in-distribution) of probabilities or logits [N, K]: the function
    :func:`caltrain.metrics.ood_score` (module docstring)."""
    check_choice(score, "score", OOD_SCORES)
    return metric("ood_score")(outputs, score, from_logits=from_logits)


@dataclass(frozen=True)
class OODHistogram:
    """Histograms of a score on in- and out-of-distribution samples, on shared edges.

    Attributes:
        edges: bin edges [M+1] spanning both score sets.
        in_density, out_density: histogram densities [M] (each integrates to 1).
        score_name: the score's name; label: a title, or None.
    """

    edges: np.ndarray
    in_density: np.ndarray
    out_density: np.ndarray
    score_name: str = "score"
    label: str | None = None

    @classmethod
    def from_scores(cls, in_scores: Any, out_scores: Any, *, n_bins: int = 30, score_name: str = "score",
                    label: str | None = None) -> "OODHistogram":
        """Histogram two score vectors ([N_in] and [N_out], finite) on ``n_bins`` shared equal-width bins."""
        n_bins = check_positive_int(n_bins, "n_bins")
        a = as_tensor(in_scores, "in_scores", dtype=torch.float64)
        b = as_tensor(out_scores, "out_scores", dtype=torch.float64)
        for t, name in ((a, "in_scores"), (b, "out_scores")):
            check_ndim(t, name, 1, "[N]")
            check_nonempty(t, name)
            check_finite(t, name)
        lo, hi = float(torch.minimum(a.min(), b.min())), float(torch.maximum(a.max(), b.max()))
        if hi <= lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, n_bins + 1)
        a_np, b_np = as_numpy(a), as_numpy(b)
        return cls(edges=edges, in_density=np.histogram(a_np, edges, density=True)[0],
                   out_density=np.histogram(b_np, edges, density=True)[0], score_name=score_name, label=label)

    @classmethod
    def from_predictions(cls, in_outputs: Any, out_outputs: Any, *, score: str = "msp", from_logits: bool = False,
                         n_bins: int = 30, label: str | None = None) -> "OODHistogram":
        """Score in- and out-of-distribution outputs ([N, K] probabilities, or logits) and histogram them."""
        return cls.from_scores(ood_score(in_outputs, score, from_logits=from_logits),
                               ood_score(out_outputs, score, from_logits=from_logits),
                               n_bins=n_bins, score_name=score, label=label)

    @classmethod
    def from_run(cls, run: Any, *, score: str = "msp", n_bins: int = 30, label: str | None = None) -> "OODHistogram":
        """Test logits against ``logits_ood.npz`` (array ``logits``) of a run directory, when it saved one.

        Raises:
            FileNotFoundError: the run has no ``logits_ood.npz``.
        """
        from caltrain.report.loading import RunRecord, load_run

        record = run if isinstance(run, RunRecord) else load_run(Path(run))
        z_in, _ = record.logits("test")
        z_out, _ = record.logits("ood")
        k = record.num_classes or z_in.shape[1]
        return cls.from_predictions(z_in[:, :k], z_out[:, :k], score=score, from_logits=True, n_bins=n_bins,
                                    label=label if label is not None else record.name)

    def plot(self, ax: Any = None) -> "OODHistogram":
        """Draw both histograms (step outlines, filled) on ``ax`` (a new figure when None)."""
        ax = new_axes(ax, (4.5, 3.4))
        width = np.diff(self.edges)
        ax.bar(self.edges[:-1], self.in_density, width=width, align="edge", alpha=0.5, color="#1f77b4",
               label="in-distribution")
        ax.bar(self.edges[:-1], self.out_density, width=width, align="edge", alpha=0.5, color="#d62728",
               label="out-of-distribution")
        ax.set_xlabel(self.score_name)
        ax.set_ylabel("density")
        if self.label:
            ax.set_title(self.label, fontsize=9)
        ax.legend(fontsize=7)
        self.__dict__.update(ax_=ax, figure_=ax.figure)
        return self
