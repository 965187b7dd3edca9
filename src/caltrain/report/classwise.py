"""``ClasswiseReliability``: one reliability diagram per class (small multiples), binned on p_k.

For class k, every sample i falls in the equal-width bin of p_ik (bins (lo, hi], p = 0 in the first bin, the
convention of :mod:`caltrain.metrics`); bin b of class k shows

    freq_kb = (1/n_kb) sum_{i in B_kb} 1[y_i = k]      against      conf_kb = (1/n_kb) sum_{i in B_kb} p_ik,

and the panel's title carries that class's share of the classwise ECE, sum_b (n_kb/N) |freq_kb - conf_kb|.
Their mean over the K classes is the classwise ECE of Kull et al., "Beyond temperature scaling: Obtaining
well-calibrated multi-class probabilities with Dirichlet calibration", NeurIPS 2019 (arXiv:1910.12656), which
the tests check against :func:`caltrain.metrics.classwise_calibration_error`.

The per-class bin sums are those of :func:`caltrain.metrics.classwise_bin_statistics` (float64), the statistics the
classwise ECE itself is computed from.

Example:
    >>> import torch
    >>> probs = torch.tensor([[0.9, 0.1], [0.7, 0.3], [0.2, 0.8]], dtype=torch.float64)
    >>> cw = ClasswiseReliability.from_predictions(probs, torch.tensor([0, 1, 1]), n_bins=2)
    >>> cw.count.tolist()      # [class, bin]: p_0 = 0.9, 0.7 in bin 2 and 0.2 in bin 1; p_1 the reverse
    [[1.0, 2.0], [2.0, 1.0]]
    >>> round(cw.classwise_ece, 4)   # class 0: (1/3)|0 - 0.2| + (2/3)|0.5 - 0.8|; class 1 the same
    0.2667
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from caltrain.report.figures import as_numpy, metric, new_figure, validated_probs
from caltrain.utils.checks import check_positive_int

__all__ = ["ClasswiseReliability"]


@dataclass(frozen=True)
class ClasswiseReliability:
    """Per-class bin statistics.

    Attributes:
        edges: equal-width bin edges [M+1].
        confidence: mean p_k per bin [K, M] (NaN when empty).
        frequency: observed frequency of class k per bin [K, M] (NaN when empty).
        count: samples per bin [K, M].
        class_ece: sum_b (n_kb/N)|freq_kb - conf_kb| per class [K]; its mean is the classwise ECE.
        class_names: names of the K classes.
        label: a title, or None.
    """

    edges: np.ndarray
    confidence: np.ndarray
    frequency: np.ndarray
    count: np.ndarray
    class_ece: np.ndarray
    class_names: tuple[str, ...]
    label: str | None = None

    @property
    def classwise_ece(self) -> float:
        """(1/K) sum_k class_ece[k]."""
        return float(self.class_ece.mean())

    @classmethod
    def from_predictions(cls, probs: Any, labels: Any, *, n_bins: int = 15, from_logits: bool = False,
                         class_names: Any = None, label: str | None = None) -> "ClasswiseReliability":
        """Bin every class's probability (probs [N, K] or logits with ``from_logits``; labels [N]; n_bins >= 1)."""
        n_bins = check_positive_int(n_bins, "n_bins")
        p, y = validated_probs(probs, labels, from_logits=from_logits)
        n, k = p.shape
        names = tuple(str(c) for c in class_names) if class_names is not None else tuple(str(i) for i in range(k))
        if len(names) != k:
            raise ValueError(f"class_names: expected {k} names (one per class), got {len(names)}")
        stats = metric("classwise_bin_statistics")(p, y, n_bins)  # [K, M] float64 sums
        edges = stats.edges.to(torch.float64)
        count, conf_sum, hit_sum = stats.count.to(torch.float64), stats.conf_sum, stats.acc_sum
        class_ece = (hit_sum - conf_sum).abs().sum(dim=1) / n
        safe = count.clamp(min=1)
        empty = count == 0
        return cls(edges=as_numpy(edges), confidence=as_numpy((conf_sum / safe).masked_fill(empty, torch.nan)),
                   frequency=as_numpy((hit_sum / safe).masked_fill(empty, torch.nan)), count=as_numpy(count),
                   class_ece=as_numpy(class_ece), class_names=names, label=label)

    @classmethod
    def from_run(cls, run: Any, *, split: str = "test", n_bins: int | None = None, label: str | None = None,
                 class_names: Any = None) -> "ClasswiseReliability":
        """The per-class diagrams of a run's saved logits (a run directory or a RunRecord)."""
        from caltrain.report.loading import RunRecord, load_run

        record = run if isinstance(run, RunRecord) else load_run(Path(run))
        probs, labels = record.probs(split)
        if class_names is None and probs.shape[1] == (record.num_classes or 0) + 1:  # with_unknown: K+1 columns
            class_names = [str(k) for k in range(probs.shape[1] - 1)] + ["unknown"]
        return cls.from_predictions(probs, labels, n_bins=n_bins or record.n_bins, class_names=class_names,
                                    label=label if label is not None else record.name)

    def plot(self, axes: Any = None, *, max_classes: int = 10, ncols: int = 5) -> "ClasswiseReliability":
        """Draw the first ``max_classes`` classes as small multiples (a new figure when ``axes`` is None).

        ``axes``: a sequence of at least ``min(K, max_classes)`` matplotlib axes. Stores ``axes_``, ``figure_``.
        """
        shown = min(len(self.class_names), check_positive_int(max_classes, "max_classes"))
        if axes is None:
            cols = min(shown, ncols)
            rows = math.ceil(shown / cols)
            fig = new_figure((2.0 * cols + 0.4, 2.0 * rows + 0.5), layout=None)  # fixed margins: fast to draw
            fig.subplots_adjust(left=0.06, right=0.98, bottom=0.08, top=0.86 if rows == 1 else 0.9, wspace=0.2,
                                hspace=0.35)
            axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False).ravel()
            for extra in axes[shown:]:
                extra.set_visible(False)
            if self.label:
                fig.suptitle(f"{self.label}: classwise ECE {100 * self.classwise_ece:.2f}%", fontsize=10)
        axes = list(np.ravel(axes))
        if len(axes) < shown:
            raise ValueError(f"axes: expected at least {shown} axes, got {len(axes)}")
        left, width = self.edges[:-1], np.diff(self.edges)
        for k in range(shown):
            ax = axes[k]
            filled = self.count[k] > 0
            ax.bar(left, np.where(filled, self.frequency[k], 0.0), width=width, align="edge", color="#1f77b4",
                   edgecolor="black", linewidth=0.4, alpha=0.85)
            ax.plot(self.confidence[k][filled], self.frequency[k][filled], "o", ms=2.5, color="#d62728")
            ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=0.8)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_title(f"class {self.class_names[k]}  ({100 * self.class_ece[k]:.2f}%)", fontsize=8)
            ax.set_xticks([0, 0.5, 1])
            ax.set_yticks([0, 0.5, 1])
            ax.tick_params(labelsize=7)
        self.__dict__.update(axes_=axes[:shown], figure_=axes[0].figure)
        return self
