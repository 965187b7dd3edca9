"""``ReliabilityDiagram``: binned accuracy against confidence, the gap to the diagonal, and the confidence histogram.

For top-label predictions (confidence c_i = max_k p_ik, correctness a_i = 1[argmax_k p_ik = y_i]) and bins
B_1..B_M, each bin b shows

    acc_b  = (1/n_b) sum_{i in B_b} a_i      (bar height)
    conf_b = (1/n_b) sum_{i in B_b} c_i      (the gap bar spans acc_b .. conf_b; red above the bar = over-confident)
    n_b / N                                  (the histogram beneath)

and ECE = sum_b (n_b/N) |acc_b - conf_b| is printed in the corner. The bin statistics are exactly those of
:func:`caltrain.metrics.reliability_curve` and the ECE is :func:`caltrain.metrics.expected_calibration_error`
(nothing here recomputes them): equal-width bins ``binning="uniform"`` are (lo, hi] with confidence 0 in the
first bin; equal-mass bins ``binning="quantile"`` follow AdaECE (docs/methods.md#metric-conventions).

Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks", ICML 2017 (arXiv:1706.04599),
figure 1 is the reference layout; the confidence histogram beneath follows its top row.

Example:
    >>> import torch
    >>> probs = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], dtype=torch.float64)
    >>> d = ReliabilityDiagram.from_predictions(probs, torch.tensor([0, 1, 1, 0]), n_bins=2)
    >>> d.count.tolist(), d.accuracy.tolist(), round(d.ece, 4)
    ([0.0, 4.0], [nan, 0.75], 0.0)
    >>> d = d.plot()  # bars, gap bars, histogram beneath: d.ax_, d.hist_ax_, d.figure_
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

import torch

from caltrain.report.figures import as_numpy, metric, new_figure
from caltrain.utils.checks import as_tensor, check_choice, check_positive_int

__all__ = ["BINNINGS", "ReliabilityDiagram", "calibrated_probs", "plot_side_by_side"]

#: Valid ``binning`` values.
BINNINGS = ("uniform", "quantile")


@dataclass(frozen=True)
class ReliabilityDiagram:
    """The data of one reliability diagram, and its drawing.

    Attributes:
        edges: bin edges [M+1] (float64; equal-width, or the equal-mass quantiles).
        confidence: mean confidence per bin [M] (NaN for an empty bin).
        accuracy: accuracy per bin [M] (NaN for an empty bin).
        count: samples per bin [M].
        ece: the expected calibration error with the same bins (metrics' value, a float in [0, 1]).
        binning: "uniform" or "quantile".
        label: a title for the diagram (e.g. the objective, "after ts"), or None.
        data_range: the smallest and largest confidence; equal-mass bars are drawn within it (their outer
            edges are 0 and 1 otherwise, and the last bar would stretch over a range holding no sample).
    """

    edges: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray
    ece: float
    binning: str = "uniform"
    label: str | None = None
    data_range: tuple[float, float] = (0.0, 1.0)

    @property
    def n_bins(self) -> int:
        return len(self.count)

    @property
    def n(self) -> int:
        return int(self.count.sum())

    @classmethod
    def from_predictions(
        cls,
        probs: Any,
        labels: Any,
        *,
        n_bins: int = 15,
        binning: str = "uniform",
        from_logits: bool = False,
        label: str | None = None,
    ) -> "ReliabilityDiagram":
        """Bin top-label predictions.

        Args:
            probs: class probabilities [N, K] (rows sum to 1), or logits when ``from_logits=True``.
            labels: integer labels [N] in [0, K).
            n_bins: number of bins M >= 1 (15, as in Guo et al. 2017).
            binning: "uniform" (equal width) or "quantile" (equal mass).
            from_logits: apply a float64 softmax to ``probs`` first.
            label: the diagram's title.

        Raises:
            ValueError: bad shapes or values (named), ``n_bins < 1``, unknown ``binning``.
        """
        n_bins = check_positive_int(n_bins, "n_bins")
        check_choice(binning, "binning", BINNINGS)
        # validated once, by the metrics (the ECE call reuses the checked inputs)
        curve = metric("reliability_curve")(probs, labels, n_bins=n_bins, binning=binning, from_logits=from_logits)
        ece = metric("expected_calibration_error")(probs, labels, n_bins=n_bins, binning=binning,
                                                    from_logits=from_logits, validate_args=False)
        count = as_numpy(curve.count).astype(np.float64)
        p = as_tensor(probs, "probs")
        conf = (torch.softmax(p.to(torch.float64), dim=1) if from_logits else p).max(dim=1).values
        empty = count == 0
        confidence = np.where(empty, np.nan, as_numpy(curve.confidence).astype(np.float64))
        accuracy = np.where(empty, np.nan, as_numpy(curve.accuracy).astype(np.float64))
        return cls(edges=as_numpy(curve.edges).astype(np.float64), confidence=confidence, accuracy=accuracy,
                   count=count, ece=float(ece), binning=binning, label=label,
                   data_range=(float(conf.min()), float(conf.max())))

    @classmethod
    def from_run(
        cls,
        run: Any,
        *,
        split: str = "test",
        calibrator: str | None = None,
        n_bins: int | None = None,
        binning: str = "uniform",
        label: str | None = None,
    ) -> "ReliabilityDiagram":
        """The diagram of a run's saved logits (``logits_<split>.npz``).

        Args:
            run: a run directory or a :class:`~caltrain.report.loading.RunRecord`.
            split: "test" or "val".
            calibrator: a ``caltrain.posthoc`` name (e.g. "ts") the run saved: draw the probabilities of that
                fitted calibrator (loaded from ``calibrators/<name>.json``, never refitted) on ``split``.
            n_bins: bins; the run's ``eval.n_bins`` when None, so the printed ECE matches its summary.
            binning: "uniform" or "quantile".
            label: the title (default: the run's name, plus ``+ <calibrator>``).

        Raises:
            FileNotFoundError: no such run, or the run saved no calibrator ``calibrator``.
        """
        from caltrain.report.loading import RunRecord, load_run

        record = run if isinstance(run, RunRecord) else load_run(Path(run))
        check_choice(split, "split", ("val", "test"))
        if calibrator is None:
            probs, labels = record.probs(split)
        else:
            probs, labels = calibrated_probs(record, calibrator, split=split)
        title = label if label is not None else record.name if calibrator is None else f"{record.name} + {calibrator}"
        return cls.from_predictions(probs, labels, n_bins=n_bins or record.n_bins, binning=binning, label=title)

    def plot(self, ax: Any = None, *, hist_ax: Any = None, show_histogram: bool = True, gap: bool = True,
             colour: str = "#1f77b4", legend: bool = True) -> "ReliabilityDiagram":
        """Draw on ``ax`` (a new figure when None), with the confidence histogram on ``hist_ax``.

        When ``show_histogram`` and no ``hist_ax`` is given, a histogram axis is carved out beneath ``ax``
        (sharing its x axis). The drawn axes are stored as ``self.ax_`` / ``self.hist_ax_`` / ``self.figure_``
        (like scikit-learn's Display objects); returns ``self``.
        """
        if ax is None:
            fig = new_figure((4.2, 4.8) if show_histogram else (4.2, 3.8))
            if show_histogram:
                grid = fig.add_gridspec(2, 1, height_ratios=(3, 1))
                ax = fig.add_subplot(grid[0])
                hist_ax = fig.add_subplot(grid[1], sharex=ax)
            else:
                ax = fig.add_subplot(1, 1, 1)
        elif show_histogram and hist_ax is None:
            from mpl_toolkits.axes_grid1 import make_axes_locatable

            hist_ax = make_axes_locatable(ax).append_axes("bottom", size="30%", pad=0.08, sharex=ax)
        edges = self.edges.copy()
        if self.binning == "quantile":
            edges[0], edges[-1] = max(edges[0], self.data_range[0]), min(edges[-1], self.data_range[1])
            edges = np.maximum.accumulate(edges)
        left, width = edges[:-1], np.diff(edges)
        filled = self.count > 0
        acc = np.where(filled, self.accuracy, 0.0)
        conf = np.where(filled, self.confidence, 0.0)
        ax.bar(left, acc, width=width, align="edge", color=colour, edgecolor="black", linewidth=0.5,
               alpha=0.85, label="accuracy")
        if gap:
            tint = np.where((conf >= acc)[filled], "#d62728", "#2ca02c")  # red: over-, green: under-confident
            ax.bar(left[filled], (conf - acc)[filled], bottom=acc[filled], width=width[filled], align="edge",
                   color=tint, alpha=0.35, edgecolor=tint, hatch="//", linewidth=0.5,
                   label="gap to confidence (red: over-, green: under-confident)")
        ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_ylabel("accuracy")
        ax.text(0.04, 0.94, f"ECE {100 * self.ece:.2f}%  ({self.n_bins} {self.binning} bins)", transform=ax.transAxes,
                va="top", fontsize=8, bbox={"boxstyle": "round", "fc": "white", "alpha": 0.8})
        if self.label:
            ax.set_title(self.label, fontsize=9)
        if legend:
            ax.legend(loc="lower right", fontsize=7)
        if hist_ax is not None:
            hist_ax.bar(left, self.count / max(self.n, 1), width=width, align="edge", color="grey",
                        edgecolor="black", linewidth=0.5)
            hist_ax.set_xlim(0, 1)
            hist_ax.set_ylabel("fraction", fontsize=8)
            hist_ax.set_xlabel("confidence")
            ax.tick_params(labelbottom=False)
        else:
            ax.set_xlabel("confidence")
        self.__dict__.update(ax_=ax, hist_ax_=hist_ax, figure_=ax.figure)
        return self


def calibrated_probs(run: Any, calibrator: str, *, split: str = "test") -> tuple[torch.Tensor, torch.Tensor]:
    """``(probs [N, C'] float64, labels [N] int64)`` of ``split`` after the calibrator ``calibrator`` the run saved.

    The calibrator is read from ``calibrators/<name>.json`` (:meth:`RunRecord.calibrator
    <caltrain.report.loading.RunRecord.calibrator>`), never refitted, and applied to the logits it was fitted on
    (:func:`caltrain.abstention.calibration_logits` under the run's calibration convention: the K class logits
    of an abstention run), so the diagram's numbers are the run's ``summary["posthoc"]``.

    Args:
        run: a :class:`~caltrain.report.loading.RunRecord`.
        calibrator: a ``caltrain.posthoc`` name the run saved (e.g. "ts").
        split: "val" or "test".

    Raises:
        FileNotFoundError: the run saved no such calibrator (runs written before calibrators were saved).
    """
    from caltrain.abstention import calibration_logits

    fitted = run.calibrator(calibrator)
    z, y = run.logits(split)
    probs = fitted.predict_proba(calibration_logits(torch.from_numpy(z).double(), run.calibration_abstention))
    return probs.double(), torch.from_numpy(y).long()


def plot_side_by_side(diagrams: Sequence[Sequence[ReliabilityDiagram]], *, panel_size: float = 3.2,
                      row_labels: Sequence[str] | None = None):
    """A grid of diagrams (rows x columns, e.g. objectives x [uncalibrated, after ts, after ats]); returns the figure.

    Every panel has its histogram beneath. ``row_labels`` prefix each row's first panel title.
    """
    rows = [list(r) for r in diagrams]
    if not rows or not any(rows):
        raise ValueError("diagrams: expected at least one row with one diagram")
    n_cols = max(len(r) for r in rows)
    width, height = panel_size * n_cols + 0.3, panel_size * 1.3 * len(rows) + 0.2
    fig = new_figure((width, height), layout=None)  # fixed margins: one draw pass, fast for many panels
    fig.subplots_adjust(left=0.55 / width, right=1 - 0.1 / width, bottom=0.45 / height, top=1 - 0.3 / height)
    outer = fig.add_gridspec(len(rows), n_cols, hspace=0.25, wspace=0.2)
    for i, row in enumerate(rows):
        for j, diagram in enumerate(row):
            inner = outer[i, j].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.06)
            ax = fig.add_subplot(inner[0])
            hist_ax = fig.add_subplot(inner[1], sharex=ax)
            diagram.plot(ax, hist_ax=hist_ax, legend=i == 0 and j == 0)
            if row_labels is not None and j == 0:
                ax.set_title(f"{row_labels[i]}: {diagram.label or ''}".rstrip(": "), fontsize=9)
            if j:
                ax.set_ylabel("")
                hist_ax.set_ylabel("")
                ax.tick_params(labelleft=False)
            if i < len(rows) - 1:
                hist_ax.set_xlabel("")
    return fig
