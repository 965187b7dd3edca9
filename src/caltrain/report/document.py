"""``build_report``: what a report holds, format-free: a lead per dataset, then its folded sections.

A :class:`Report` is assembled from a suite directory or a single run directory by :func:`build_report`, then
rendered by :mod:`caltrain.report.html` (one self-contained page) or :mod:`caltrain.report.markdown`. For each
dataset (:class:`DatasetReport`) it holds:

1. the **verdict** (:mod:`caltrain.report.verdict`): which objective is best calibrated at no accuracy cost,
   by how much against the reference, with a 95% paired bootstrap interval;
2. the **results table**: one row per objective, mean ± sample std over seeds of every metric the runs'
   summaries hold (the task's primary metrics and the calibration error after each calibrator are shown, every
   other key is a column the reader can switch on); the best mean per column marked;
3. the **trade-off**: test accuracy against test ECE, one point per objective, uncalibrated and after each
   calibrator (shared x axis);
4. the task's **sections** (:mod:`caltrain.report.tasks`: learning curves on validation as small multiples,
   reliability diagrams before/after calibration for picked objectives, per-class ECE, OOD histograms, ...).

Figures are SVG (:mod:`caltrain.report.svg`, :mod:`caltrain.report.charts`) drawn from the plot objects'
data; nothing is refitted (calibrators are loaded from ``calibrators/<name>.json``) and nothing is written. A
figure whose inputs are missing (no saved logits, no saved calibrator) is left out and listed in the caveats.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import caltrain
from caltrain.report.loading import RunRecord, SuiteRecord, group_label, is_run_dir, load_run, load_suite
from caltrain.report.tasks import Block, DatasetContext, MetricInfo, Section, first_seed_runs, task_of, \
    task_sections

__all__ = ["Column", "DatasetReport", "METRIC_INFO", "Report", "RunConfig", "best_cells", "build_report",
           "format_cell", "per_seed_values", "table_columns", "table_rows"]


@dataclass(frozen=True)
class Column:
    """A results-table column: header, the row key (``<key>_mean``/``_std`` for metrics), scale and digits.

    ``stat``: a mean ± std column, else a plain value; ``better``: "low", "high" or None (which mean is marked
    best); ``visible``: shown at first (the reader switches the others on); ``description``: the header's tooltip.
    """

    header: str
    key: str
    scale: float = 1.0
    digits: int = 2
    stat: bool = True
    better: str | None = "low"
    visible: bool = True
    description: str = ""


#: How the table shows the metrics it knows (any other summary key gets its name as header, 3 digits, unranked).
METRIC_INFO: dict[str, MetricInfo] = {
    "accuracy": MetricInfo("acc %", 100, 2, "high", "top-1 accuracy"),
    "ece": MetricInfo("ECE %", 100, 2, "low", "expected calibration error, equal-width bins, top label"),
    "adaece": MetricInfo("AdaECE %", 100, 2, "low", "ECE with equal-mass bins"),
    "classwise_ece": MetricInfo("cw-ECE %", 100, 2, "low", "classwise ECE (Kull et al. 2019)"),
    "nll": MetricInfo("NLL", 1, 3, "low", "negative log-likelihood"),
    "brier": MetricInfo("Brier", 1, 3, "low", "Brier score, sum over classes"),
    "aurc": MetricInfo("AURC %", 100, 2, "low", "area under the risk-coverage curve"),
    "eaurc": MetricInfo("E-AURC %", 100, 2, "low", "excess AURC over an oracle ranking"),
    "mce": MetricInfo("MCE %", 100, 2, "low", "maximum calibration error (largest bin gap)"),
    "rmsce": MetricInfo("RMSCE %", 100, 2, "low", "root-mean-square calibration error"),
    "smooth_ece": MetricInfo("smECE %", 100, 2, "low", "smooth ECE (Błasiok & Nakkiran 2023)"),
    "true_ece": MetricInfo("true ECE %", 100, 2, "low", "calibration error E|E[q(yhat|x) | conf] - conf| "
                                                         "with the known true posterior"),
    "pointwise_ce": MetricInfo("pointwise CE %", 100, 2, "low", "E|q(yhat|x) - conf| with the known true posterior "
                                                                "(calibration error plus grouping loss)"),
    "grouping_loss": MetricInfo("grouping loss %", 100, 2, "low", "pointwise CE - true ECE"),
    "abstention_rate": MetricInfo("abstain %", 100, 2, None, "fraction of test samples predicted unknown"),
    # the dense binary task (pooled pixels; caltrain.metrics.dense and caltrain.metrics.sod)
    "oe": MetricInfo("OE %", 100, 2, "low", "over-confidence error (pooled pixels)"),
    "ue": MetricInfo("UE %", 100, 2, "low", "under-confidence error (pooled pixels)"),
    "confidence": MetricInfo("conf %", 100, 2, None, "mean confidence"),
    "mae": MetricInfo("MAE", 1, 4, "low", "mean absolute error of the saliency map"),
    "s_measure": MetricInfo("S-measure", 1, 3, "high", "structure measure"),
    "max_f": MetricInfo("max F", 1, 3, "high", "maximum F-measure over thresholds"),
    "mean_f": MetricInfo("mean F", 1, 3, "high", "mean F-measure over thresholds"),
    "adp_f": MetricInfo("adaptive F", 1, 3, "high", "F-measure at the adaptive threshold"),
    "max_e": MetricInfo("max E", 1, 3, "high", "maximum E-measure over thresholds"),
    "mean_e": MetricInfo("mean E", 1, 3, "high", "mean E-measure over thresholds"),
    "adp_e": MetricInfo("adaptive E", 1, 3, "high", "E-measure at the adaptive threshold"),
}

#: Marker shapes of the objectives (with the colours: a pair unique to each objective of a dataset).
_MARKERS = ("o", "s", "^", "D", "v")

#: Summary keys that are no metric (left out of the table).
_NOT_METRICS = ("n", "n_images")


def _info(key: str, extra: dict[str, MetricInfo]) -> MetricInfo:
    return extra.get(key) or METRIC_INFO.get(key) or MetricInfo(key, 1, 3, None, key)


@dataclass
class RunConfig:
    """One run's configuration text and its summary (for the collapsible per-run sections)."""

    name: str
    config_text: str
    summary_text: str


