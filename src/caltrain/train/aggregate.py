"""Aggregate a suite's run directories over seeds into ``results.csv``, ``results.md`` and ``results.json``.

Rows are grouped by (dataset, model, objective, variant). For each test metric ``m`` of the runs' task
(:data:`TASK_METRICS`: classification, the keys of ``caltrain evaluate``; dense binary, the pooled pixel metrics,
the true calibration error and the SOD metrics) the row holds ``m_mean`` and ``m_std`` across seeds (sample standard deviation, ddof=1; empty
for a single seed), the same after each post-hoc calibrator fitted on validation (``ts_ece_mean``,
``ats_ece_mean``, ...), and:

- ``epochs_to_95``: convergence speed, the first epoch at which validation accuracy reaches 95% of its final value;
- ``ece_curve_std``: training stability of calibration, the across-seed standard deviation of test ECE averaged
  over the last ``min(5, epochs)`` epochs (Reading: the issue asks for "std across seeds of the ECE curve over the
  last epochs"; this is that quantity reduced to one number).

``results.json`` also keeps the per-seed values and the per-epoch curves (for plots). :func:`results` computes
all of it in memory without writing (what the report reads when ``results.json`` is missing); :func:`aggregate`
writes it. Every path comes from :class:`caltrain.train.run_dir.SuiteDir`.
"""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from caltrain.train.run_dir import SuiteDir
from caltrain.utils.io import atomic_write_json, atomic_write_text

__all__ = ["METRICS", "aggregate", "epochs_to_fraction", "load_runs", "results"]

#: Test metrics aggregated for every row of a classification suite (keys of ``caltrain evaluate --json``).
METRICS = ("accuracy", "ece", "adaece", "classwise_ece", "nll", "brier", "aurc")
#: Metrics reported after each post-hoc calibrator (classification).
POSTHOC_METRICS = ("ece", "adaece", "classwise_ece", "nll", "brier", "accuracy")
#: Per task (``summary["task"]``; runs written before it are classification): the test metrics of a row and the
#: metrics after each calibrator.
TASK_METRICS = {
    "classification": (METRICS, POSTHOC_METRICS),
    "dense_binary": (("accuracy", "ece", "oe", "ue", "true_ece", "pointwise_ce", "nll", "brier", "mae", "max_f",
                      "s_measure", "max_e"), ("ece", "oe", "ue", "true_ece", "nll", "brier", "accuracy", "mae", "max_f",
                                        "s_measure")),
}
#: Curves kept per seed in results.json: (split, metric).
CURVES = (("train", "loss"), ("train", "accuracy"), ("val", "accuracy"), ("val", "ece"), ("val", "nll"),
          ("test", "accuracy"), ("test", "ece"), ("test", "nll"))
_GROUP = ("dataset", "model", "objective", "variant")


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None, None
    mean = sum(vals) / len(vals)
    if len(vals) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))


def epochs_to_fraction(val_accuracy: Sequence[float], fraction: float = 0.95) -> int | None:
    """The first epoch (1-based) whose validation accuracy reaches ``fraction`` of the final epoch's."""
    if not val_accuracy:
        return None
    target = fraction * val_accuracy[-1]
    return next(i + 1 for i, a in enumerate(val_accuracy) if a >= target)


