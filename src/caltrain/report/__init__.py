"""Plots and reports of runs and suites. matplotlib is imported only inside the drawing functions.

Plot objects hold their data and draw on a given matplotlib axis, in the style of scikit-learn's Display objects:
``X.from_predictions(probs, labels)`` or ``X.from_run(run_dir)`` computes the data (checked against
:mod:`caltrain.metrics` in the tests), ``.plot(ax=None)`` draws it and returns the object (``ax_``, ``figure_``).

- :class:`ReliabilityDiagram` (gap bars, histogram beneath, equal-width or equal-mass bins; before/after a
  calibrator with ``calibrator=`` and :func:`plot_side_by_side`), :class:`SmoothReliability` (kernel curve with a
  bootstrap band), :class:`ClasswiseReliability` (small multiples);
- :class:`LearningCurves` (accuracy, ECE, NLL against epochs, seed spread as a band), :class:`TradeoffScatter`
  (accuracy vs ECE, error bars across seeds);
- :class:`RiskCoverageCurve`, :class:`OODHistogram`, :class:`SharpnessTrajectory` (ECE and sharpness against
  steps; :func:`plot_trajectories` for one panel per run).

:func:`write_report` writes a self-contained ``report.html`` (or ``report.md`` with SVG files) of a suite or a
run: the verdict, results table and trade-off first, then one folded section per dataset whose content comes
from the task's :class:`~caltrain.report.tasks.TaskSections` (:mod:`caltrain.report.tasks`; a new task is one
file there). The report draws SVG itself (:mod:`caltrain.report.svg`) and needs no matplotlib;
``caltrain report DIR`` and the end of ``caltrain bench`` call it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from caltrain.report.classwise import ClasswiseReliability
from caltrain.report.learning_curves import LearningCurves
from caltrain.report.loading import RunRecord, SuiteRecord, load_run, load_suite
from caltrain.report.reliability import ReliabilityDiagram, plot_side_by_side
from caltrain.report.selective import OODHistogram, RiskCoverageCurve
from caltrain.report.sharpness import SharpnessTrajectory, plot_trajectories
from caltrain.report.smooth import SmoothReliability
from caltrain.report.tradeoff import TradeoffScatter
from caltrain.utils.checks import check_choice

__all__ = [
    "FORMATS",
    "ClasswiseReliability",
    "LearningCurves",
    "OODHistogram",
    "ReliabilityDiagram",
    "RiskCoverageCurve",
    "RunRecord",
    "SharpnessTrajectory",
    "SmoothReliability",
    "SuiteRecord",
    "TradeoffScatter",
    "load_run",
    "load_suite",
    "plot_side_by_side",
    "plot_trajectories",
    "write_report",
]

#: Report formats of :func:`write_report`.
FORMATS = ("html", "md")


def write_report(path: str | Path, *, format: str = "html", out: str | Path | None = None, max_classes: int = 10,
                 dpi: int | None = None, log: Callable[[str], None] = lambda s: None) -> Path:
    """Write the report of a suite directory or a single run directory; returns the written file.

    Args:
        path: a suite directory (``runs/``, ``results.json``) or a complete run directory (``summary.json``).
        format: "html" (one self-contained ``report.html``: SVG figures, CSS and JS inline, nothing fetched)
            or "md" (``report.md`` plus its SVG figures in ``report_files/`` beside it).
        out: the output file (default ``path/report.html`` or ``path/report.md``).
        max_classes: per-class figures show at most this many classes.
        dpi: unused since the figures are vector graphics (kept so existing callers work).
        log: receives one progress line per dataset and section.

    Raises:
        ValueError: unknown ``format``.
        FileNotFoundError: ``path`` is not a run or suite directory, or holds no complete run.
    """
    from caltrain.utils.io import atomic_write_text

    check_choice(format, "format", FORMATS)
    from caltrain.report.document import build_report

    root = Path(path)
    if out is not None:
        target = Path(out)
    else:
        from caltrain.train.run_dir import RunDir, SuiteDir

        target = (RunDir(root) if RunDir(root).is_complete() else SuiteDir(root)).report(format)
    report = build_report(root, max_classes=max_classes, log=log)
    if format == "html":
        from caltrain.report.html import render_html

        text = render_html(report)
    else:
        from caltrain.report.markdown import render_markdown

        text = render_markdown(report, out=target, files_dir=target.parent / f"{target.stem}_files")
    atomic_write_text(target, text)
    for written in [target, *(target.parent / f"{target.stem}_files").glob("*.svg")]:
        written.chmod(0o644)  # a report is meant to be shared (the atomic temporary file was private)
    return target
