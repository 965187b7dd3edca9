"""``build_report``: what a report holds (results table, figures, configurations, caveats), format-free.

A :class:`Report` is assembled from a suite directory or a single run directory by :func:`build_report`, then
rendered by :mod:`caltrain.report.html` or :mod:`caltrain.report.markdown`. Per dataset of the suite it holds:

1. the accuracy-vs-ECE trade-off (one point per objective, error bars across seeds), before and after the first
   post-hoc calibrator of the runs (suites only);
2. learning curves (test accuracy, ECE and NLL against epochs, seed spread as a band);
3. reliability diagrams of every objective: equal-width bins, equal-mass bins, and after each post-hoc
   calibrator (side by side, histogram beneath);
4. smooth (kernel) reliability curves with bootstrap bands, all objectives on one axis;
5. risk-coverage curves;
6. classwise reliability small multiples, one figure per objective;
7. OOD score histograms, for runs that saved ``logits_ood.npz``;
8. ECE and sharpness against training steps, for runs that tracked curvature (one panel per run).

Figures 3-7 show one run per objective (its first seed; the caption names it). A figure whose inputs are
missing (no saved logits, a metrics or post-hoc function not installed) is skipped and listed in the caveats.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import caltrain
from caltrain.report.loading import RunRecord, SuiteRecord, group_label, is_run_dir, load_run, load_suite

__all__ = ["Column", "Figure", "Report", "RunConfig", "TABLE_COLUMNS", "best_cells", "build_report", "format_cell",
           "per_seed_values"]


@dataclass(frozen=True)
class Column:
    """A results-table column: header, the row key (``<key>_mean``/``_std`` for metrics), scale and digits."""

    header: str
    key: str
    scale: float = 1.0
    digits: int = 2
    stat: bool = True  # a mean +- std column; else a plain value
    better: str | None = "low"  # "low", "high" or None: which mean is shown in bold within a dataset


#: The results table's columns (accuracy and calibration errors in %, NLL/Brier as is).
TABLE_COLUMNS = (
    Column("dataset", "dataset", stat=False, better=None), Column("model", "model", stat=False, better=None),
    Column("objective", "objective", stat=False, better=None), Column("variant", "variant", stat=False, better=None),
    Column("seeds", "n_seeds", stat=False, better=None),
    Column("acc %", "accuracy", 100, better="high"), Column("ECE %", "ece", 100), Column("AdaECE %", "adaece", 100),
    Column("cw-ECE %", "classwise_ece", 100), Column("NLL", "nll", 1, 3), Column("Brier", "brier", 1, 3),
    Column("AURC %", "aurc", 100),
)


@dataclass
class Figure:
    """One rendered figure: its caption and PNG bytes (``slug`` names the file in Markdown reports)."""

    caption: str
    png: bytes
    slug: str


@dataclass
class RunConfig:
    """One run's configuration text and its summary (for the collapsible per-run sections)."""

    name: str
    config_text: str
    summary_text: str


@dataclass
class Report:
    """Everything a rendered report shows.

    Attributes:
        title, subtitle: the heading.
        columns: the table's columns (:data:`TABLE_COLUMNS` plus one per post-hoc calibrator).
        rows: aggregate rows (keys ``<metric>_mean``, ``<metric>_std``, labels), one per objective and dataset.
        sections: heading -> figures, in order.
        configs: per-run configuration.
        caveats: the conventions used and anything skipped.
    """

    title: str
    subtitle: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    sections: dict[str, list[Figure]] = field(default_factory=dict)
    configs: list[RunConfig] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)

    @property
    def figures(self) -> list[Figure]:
        return [f for figs in self.sections.values() for f in figs]


def format_cell(row: dict[str, Any], column: Column) -> tuple[str, float | str | None]:
    """``(text, sort value)`` of one table cell: "mean ± std" scaled, or the plain value."""
    if not column.stat:
        value = row.get(column.key)
        text = "-" if value in (None, "") else str(value)
        return text, value if isinstance(value, (int, float)) else text
    mean, std = row.get(f"{column.key}_mean"), row.get(f"{column.key}_std")
    if mean is None:
        return "-", None
    text = f"{mean * column.scale:.{column.digits}f}"
    if std is not None:
        text += f" ± {std * column.scale:.{column.digits}f}"
    return text, float(mean)


def per_seed_values(row: dict[str, Any], column: Column) -> list[tuple[Any, float]]:
    """``[(seed, value)]`` behind a mean ± std cell, from ``results.json``'s ``per_seed`` (test or post-hoc)."""
    if not column.stat or not row.get("per_seed"):
        return []
    out = []
    for seed_row in row["per_seed"]:
        value = seed_row.get("test", {}).get(column.key)
        for calibrator, block in seed_row.get("posthoc", {}).items():  # names may hold "_" (vector_scaling)
            if value is None and column.key.startswith(f"{calibrator}_"):
                value = block.get(column.key[len(calibrator) + 1:])
        if isinstance(value, (int, float)):
            out.append((seed_row.get("seed"), float(value)))
    return out