@dataclass
class DatasetReport:
    """One dataset of a report: its lead (verdict, table, trade-off) and its sections.

    Attributes:
        name: the dataset label; task: its task; slug: an id unique in the report.
        subtitle: model(s), objectives, seeds and test-set size in one line.
        columns, rows: the results table (one row per objective; ``objective`` is the group label).
        verdict: the :class:`~caltrain.report.verdict.Verdict`, or None; verdict_text: its sentence (or why none).
        tradeoff: one figure per view (uncalibrated, after each calibrator), sharing the x axis.
        sections: the task's sections; colours: objective -> colour.
    """

    name: str
    task: str
    slug: str
    subtitle: str
    columns: list[Column]
    rows: list[dict[str, Any]]
    verdict: Any = None
    verdict_text: str = ""
    tradeoff: list[Block] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    colours: dict[str, str] = field(default_factory=dict)


@dataclass
class Report:
    """Everything a rendered report shows.

    Attributes:
        title, subtitle: the heading.
        datasets: one :class:`DatasetReport` per dataset, in the suite's order.
        definitions: how the verdicts and the table are computed (shown under the verdicts).
        configs: per-run configuration.
        caveats: the conventions used and anything left out.
    """

    title: str
    subtitle: str
    datasets: list[DatasetReport] = field(default_factory=list)
    definitions: list[str] = field(default_factory=list)
    configs: list[RunConfig] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)

    @property
    def blocks(self) -> list[Block]:
        """Every figure and table block, in page order (trade-off views first within a dataset)."""
        return [b for d in self.datasets for b in [*d.tradeoff, *(b for s in d.sections for b in s.blocks)]]

    @property
    def rows(self) -> list[dict[str, Any]]:
        """Every table row of every dataset."""
        return [r for d in self.datasets for r in d.rows]


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
    """``[(seed, value)]`` behind a mean ± std cell, from the row's ``per_seed`` (test or post-hoc)."""
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


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (ddof = 1; None for one value), the convention of
    :mod:`caltrain.train.aggregate` (the tests check the two agree)."""
    if not values:
        return None, None
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _group_key(run: RunRecord) -> tuple[str, str, str, str]:
    return (run.dataset, str(run.labels.get("model", "")), run.objective, str(run.labels.get("variant") or ""))


def table_rows(runs: list[RunRecord], aggregate_rows: list[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """One row per (dataset, model, objective, variant) group of ``runs``, in first-seen order.

    Every numeric key of the runs' ``summary["test"]`` becomes ``<key>_mean`` / ``<key>_std`` over seeds, every
    post-hoc key ``<calibrator>_<key>_mean`` / ``_std`` (so keys that ``results.json`` does not aggregate are
    shown too); ``per_seed`` keeps the per-seed blocks (cell tooltips); ``label`` is the group label
    (:func:`~caltrain.report.loading.group_label`). The suite-level columns of ``results.json``
    (``epochs_to_95``, ``ece_curve_std``) are copied from the matching aggregate row.
    """
    groups: dict[tuple[str, str, str, str], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault(_group_key(r), []).append(r)
    index = {(a.get("dataset"), str(a.get("model", "")), a.get("objective"), str(a.get("variant") or "")): a
             for a in aggregate_rows}
    rows = []
    for key, members in groups.items():
        members = sorted(members, key=lambda r: r.seed)
        row: dict[str, Any] = dict(zip(("dataset", "model", "objective", "variant"), key))
        row.update(label=group_label(members[0]), n_seeds=len(members), runs=[r.name for r in members])
        blocks = {"": [r.summary.get("test", {}) for r in members]}
        for r in members:
            for cal, block in (r.summary.get("posthoc") or {}).items():
                blocks.setdefault(f"{cal}_", [])
        for prefix in list(blocks)[1:]:
            blocks[prefix] = [(r.summary.get("posthoc") or {}).get(prefix[:-1], {}) for r in members]
        for prefix, per_run in blocks.items():
            for k in dict.fromkeys(k for b in per_run for k in b):
                if k in _NOT_METRICS:
                    continue
                values = [float(b[k]) for b in per_run if _numeric(b.get(k))]
                if values:
                    row[f"{prefix}{k}_mean"], row[f"{prefix}{k}_std"] = _mean_std(values)
        row["per_seed"] = [{"seed": r.seed, "run": r.name, "test": r.summary.get("test", {}),
                            "posthoc": r.summary.get("posthoc") or {}} for r in members]
        agg = index.get(key)
        if agg is not None:
            for k in ("epochs_to_95_mean", "epochs_to_95_std"):
                if k in agg:
                    row[k] = agg[k]
            if _numeric(agg.get("ece_curve_std")):
                row["ece_curve_std"] = round(100 * agg["ece_curve_std"], 3)
        rows.append(row)
    return rows


def table_columns(runs: list[RunRecord], rows: list[dict[str, Any]], sections: Any, *,
                  calibrators: list[str]) -> list[Column]:
    """The table's columns: the objective, then the task's primary metrics and the calibration metric after
    each calibrator (visible), then every other key the runs hold (switched off at first)."""
    extra = dict(getattr(sections, "metric_info", {}) or {})
    cols = [Column("objective", "label", stat=False, better=None, description="objective (/variant)")]
    if len({r["model"] for r in rows}) > 1:
        cols.append(Column("model", "model", stat=False, better=None))
    if len({r["n_seeds"] for r in rows}) > 1:
        cols.append(Column("seeds", "n_seeds", stat=False, better=None))
    test_keys = list(dict.fromkeys(k for r in runs for k, v in r.summary.get("test", {}).items()
                                   if _numeric(v) and k not in _NOT_METRICS))
    posthoc = {c: list(dict.fromkeys(k for r in runs for k, v in ((r.summary.get("posthoc") or {}).get(c) or {}).items()
                                     if _numeric(v) and k not in _NOT_METRICS)) for c in calibrators}

    def metric_column(key: str, *, cal: str | None = None, visible: bool) -> Column:
        info = _info(key, extra)
        if cal is None:
            return Column(info.header, key, info.scale, info.digits, better=info.better, visible=visible,
                          description=f"{info.description} (test split)")
        return Column(f"{cal.upper()} {info.header}", f"{cal}_{key}", info.scale, info.digits, better=info.better,
                      visible=visible, description=f"{info.description} after the calibrator {cal} (fitted on "
                                                   "validation, test split)")

    primary = [k for k in sections.primary_metrics if k in test_keys]
    cols += [metric_column(k, visible=True) for k in primary]
    cal_metric = sections.calibration_metric
    cols += [metric_column(cal_metric, cal=c, visible=True) for c in calibrators if cal_metric in posthoc[c]]
    cols += [metric_column(k, visible=False) for k in test_keys if k not in primary]
    cols += [metric_column(k, cal=c, visible=False) for c in calibrators for k in posthoc[c] if k != cal_metric]
    if any("epochs_to_95_mean" in r for r in rows):
        cols.append(Column("epochs to 95%", "epochs_to_95", 1, 1, visible=False,
                           description="first epoch at which validation accuracy reaches 95% of its final value"))
    if any("ece_curve_std" in r for r in rows):
        cols.append(Column("ECE curve std %", "ece_curve_std", 100, stat=False, visible=False,
                           description="across-seed std of test ECE averaged over the last min(5, epochs) epochs"))
    return cols


def _single_run_suite(run: RunRecord) -> SuiteRecord:
    return SuiteRecord(path=run.path, name=run.name, description="single run", runs=[run], rows=[])


def build_report(path: str | Path, *, max_classes: int = 10, dpi: int | None = None,
                 log: Callable[[str], None] = lambda s: None) -> Report:
    """Assemble the report of a suite directory or a single run directory (reads only; writes nothing).

    Args:
        path: a suite directory (``runs/`` and ``results.json``) or a complete run directory (``summary.json``).
        max_classes: per-class figures show at most this many classes.
        dpi: unused (the figures are vector graphics); kept so older callers still work.
        log: receives one line per dataset and section.

    Raises:
        FileNotFoundError: ``path`` is neither, or holds no complete run.
    """
    import torch

    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"path: no such directory: {root}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: one thread, not two spinning against a busy machine's other work
    try:
        return _build(root, max_classes=max_classes, log=log)
    finally:
        torch.set_num_threads(threads)


def _build(root: Path, *, max_classes: int, log: Callable[[str], None]) -> Report:
    from caltrain.report.figures import PALETTE, colour
    from caltrain.report.verdict import DEFAULT_TOLERANCE, choose_reference

    if is_run_dir(root):
        suite, kind = _single_run_suite(load_run(root)), "run"
    else:
        suite, kind = load_suite(root), "suite"
    if not suite.runs:
        raise FileNotFoundError(f"path: {root} holds no complete run (no runs/*/summary.json)")
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    subtitle = (f"{kind} {suite.path.resolve()} · {len(suite.runs)} complete run(s) · "
                f"caltrain {caltrain.__version__} · generated {when}")
    report = Report(title=f"caltrain report: {suite.name}", subtitle=subtitle)
    skipped: list[str] = []
    task_caveats: list[str] = []
    for di, dataset in enumerate(suite.datasets()):
        runs = suite.runs_of(dataset)
        tasks = list(dict.fromkeys(task_of(r) for r in runs))
        if len(tasks) > 1:
            skipped.append(f"{dataset}: runs of several tasks ({', '.join(tasks)}); sections of {tasks[0]} shown")
        sections = task_sections(tasks[0])
        by_objective: dict[str, list[RunRecord]] = {}
        for r in runs:
            by_objective.setdefault(group_label(r), []).append(r)
        rows = table_rows(runs, suite.rows)
        accuracy = {r["label"]: r.get("accuracy_mean") for r in rows if _numeric(r.get("accuracy_mean"))}
        objectives = list(by_objective)
        reference = choose_reference(objectives, accuracy, sections.reference_candidates) if objectives else ""
        objectives = [reference] + [o for o in objectives if o != reference]
        rows.sort(key=lambda r: objectives.index(r["label"]))
        colours = {o: colour(i) for i, o in enumerate(objectives)}
        markers = {o: _MARKERS[(i + i // len(PALETTE)) % len(_MARKERS)] for i, o in enumerate(objectives)}
        calibrators = [c for c in dict.fromkeys(c for r in runs for c in (r.summary.get("posthoc") or {}))
                       if all(c in (r.summary.get("posthoc") or {}) for r in runs)]
        slug = f"d{di}"
        ctx = DatasetContext(dataset=dataset, task=sections.name, slug=slug, runs=runs, objectives=objectives,
                             by_objective={o: by_objective[o] for o in objectives},
                             firsts=first_seed_runs(runs, group_label), reference=reference, colours=colours,
                             markers=markers, calibrators=calibrators, max_classes=max_classes, skipped=skipped)
        ctx.verdict = sections.verdict(ctx)
        log(f"{dataset}: table and verdict")
        models = sorted({str(r.labels.get('model', '?')) for r in runs})
        seeds = sorted({len(v) for v in by_objective.values()})
        n_test = next((r.summary.get("test", {}).get("n") for r in runs if r.summary.get("test", {}).get("n")), None)
        sub = (f"{', '.join(models)} · {len(objectives)} objective{'s' if len(objectives) != 1 else ''} × "
               f"{'/'.join(map(str, seeds))} seed{'s' if seeds != [1] else ''}"
               + (f" · {int(n_test):,} test {'pixels' if sections.name == 'dense_binary' else 'samples'}"
                  if n_test else "") + f" · task {sections.name}")
        if ctx.verdict is not None:
            text = ctx.verdict.sentence(_info(sections.calibration_metric, sections.metric_info).header.rstrip(" %"))
        elif len(objectives) < 2:
            text = "One objective: nothing to compare."
        else:
            text = "No verdict (see the caveats)."
        ds = DatasetReport(name=dataset, task=sections.name, slug=slug, subtitle=sub,
                           columns=table_columns(runs, rows, sections, calibrators=calibrators), rows=rows,
                           verdict=ctx.verdict, verdict_text=text, colours=colours)
        ds.tradeoff = _tradeoff(ctx, sections, skipped)
        log(f"{dataset}: trade-off")
        ds.sections = sections.sections(ctx)
        task_caveats += sections.caveats(ctx)
        log(f"{dataset}: {len(ds.sections)} sections")
        report.datasets.append(ds)
    report.definitions = [
        "Reference: the task's baseline objective (ce for classification) when the dataset has it, else the "
        "objective with the highest mean test accuracy.",
        f"No accuracy cost: mean test accuracy over seeds at least the reference's minus "
        f"{100 * DEFAULT_TOLERANCE:.1f} percentage points.",
        "Best calibrated: the lowest mean test ECE among the objectives at no accuracy cost. Δ = its mean ECE minus "
        "the reference's; 95% CI: percentile interval of a paired bootstrap over test samples (1000 resamples, "
        "the same resampled test sets for both objectives, each seed's models held fixed). It measures how much "
        "the difference depends on which test samples were drawn, not seed-to-seed variation; the table's ± "
        "shows that.",
    ]
    for run in suite.runs:
        report.configs.append(RunConfig(run.name, run.config_text or "(no config.yaml)",
                                        json.dumps(run.summary, indent=2, default=str)))
    report.caveats = _caveats(suite, kind, skipped, task_caveats)
    return report


def _tradeoff(ctx: DatasetContext, sections: Any, skipped: list[str]) -> list[Block]:
    from caltrain.report.charts import tradeoff
    from caltrain.report.tradeoff import TradeoffScatter
    from caltrain.report.verdict import DEFAULT_TOLERANCE

    metric = sections.calibration_metric
    label = _info(metric, sections.metric_info).header.rstrip(" %")
    views = []
    try:
        views.append(("uncalibrated", TradeoffScatter.from_runs(ctx.runs, metric=metric)))
        for c in ctx.calibrators:
            views.append((f"after {c}", TradeoffScatter.from_runs(ctx.runs, calibrator=c, metric=metric)))
    except ValueError as err:
        if not views:
            skipped.append(f"{ctx.dataset} / trade-off: {err}")
            return []
    svgs = tradeoff(views, dataset=ctx.dataset, colours=ctx.colours, markers=ctx.markers, metric_label=label,
                    reference=ctx.reference, tolerance=DEFAULT_TOLERANCE if len(ctx.objectives) > 1 else None,
                    slug=f"{ctx.slug}-to")
    return [Block(slug=f"{ctx.slug}-tradeoff-{i}", title=f"{ctx.dataset}: accuracy vs {label}, {name}", body=svg,
                  caption=f"Test accuracy against test {label}, {name}: one point per objective (mean over seeds), "
                          "bars = sample std across seeds; down and to the right is better; the views share the x "
                          "axis, each has its own y axis"
                          + (f"; the shaded region is no accuracy cost (accuracy ≥ {ctx.reference}'s − "
                             f"{100 * DEFAULT_TOLERANCE:.1f} pp)." if len(ctx.objectives) > 1 else "."))
            for i, ((name, _), svg) in enumerate(zip(views, svgs))]


def _caveats(suite: SuiteRecord, kind: str, skipped: list[str], task_caveats: list[str]) -> list[str]:
    select = sorted({str((r.config.get("eval") or {}).get("select", "last")) for r in suite.runs})
    out = list(dict.fromkeys(task_caveats))
    out.append("Table and trade-off numbers are on the test split, for the model chosen by eval.select = "
               + ", ".join(select) + "; learning curves are on the validation split (the test value of the "
               "selected model is shown once, after the last epoch).")
    if kind == "suite":
        out.append("Table cells are mean ± sample standard deviation (ddof = 1) across seeds; a single seed has "
                   "no ± part. Bold: the best mean of a column within a dataset (highest accuracy, lowest "
                   "otherwise); check the ± before reading a difference; hover a cell for the per-seed values.")
    if suite.incomplete:
        out.append(f"Incomplete runs (no summary.json) are left out: {', '.join(suite.incomplete)}.")
    out.extend(f"Left out: {s}" for s in skipped)
    return out
