"""``LearningCurves``: a metric against epochs, one line per objective, the seed spread as a band.

For objective o with seeds s = 1..S and epoch records m_{s,e} (e = 1..E, from each run's ``metrics.jsonl``) the
line is the mean over seeds (1/S) sum_s m_{s,e} and the band spans [min_s m_{s,e}, max_s m_{s,e}].
Reading: the issue asks for "the seed spread as a band"; with the 2-5 seeds of a suite min-max shows every seed
and needs no distributional assumption, so we chose it over mean +- std. Runs of one objective with different
numbers of epochs are cut to the shortest. This is how "training stability" (band width) and "converges
faster" (how soon the line flattens) are read.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from caltrain.report.figures import colour, line_style, new_figure, outside_legend
from caltrain.utils.checks import check_choice

__all__ = ["LearningCurves"]

#: Labels of the metrics drawn by default (keys of the epoch records).
_TITLES = {"accuracy": "accuracy", "ece": "ECE", "nll": "NLL", "loss": "training loss", "adaece": "AdaECE",
           "brier": "Brier", "classwise_ece": "classwise ECE"}


@dataclass(frozen=True)
class LearningCurves:
    """Per objective and metric, the per-seed curves.

    Attributes:
        split: the split the metrics were read from ("train", "val" or "test").
        metrics: the metric names, in panel order.
        epochs: objective -> epochs [E].
        values: objective -> metric -> values [S, E] (NaN where a record lacks the metric).
        seeds: objective -> the seeds of the rows.
    """

    split: str
    metrics: tuple[str, ...]
    epochs: dict[str, np.ndarray]
    values: dict[str, dict[str, np.ndarray]]
    seeds: dict[str, list[int]] = field(default_factory=dict)

    @property
    def objectives(self) -> list[str]:
        return list(self.epochs)

    def mean(self, objective: str, metric: str) -> np.ndarray:
        """Mean over seeds [E] (NaN where no seed recorded the metric)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN epochs stay NaN
            return np.nanmean(self.values[objective][metric], axis=0)

    def band(self, objective: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(min, max) over seeds [E] each."""
        v = self.values[objective][metric]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmin(v, axis=0), np.nanmax(v, axis=0)

    @classmethod
    def from_runs(cls, runs: Sequence[Any], *, split: str = "test",
                  metrics: Sequence[str] = ("accuracy", "ece", "nll")) -> "LearningCurves":
        """Group runs (run directories or RunRecords) by objective (plus variant) and stack their epoch curves.

        Raises:
            ValueError: no runs, unknown split, or a run without epoch records.
        """
        from caltrain.report.loading import RunRecord, group_label, load_run

        check_choice(split, "split", ("train", "val", "test"))
        metrics = tuple(metrics)
        if not metrics:
            raise ValueError("metrics: expected at least one metric name")
        records = [r if isinstance(r, RunRecord) else load_run(Path(r)) for r in runs]
        if not records:
            raise ValueError("runs: expected at least one run")
        groups: dict[str, list[RunRecord]] = {}
        for r in records:
            if not r.epochs:
                raise ValueError(f"runs: {r.path} has no epoch records in metrics.jsonl")
            groups.setdefault(group_label(r), []).append(r)
        epochs, values, seeds = {}, {}, {}
        for name, members in groups.items():
            length = min(len(r.epochs) for r in members)
            epochs[name] = np.array([e["epoch"] for e in members[0].epochs[:length]], dtype=np.float64)
            values[name] = {
                m: np.array([[_value(e, split, m) for e in r.epochs[:length]] for r in members], dtype=np.float64)
                for m in metrics
            }
            seeds[name] = [r.seed for r in members]
        return cls(split=split, metrics=metrics, epochs=epochs, values=values, seeds=seeds)

    @classmethod
    def from_suite(cls, suite_dir: str | Path, *, dataset: str | None = None, **kwargs: Any) -> "LearningCurves":
        """The curves of a suite directory's complete runs (of one dataset when given)."""
        from caltrain.report.loading import load_suite

        suite = load_suite(suite_dir)
        return cls.from_runs(suite.runs_of(dataset), **kwargs)

    def plot(self, axes: Any = None, *, title: str | None = None) -> "LearningCurves":
        """One panel per metric (a new figure when ``axes`` is None); stores ``axes_``, ``figure_``."""
        if axes is None:
            fig = new_figure((3.6 * len(self.metrics) + (1.6 if len(self.objectives) > 4 else 0), 3.2))
            axes = [fig.add_subplot(1, len(self.metrics), i + 1) for i in range(len(self.metrics))]
            if title:
                fig.suptitle(title, fontsize=10)
        axes = list(np.ravel(axes))
        if len(axes) < len(self.metrics):
            raise ValueError(f"axes: expected {len(self.metrics)} axes (one per metric), got {len(axes)}")
        for ax, m in zip(axes, self.metrics):
            for i, name in enumerate(self.objectives):
                x = self.epochs[name]
                lo, hi = self.band(name, m)
                n_seeds = self.values[name][m].shape[0]
                ax.plot(x, self.mean(name, m), color=colour(i), ls=line_style(i), lw=1.6,
                        label=f"{name} ({n_seeds} seeds)")
                if n_seeds > 1:
                    ax.fill_between(x, lo, hi, color=colour(i), alpha=0.2, lw=0)
            ax.set_xlabel("epoch")
            ax.set_title(f"{self.split} {_TITLES.get(m, m)}", fontsize=9)
            ax.grid(alpha=0.3)
        if len(self.objectives) <= 4:
            axes[0].legend(fontsize=7)
        else:
            outside_legend(axes[len(self.metrics) - 1], len(self.objectives))
        self.__dict__.update(axes_=axes, figure_=axes[0].figure)
        return self


def _value(record: dict[str, Any], split: str, metric: str) -> float:
    v = (record.get(split) or {}).get(metric)
    return float("nan") if v is None else float(v)