def best_cells(rows: list[dict[str, Any]], columns: list[Column]) -> set[tuple[int, str]]:
    """``(row index, column key)`` of the best mean of every ranked column within each dataset (ties: all)."""
    best: set[tuple[int, str]] = set()
    datasets = {r.get("dataset") for r in rows}
    for column in columns:
        if column.better is None:
            continue
        for dataset in datasets:
            members = [i for i, r in enumerate(rows) if r.get("dataset") == dataset]
            values = {i: format_cell(rows[i], column)[1] for i in members}
            values = {i: v for i, v in values.items() if isinstance(v, (int, float))}
            if len(values) < 2:
                continue
            target = (min if column.better == "low" else max)(values.values())
            best.update((i, column.key) for i, v in values.items() if v == target)
    return best


def _single_run_row(run: RunRecord) -> dict[str, Any]:
    row: dict[str, Any] = {k: run.labels.get(k, "") for k in ("dataset", "model", "objective", "variant")}
    row["n_seeds"] = 1
    for key, value in run.summary.get("test", {}).items():
        row[f"{key}_mean"], row[f"{key}_std"] = value, None
    for cal, block in run.summary.get("posthoc", {}).items():
        for key, value in block.items():
            row[f"{cal}_{key}_mean"], row[f"{cal}_{key}_std"] = value, None
    return row


def build_report(path: str | Path, *, max_classes: int = 10, dpi: int = 96,
                 log: Callable[[str], None] = lambda s: None) -> Report:
    """Assemble the report of a suite directory or a single run directory.

    Args:
        path: a suite directory (``runs/`` and ``results.json``) or a complete run directory (``summary.json``).
        max_classes: classwise small multiples show at most this many classes.
        dpi: resolution of the PNGs.
        log: receives one line per figure drawn.

    Raises:
        FileNotFoundError: ``path`` is neither, or holds no complete run.
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"path: no such directory: {root}")
    if is_run_dir(root):
        run = load_run(root)
        suite = SuiteRecord(path=root, name=run.name, description="single run", runs=[run],
                            rows=[_single_run_row(run)])
        kind = "run"
    else:
        suite = load_suite(root)
        kind = "suite"
    if not suite.runs:
        raise FileNotFoundError(f"path: {root} holds no complete run (no runs/*/summary.json)")
    calibrators = list(dict.fromkeys(c for r in suite.runs for c in r.summary.get("posthoc", {})))
    columns = list(TABLE_COLUMNS) + [Column(f"{c.upper()} ECE %", f"{c}_ece", 100) for c in calibrators]
    if kind == "suite":
        columns += [Column("epochs to 95%", "epochs_to_95", 1, 1),
                    Column("ECE curve std %", "ece_curve_std", 100, stat=False)]
    rows = [dict(r) for r in suite.rows]
    for r in rows:  # a plain column shows its value as is; pre-format the one scaled plain column
        if isinstance(r.get("ece_curve_std"), (int, float)):
            r["ece_curve_std"] = round(100 * r["ece_curve_std"], 3)
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    subtitle = (f"{kind} {suite.path.resolve()} · {len(suite.runs)} complete run(s) · "
                f"caltrain {caltrain.__version__} · generated {when}")
    report = Report(title=f"caltrain report: {suite.name}", subtitle=subtitle, columns=columns, rows=rows)
    skipped: list[str] = []
    figures = _Figures(report, skipped, dpi, log)
    for dataset in suite.datasets():
        runs = suite.runs_of(dataset)
        firsts = _first_seed_runs(runs)
        figures.section = dataset
        shared = [c for c in calibrators if all(c in r.summary.get("posthoc", {}) for r in runs)][:1]
        if kind == "suite":
            figures.add("tradeoff", f"{dataset}: test accuracy against test ECE, one point per objective, error bars = "
                        "sample std across seeds" + (f"; right: after {shared[0]}" if shared else ""),
                        lambda: _tradeoff(runs, shared))
        figures.add("learning-curves", f"{dataset}: test (else validation) accuracy, ECE and NLL against epochs; "
                    "line = mean over seeds, band = min-max across seeds", lambda: _learning(runs))
        figures.add("reliability", f"{dataset}: reliability diagrams of "
                    f"{', '.join(r.name for r in firsts)} (test split): equal-width bins, equal-mass bins"
                    + "".join(f", after {c}" for c in calibrators) + "; gap bars red = over-confident, green = under-confident; histogram "
                    "of confidences beneath", lambda: _reliability_grid(firsts, calibrators))
        figures.add("smooth-reliability", f"{dataset}: smooth reliability curves (reflected Gaussian kernel, "
                    "h = 0.05) with 95% bootstrap bands (200 resamples), test split; legend: smooth ECE "
                    "(Błasiok & Nakkiran 2023, automatic bandwidth)", lambda: _smooth(firsts))
        figures.add("risk-coverage", f"{dataset}: risk-coverage curves for selective prediction (test split, "
                    "score = max softmax probability, 1 - p_idk for abstention runs)", lambda: _risk(firsts))
        for run in firsts:
            figures.add(f"classwise-{run.name}", f"{run.name}: classwise reliability (bins on every p_k, first "
                        f"{max_classes} classes), test split",
                        lambda run=run: _classwise(run, max_classes))
        for run in firsts:
            if run.has_logits("ood"):
                figures.add(f"ood-{run.name}", f"{run.name}: max-softmax-probability histograms, test vs OOD",
                            lambda run=run: _ood(run))
        tracked = [r for r in runs if r.curvature]
        if tracked:
            figures.add("sharpness", f"{dataset}: ECE (left axis) and Gauss-Newton sharpness (right axis) against "
                        "training steps on the tracked subset, one panel per run, with their Pearson r: "
                        + ", ".join(r.name for r in tracked), lambda: _sharpness(tracked))
    for run in suite.runs:
        report.configs.append(RunConfig(run.name, run.config_text or "(no config.yaml)",
                                        json.dumps(run.summary, indent=2, default=str)))
    report.caveats = _caveats(suite, kind, calibrators, skipped)
    return report


class _Figures:
    """Draws figures into a report's current section, recording the ones whose inputs are missing."""

    def __init__(self, report: Report, skipped: list[str], dpi: int, log: Callable[[str], None]) -> None:
        self.report, self.skipped, self.dpi, self.log, self.section = report, skipped, dpi, log, ""
        self.count = 0

    def add(self, slug: str, caption: str, draw: Callable[[], Any]) -> None:
        from caltrain.report.figures import figure_png

        try:
            fig = draw()
        except (ImportError, FileNotFoundError) as err:
            self.skipped.append(f"{self.section} / {slug}: {err}")
            return
        self.count += 1
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in f"{self.section}-{slug}")
        self.report.sections.setdefault(self.section, []).append(
            Figure(caption=caption, png=figure_png(fig, dpi=self.dpi), slug=f"fig{self.count:02d}-{safe}"))
        self.log(f"figure {self.count}: {self.section} / {slug}")


