"""``TradeoffScatter``: accuracy against ECE, one point per objective, error bars across seeds.

For objective o with seeds s = 1..S, the point is (mean_s acc_s, mean_s ECE_s) of the runs' selected models on
the test split (``summary.json``), and the error bars are the sample standard deviations (ddof = 1, as in
:mod:`caltrain.train.aggregate`; none for a single seed). With ``calibrator="ts"`` the point is taken after that
post-hoc calibrator (``summary["posthoc"]["ts"]``), the "post-TS" numbers the loss papers report. Down and to
the right is better.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from caltrain.report.figures import colour, marker, new_axes, outside_legend

__all__ = ["TradeoffScatter"]


def _mean_std(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else float("nan")


@dataclass(frozen=True)
class TradeoffScatter:
    """Per objective: mean and std over seeds of test accuracy and test ECE.

    Attributes:
        objectives: the point labels (objective, plus ``/variant``).
        accuracy_mean, accuracy_std, ece_mean, ece_std: [O] each (std NaN for a single seed).
        n_seeds: [O].
        calibrator: the post-hoc calibrator the numbers are after, or None.
        metric: the calibration metric on the y axis (a key of the summaries, default "ece").
    """

    objectives: tuple[str, ...]
    accuracy_mean: np.ndarray
    accuracy_std: np.ndarray
    ece_mean: np.ndarray
    ece_std: np.ndarray
    n_seeds: np.ndarray
    calibrator: str | None = None
    metric: str = "ece"

    @classmethod
    def from_runs(cls, runs: Sequence[Any], *, calibrator: str | None = None, metric: str = "ece") -> "TradeoffScatter":
        """Group runs (directories or RunRecords) by objective and summarise their test numbers.

        Raises:
            ValueError: no runs, or a run whose summary lacks the calibrator or the metric.
        """
        from caltrain.report.loading import RunRecord, group_label, load_run

        records = [r if isinstance(r, RunRecord) else load_run(Path(r)) for r in runs]
        if not records:
            raise ValueError("runs: expected at least one run")
        groups: dict[str, list[tuple[float, float]]] = {}
        for r in records:
            block = r.summary.get("test", {}) if calibrator is None else r.summary.get("posthoc", {}).get(calibrator)
            if block is None:
                raise ValueError(f"calibrator: run {r.name} has no post-hoc results for {calibrator!r}")
            if metric not in block or "accuracy" not in block:
                raise ValueError(f"metric: run {r.name} has no {metric!r} (or accuracy) in its summary")
            groups.setdefault(group_label(r), []).append((float(block["accuracy"]), float(block[metric])))
        stats = {name: (_mean_std([a for a, _ in v]), _mean_std([e for _, e in v]), len(v))
                 for name, v in groups.items()}
        names = tuple(stats)
        return cls(objectives=names,
                   accuracy_mean=np.array([stats[n][0][0] for n in names]),
                   accuracy_std=np.array([stats[n][0][1] for n in names]),
                   ece_mean=np.array([stats[n][1][0] for n in names]),
                   ece_std=np.array([stats[n][1][1] for n in names]),
                   n_seeds=np.array([stats[n][2] for n in names]), calibrator=calibrator, metric=metric)

    @classmethod
    def from_suite(cls, suite_dir: str | Path, *, dataset: str | None = None, **kwargs: Any) -> "TradeoffScatter":
        """The scatter of a suite directory's complete runs (of one dataset when given)."""
        from caltrain.report.loading import load_suite

        return cls.from_runs(load_suite(suite_dir).runs_of(dataset), **kwargs)

    def plot(self, ax: Any = None, *, title: str | None = None, legend: bool = True) -> "TradeoffScatter":
        """Accuracy (%) on x, the metric (%) on y, error bars = std over seeds; stores ``ax_``, ``figure_``.

        With more than four objectives the legend goes to the right of the axis.
        """
        ax = new_axes(ax, (4.6, 3.8))
        for i, name in enumerate(self.objectives):
            xerr = None if np.isnan(self.accuracy_std[i]) else 100 * self.accuracy_std[i]
            yerr = None if np.isnan(self.ece_std[i]) else 100 * self.ece_std[i]
            ax.errorbar(100 * self.accuracy_mean[i], 100 * self.ece_mean[i], xerr=xerr, yerr=yerr, fmt=marker(i),
                        color=colour(i), capsize=3, label=f"{name} ({self.n_seeds[i]} seeds)")
        ax.set_xlabel("test accuracy (%)")
        suffix = f" after {self.calibrator}" if self.calibrator else ""
        ax.set_ylabel(f"test {self.metric.upper() if self.metric == 'ece' else self.metric} (%){suffix}")
        if title:
            ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
        if legend:
            outside_legend(ax, len(self.objectives))
        self.__dict__.update(ax_=ax, figure_=ax.figure)
        return self