def load_runs(out_dir: str | Path, runs: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Every complete run under ``out_dir/runs`` (or the named ones) that has ``labels.json``.

    Args:
        out_dir: a suite directory.
        runs: run folder names under ``runs/`` (default: every folder, sorted).

    Returns:
        ``[{"name", "labels", "summary", "epochs"}]``: ``epochs`` are the epoch-end records of ``metrics.jsonl``.
    """
    suite = SuiteDir(out_dir)
    loaded = []
    for name in runs if runs is not None else suite.run_names():
        run = suite.run(name)
        labels = run.read_labels() if run.is_complete() else None
        if labels is None:
            continue
        epochs = [r for r in run.read_metrics() if isinstance(r.get("epoch"), int) and "val" in r]
        loaded.append({"name": name, "labels": labels, "summary": run.read_summary(), "epochs": epochs})
    return loaded


def run_task(summary: dict[str, Any]) -> str:
    """A run's task: ``summary["task"]``, or ``"classification"`` for runs written before the key."""
    return summary.get("task", "classification")


def _group_row(key: tuple, members: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = dict(zip(_GROUP, key))
    row["n_seeds"] = len(members)
    task = run_task(members[0]["summary"])
    if task != "classification":
        row["task"] = task
    metrics, posthoc_metrics = TASK_METRICS.get(task, TASK_METRICS["classification"])
    for m in metrics:
        row[f"{m}_mean"], row[f"{m}_std"] = _mean_std([r["summary"]["test"].get(m) for r in members])
    calibrators = sorted({c for r in members for c in r["summary"].get("posthoc", {})})
    for c in calibrators:
        for m in posthoc_metrics:
            vals = [r["summary"]["posthoc"].get(c, {}).get(m) for r in members]
            row[f"{c}_{m}_mean"], row[f"{c}_{m}_std"] = _mean_std(vals)
    row["epochs_to_95_mean"], row["epochs_to_95_std"] = _mean_std(
        [epochs_to_fraction([e["val"]["accuracy"] for e in r["epochs"]]) for r in members]
    )
    n_last = min([5] + [len(r["epochs"]) for r in members])
    per_epoch_std = []
    for k in range(1, n_last + 1):
        _, std = _mean_std([r["epochs"][-k]["test"]["ece"] for r in members if "test" in r["epochs"][-k]])
        if std is not None:
            per_epoch_std.append(std)
    row["ece_curve_std"] = sum(per_epoch_std) / len(per_epoch_std) if per_epoch_std else None
    return row


def _curves(run: dict[str, Any]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"epoch": [e["epoch"] for e in run["epochs"]]}
    for split, metric in CURVES:
        out[f"{split}_{metric}"] = [e.get(split, {}).get(metric) for e in run["epochs"]]
    return out


def results(out_dir: str | Path, runs: Sequence[str] | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The aggregate of the complete runs of ``out_dir``, computed in memory (nothing is written).

    Args:
        out_dir: a suite directory.
        runs: run folder names under ``runs/`` (default: every folder).

    Returns:
        ``(rows, document)``: the rows of ``results.csv``/``results.md`` (one per dataset x model x objective x
        variant) and the content of ``results.json`` (``{"metrics", "rows"}``, rows with ``per_seed`` and
        ``curves``).
    """
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for r in load_runs(out_dir, runs):
        groups[tuple(r["labels"].get(k, "") for k in _GROUP)].append(r)
    rows, detailed = [], []
    for key in sorted(groups, key=lambda k: tuple(str(x) for x in k)):
        members = sorted(groups[key], key=lambda r: r["labels"].get("seed", 0))
        row = _group_row(key, members)
        rows.append(row)
        detailed.append({
            **row,
            "per_seed": [{"seed": r["labels"].get("seed"), "run": r["name"], "test": r["summary"]["test"],
                          "val": r["summary"]["val"], "posthoc": r["summary"].get("posthoc", {}),
                          "selected_epoch": r["summary"].get("selected_epoch"),
                          "train_seconds": r["summary"].get("train_seconds")} for r in members],
            "curves": [_curves(r) for r in members],
        })
    tasks = sorted({run_task(r["summary"]) for rows_ in groups.values() for r in rows_}) or ["classification"]
    metric_names = list(dict.fromkeys(m for t in tasks for m in TASK_METRICS.get(t, (METRICS,))[0]))
    return rows, {"metrics": metric_names, "rows": detailed}


def aggregate(out_dir: str | Path, runs: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Aggregate the complete runs of ``out_dir`` (:func:`results`) and write ``results.{csv,md,json}`` there.

    Args:
        out_dir: a suite directory.
        runs: run folder names under ``runs/`` (default: every folder).

    Returns:
        The rows of ``results.csv``.
    """
    suite = SuiteDir(out_dir)
    rows, document = results(suite.root, runs)
    atomic_write_text(suite.results("csv"), _to_csv(rows))
    atomic_write_text(suite.results("md"), to_markdown(rows))
    atomic_write_json(suite.results("json"), document)
    return rows


def _to_csv(rows: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: ("" if row.get(c) is None else row.get(c)) for c in columns})
    return buf.getvalue()


def _pm(row: dict[str, Any], key: str, scale: float = 1.0, digits: int = 2) -> str:
    mean, std = row.get(f"{key}_mean"), row.get(f"{key}_std")
    if mean is None:
        return "-"
    text = f"{mean * scale:.{digits}f}"
    return text + (f" ± {std * scale:.{digits}f}" if std is not None else "")


#: The Markdown table of a dense binary suite: (header, key, scale, digits).
_DENSE_COLUMNS = (("pixel acc %", "accuracy", 100, 2), ("ECE %", "ece", 100, 2), ("OE %", "oe", 100, 2),
                  ("UE %", "ue", 100, 2), ("true ECE %", "true_ece", 100, 2), ("NLL", "nll", 1, 3),
                  ("Brier", "brier", 1, 3), ("max F", "max_f", 1, 3), ("S", "s_measure", 1, 3), ("MAE", "mae", 1, 3),
                  ("TS ECE %", "ts_ece", 100, 2))


def _dense_markdown(rows: list[dict[str, Any]]) -> str:
    head = ["dataset", "model", "objective", "variant", "seeds", *(h for h, *_ in _DENSE_COLUMNS)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["dataset"], r["model"], r["objective"], r["variant"] or "-", str(r["n_seeds"])]
        cells += [_pm(r, key, scale, digits) for _, key, scale, digits in _DENSE_COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def to_markdown(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of the key columns (accuracy and calibration errors in %, NLL and Brier as is); a dense
    binary suite's rows get their own table (pooled pixel metrics, true ECE, SOD metrics)."""
    dense = [r for r in rows if r.get("task") == "dense_binary"]
    rows = [r for r in rows if r.get("task") != "dense_binary"]
    dense_text = ""
    if dense:
        dense_text = _dense_markdown(dense) + (
            "\nTest split, mean ± sample std over seeds, every pixel pooled. ECE / OE / UE: equal-width bins of the "
            "pixel confidence max(s, 1 - s) (OE, UE: over- and under-confidence parts); true ECE: against the known "
            "per-pixel posterior; max F (beta^2 = 0.3), S-measure, MAE: the SOD metrics (per image, averaged); "
            "TS: binary temperature scaling fitted on validation pixels.\n")
        if not rows:
            return dense_text
        dense_text = "\n" + dense_text
    head = ["dataset", "model", "objective", "variant", "seeds", "acc %", "ECE %", "AdaECE %", "cw-ECE %", "NLL",
            "Brier", "AURC %", "TS ECE %", "ATS ECE %", "epochs to 95%"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [
            r["dataset"], r["model"], r["objective"], r["variant"] or "-", str(r["n_seeds"]),
            _pm(r, "accuracy", 100), _pm(r, "ece", 100), _pm(r, "adaece", 100), _pm(r, "classwise_ece", 100),
            _pm(r, "nll", 1, 3), _pm(r, "brier", 1, 3), _pm(r, "aurc", 100), _pm(r, "ts_ece", 100),
            _pm(r, "ats_ece", 100), _pm(r, "epochs_to_95", 1, 1),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    notes = ("\nTest split, mean ± sample std over seeds. ECE: equal-width bins (15 unless eval.n_bins says otherwise) on the top-label confidence; "
             "AdaECE: equal-mass bins; TS/ATS: after temperature scaling / adaptive piecewise TS fitted on "
             "validation logits.\n")
    return "\n".join(lines) + "\n" + notes + dense_text