def _first_seed_runs(runs: list[RunRecord]) -> list[RunRecord]:
    seen: dict[str, RunRecord] = {}
    for r in runs:
        key = group_label(r)
        if key not in seen or r.seed < seen[key].seed:
            seen[key] = r
    return list(seen.values())


def _tradeoff(runs: list[RunRecord], calibrators: list[str]):
    from caltrain.report.figures import new_figure
    from caltrain.report.tradeoff import TradeoffScatter

    fig = new_figure((4.8 * (1 + len(calibrators)) + (1.6 if len({group_label(r) for r in runs}) > 4 else 0), 3.8))
    ax = fig.add_subplot(1, 1 + len(calibrators), 1)
    TradeoffScatter.from_runs(runs).plot(ax, title="uncalibrated", legend=not calibrators)
    for i, c in enumerate(calibrators):
        TradeoffScatter.from_runs(runs, calibrator=c).plot(fig.add_subplot(1, 1 + len(calibrators), 2 + i),
                                                           title=f"after {c}", legend=i == len(calibrators) - 1)
    return fig


def _learning(runs: list[RunRecord]):
    from caltrain.report.learning_curves import LearningCurves

    split = "test" if all("test" in e for r in runs for e in r.epochs) else "val"  # eval.splits may omit test
    return LearningCurves.from_runs(runs, split=split).plot().figure_


def _reliability_grid(runs: list[RunRecord], calibrators: list[str]):
    from caltrain.report.reliability import ReliabilityDiagram, plot_side_by_side

    grid = []
    for run in runs:
        label = group_label(run)
        row = [ReliabilityDiagram.from_run(run, label=f"{label}: equal width"),
               ReliabilityDiagram.from_run(run, binning="quantile", label=f"{label}: equal mass")]
        row += [ReliabilityDiagram.from_run(run, calibrator=c, label=f"{label}: after {c}") for c in calibrators
                if c in run.saved_calibrators]  # runs written before calibrators were saved: no "after" panel
        grid.append(row)
    return plot_side_by_side(grid)


