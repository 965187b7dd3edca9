"""``SharpnessTrajectory``: ECE and sharpness against training steps, for runs that tracked curvature.

When ``curvature.every_steps`` is set, the trainer appends ``{"epoch", "step", "curvature": {...}}`` records to
``metrics.jsonl`` (:class:`caltrain.analysis.tracker.CurvatureTracker`: ``gn_sharpness`` the top Gauss-Newton
eigenvalue, ``batch_sharpness``, ``margin_tail``, ``ece`` on the tracked subset). The plot draws ECE (left axis)
and a sharpness (right axis, log scale) against the step, and reports the Pearson correlation between them,
r = cov(ECE, sharpness) / (sd(ECE) sd(sharpness)) (:func:`caltrain.analysis.coupling.pearson_r`), the statistic of the
ECE-sharpness coupling (docs/methods.md#calmo-and-the-calibration-curvature-link; CalMO: test ECE r ~ .96-.98).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from caltrain.report.figures import new_axes, new_figure

__all__ = ["SharpnessTrajectory", "plot_trajectories"]


@dataclass(frozen=True)
class SharpnessTrajectory:
    """The tracked trajectory of one run.

    Attributes:
        step: training steps [T]; ece: ECE on the tracked subset [T]; sharpness: the chosen sharpness [T].
        sharpness_key: which tracker value ``sharpness`` holds ("gn_sharpness" by default).
        pearson_r: the correlation of ``ece`` and ``sharpness`` (NaN with fewer than 3 points or no spread).
        label: a title, or None.
    """

    step: np.ndarray
    ece: np.ndarray
    sharpness: np.ndarray
    sharpness_key: str = "gn_sharpness"
    pearson_r: float = float("nan")
    label: str | None = None

    @classmethod
    def from_records(cls, records: list[dict[str, Any]], *, sharpness_key: str = "gn_sharpness",
                     label: str | None = None) -> "SharpnessTrajectory":
        """From ``metrics.jsonl`` records holding a ``curvature`` entry (others are ignored).

        Raises:
            ValueError: no curvature record, or records without ``sharpness_key`` / ``ece``.
        """
        from caltrain.analysis.coupling import pearson_r  # here: `python -m caltrain.analysis.coupling` imports caltrain

        rows = [r for r in records if isinstance(r.get("curvature"), dict)]
        if not rows:
            raise ValueError("records: no curvature records (train with curvature.every_steps set)")
        missing = [r["step"] for r in rows if sharpness_key not in r["curvature"] or "ece" not in r["curvature"]]
        if missing:
            valid = sorted(rows[0]["curvature"])
            raise ValueError(f"sharpness_key: {sharpness_key!r} or 'ece' missing at step(s) {missing[:5]}; "
                             f"the records hold {valid}")
        step = np.array([r["step"] for r in rows], dtype=np.float64)
        ece = np.array([r["curvature"]["ece"] for r in rows], dtype=np.float64)
        sharp = np.array([r["curvature"][sharpness_key] for r in rows], dtype=np.float64)
        return cls(step=step, ece=ece, sharpness=sharp, sharpness_key=sharpness_key, pearson_r=pearson_r(ece, sharp),
                   label=label)

    @classmethod
    def from_run(cls, run: Any, *, sharpness_key: str = "gn_sharpness",
                 label: str | None = None) -> "SharpnessTrajectory":
        """The trajectory of a run directory (or RunRecord)."""
        from caltrain.report.loading import RunRecord, load_run

        record = run if isinstance(run, RunRecord) else load_run(Path(run))
        return cls.from_records(record.curvature, sharpness_key=sharpness_key,
                                label=label if label is not None else record.name)

    def plot(self, ax: Any = None) -> "SharpnessTrajectory":
        """ECE (%) on ``ax`` and sharpness on a twin axis (log scale when positive); stores ``ax_``, ``ax2_``."""
        ax = new_axes(ax, (4.8, 3.4))
        ax.plot(self.step, 100 * self.ece, color="#1f77b4", marker="o", ms=3, lw=1.4, label="ECE")
        ax.set_xlabel("training step")
        ax.set_ylabel("ECE on tracked subset (%)", color="#1f77b4")
        ax2 = ax.twinx()
        ax2.plot(self.step, self.sharpness, color="#d62728", marker="s", ms=3, lw=1.4, label=self.sharpness_key)
        if np.all(self.sharpness > 0):
            ax2.set_yscale("log")
        ax2.set_ylabel(self.sharpness_key.replace("_", " "), color="#d62728")
        r = "n/a (fewer than 3 points or no spread)" if np.isnan(self.pearson_r) else f"{self.pearson_r:.3f}"
        title = f"{self.label + ': ' if self.label else ''}Pearson r = {r}"
        ax.set_title(title, fontsize=9)
        self.__dict__.update(ax_=ax, ax2_=ax2, figure_=ax.figure)
        return self


def plot_trajectories(trajectories: list[SharpnessTrajectory], *, ncols: int = 3, panel_size: float = 3.6):
    """Small multiples: one panel (ECE and sharpness against steps) per trajectory; returns the figure."""
    import math

    if not trajectories:
        raise ValueError("trajectories: expected at least one SharpnessTrajectory")
    cols = min(len(trajectories), ncols)
    rows = math.ceil(len(trajectories) / cols)
    fig = new_figure((panel_size * 1.35 * cols, panel_size * rows))
    for i, trajectory in enumerate(trajectories):
        trajectory.plot(fig.add_subplot(rows, cols, i + 1))
    return fig