def _smooth(runs: list[RunRecord]):
    from caltrain.report.figures import colour, line_style, new_axes, outside_legend
    from caltrain.report.smooth import SmoothReliability

    from caltrain.report.figures import metric

    ax = new_axes(None, (5.0 + (1.8 if len(runs) > 4 else 0), 4.4))
    for i, run in enumerate(runs):
        probs, labels = run.probs("test")
        smece = float(metric("smooth_calibration_error")(probs, labels))  # automatic bandwidth (relplot's)
        label = f"{group_label(run)}, smECE {100 * smece:.2f}%"
        SmoothReliability.from_predictions(probs, labels, label=label).plot(
            ax, colour=colour(i), linestyle=line_style(i), diagonal=i == 0, legend=False)
    outside_legend(ax, len(runs))
    return ax.figure


def _risk(runs: list[RunRecord]):
    from caltrain.report.figures import colour, line_style, new_axes, outside_legend
    from caltrain.report.selective import RiskCoverageCurve

    ax = new_axes(None, (5.0 + (1.8 if len(runs) > 4 else 0), 3.8))
    for i, run in enumerate(runs):
        RiskCoverageCurve.from_run(run, label=group_label(run)).plot(ax, colour=colour(i), linestyle=line_style(i),
                                                                     legend=False)
    outside_legend(ax, len(runs))
    return ax.figure


def _classwise(run: RunRecord, max_classes: int):
    from caltrain.report.classwise import ClasswiseReliability

    return ClasswiseReliability.from_run(run).plot(max_classes=max_classes).figure_


def _ood(run: RunRecord):
    from caltrain.report.selective import OODHistogram

    return OODHistogram.from_run(run).plot().figure_


def _sharpness(runs: list[RunRecord]):
    from caltrain.report.sharpness import SharpnessTrajectory, plot_trajectories

    return plot_trajectories([SharpnessTrajectory.from_run(r) for r in runs])


def _caveats(suite: SuiteRecord, kind: str, calibrators: list[str], skipped: list[str]) -> list[str]:
    n_bins = sorted({r.n_bins for r in suite.runs})
    select = sorted({str((r.config.get("eval") or {}).get("select", "last")) for r in suite.runs})
    out = [
        f"ECE: {', '.join(map(str, n_bins))} equal-width bins (lo, hi] on the top-label confidence (confidence 0 "
        "falls in the first bin), ECE = sum_b (n_b/N)|acc_b - conf_b| (Guo et al. 2017); AdaECE: the same with "
        "equal-mass bins (no sample dropped); classwise ECE (Kull et al. 2019): equal-width bins on every p_k, "
        "averaged over classes. All accumulated in float64 (caltrain.metrics).",
        "Numbers are on the test split, for the model chosen by eval.select = " + ", ".join(select) + ".",
    ]
    if kind == "suite":
        out.append("Table cells are mean ± sample standard deviation (ddof = 1) across seeds; a single seed has "
                   "no ± part. Bold: the best mean of a column within a dataset (highest accuracy, lowest otherwise); "
                   "check the ± before reading a difference. 'epochs to 95%': first epoch at which validation "
                   "accuracy reaches 95% of its final value. 'ECE curve std': across-seed std of test ECE "
                   "averaged over the last min(5, epochs) epochs.")
    if calibrators:
        out.append(f"Post-hoc calibrators ({', '.join(calibrators)}) were fitted on the validation logits and "
                   "evaluated on the test logits; the reliability diagrams 'after' draw the calibrators each run "
                   "saved (calibrators/<name>.json), never refitted.")
        unsaved = [r.name for r in suite.runs if any(c in r.summary.get("posthoc", {}) and c not in r.saved_calibrators
                                                      for c in calibrators)]
        if unsaved:
            out.append("No 'after' reliability diagram for runs written before calibrators were saved (no "
                       f"calibrators/<name>.json): {', '.join(unsaved)}.")
    abst = sorted({str(r.abstention) for r in suite.runs if r.abstention})
    if abst:
        out.append(f"Abstention runs (K+1 outputs): their metrics use the convention {', '.join(abst)} "
                   "(docs/methods.md#socrates-loss) and so do their plots (with_unknown: K+1 columns, predicting "
                   "unknown counts "
                   "as wrong; renormalized: p_k/(1 - p_idk)); without_unknown rows do not sum to 1, so its plots use "
                   "the renormalised rows. Risk-coverage keeps the samples with the smallest p_idk first; post-hoc "
                   "calibrators see the K class logits.")
    if suite.incomplete:
        out.append(f"Incomplete runs (no summary.json) are left out: {', '.join(suite.incomplete)}.")
    out.extend(f"Figure skipped: {s}" for s in skipped)
    return out
