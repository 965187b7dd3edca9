"""write_report: the lead (verdict, table, trade-off), the sections, Markdown with SVG files, single runs, errors."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from caltrain.report import write_report
from caltrain.report.document import build_report


def test_html_is_self_contained_with_one_row_per_objective(suite_reports):
    text = suite_reports["html"].read_text()
    body = text[text.index("<tbody>"):text.index("</tbody>")]
    assert body.count("<tr ") == 2 and 'data-objective="ce"' in body and 'data-objective="ls"' in body
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", text)  # nothing fetched: no external src/href
    assert "http://" not in text and "https://" not in text and "<link" not in text and "<img" not in text
    report = suite_reports["report"]
    assert text.count('<svg class="plot"') == sum(b.kind == "svg" for b in report.blocks) >= 6
    for needle in ("equal-width bins", "Conventions and caveats", "config.yaml", "synthetic__ls__seed1", "after ts",
                   "data-images-ok", "data-figures-ok", "sample standard deviation", "no accuracy cost",
                   "how the verdict is computed", 'class="picker-scope"', '<details class="dataset"'):
        assert needle in text, needle


def test_report_leads_with_verdict_table_and_tradeoff(suite_reports):
    text = suite_reports["html"].read_text()
    verdicts, table, tradeoff, sections = (text.index(s) for s in ('id="verdicts"', 'class="results"',
                                                                   'accuracy vs ECE, uncalibrated',
                                                                   '<details class="dataset"'))
    assert verdicts < table < tradeoff < sections  # the lead comes before every folded section
    report = suite_reports["report"]
    (ds,) = report.datasets
    assert ds.name == "synthetic" and ds.verdict is not None
    assert [b.title for b in ds.tradeoff] == ["synthetic: accuracy vs ECE, uncalibrated",
                                              "synthetic: accuracy vs ECE, after ts"]
    assert ds.verdict.reference == "ce" and ds.verdict.best in ("ce", "ls")
    assert ds.verdict_text.startswith(ds.verdict.best) and "95% CI" in ds.verdict_text or "reference" in ds.verdict_text


def test_sections_of_a_classification_dataset(suite_reports):
    report = suite_reports["report"]
    (ds,) = report.datasets
    titles = [s.title for s in ds.sections]
    assert titles[:3] == ["Learning curves (validation)", "Reliability diagrams (test), before and after calibration",
                          "Per-class calibration"]
    reliability = ds.sections[1]
    assert reliability.picker == ["ce", "ls"] and "ce" in reliability.picked
    assert [b.objective for b in reliability.blocks] == ["ce", "ls"]
    ood = [s for s in ds.sections if s.title == "Out-of-distribution detection"]
    if ood:  # the OOD histograms name the OOD set
        run = suite_reports["report"].configs[0]
        name = next(iter(json.loads(run.summary_text)["ood"]))
        assert name in ood[0].blocks[0].title and f"out-of-distribution: {name}" in ood[0].blocks[0].body


def test_every_figure_has_a_title_axis_labels_and_a_legend(suite_reports):
    for block in suite_reports["report"].blocks:
        if block.kind != "svg":
            continue
        svg = block.body
        assert re.search(r'<text class="title"[^>]*>[^<]+</text>', svg), block.slug
        assert 'class="xlabel"' in svg and 'class="ylabel"' in svg, block.slug
        legend = re.search(r'<g class="legend">(.*?)</g></g></g>|<g class="legend">(.*)', svg, flags=re.S)
        assert legend and re.search(r'class="legend-item".*?<text[^>]*>[^<]+</text>', svg, flags=re.S), block.slug


def test_learning_curves_are_validation_with_test_only_at_the_end(suite_dir, suite_reports):
    (ds,) = suite_reports["report"].datasets
    svg = ds.sections[0].blocks[0].body
    assert "validation" in ds.sections[0].blocks[0].title and "val ECE %" in svg and "test ECE" not in svg
    run = suite_dir / "runs" / "synthetic__ce__seed0"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in records if isinstance(r.get("epoch"), int) and "val" in r]
    other = suite_dir / "runs" / "synthetic__ce__seed1"
    records1 = [json.loads(line) for line in (other / "metrics.jsonl").read_text().splitlines()]
    epochs1 = [r for r in records1 if isinstance(r.get("epoch"), int) and "val" in r]
    for e0, e1 in zip(epochs, epochs1):  # every hover value of the mean line is the mean of the seeds' val ECE
        mean = 100 * (e0["val"]["ece"] + e1["val"]["ece"]) / 2
        assert f'ce, val ECE %, epoch {e0["epoch"]}: {mean:.3f}' in svg
    test = [json.loads((suite_dir / "runs" / f"synthetic__ce__seed{s}" / "summary.json").read_text())["test"]["ece"]
            for s in (0, 1)]
    end = f"mean over seeds: {100 * np.mean(test):.3f}%"
    assert re.search(r"ce: test ece of the selected model \(epoch [^)]*\), " + re.escape(end), svg)


def test_reliability_bars_are_the_diagram_data(suite_reports, run_dir):
    from caltrain.report import ReliabilityDiagram

    (ds,) = suite_reports["report"].datasets
    svg = next(b.body for b in ds.sections[1].blocks if b.objective == "ce")
    for view, d in (("uncalibrated", ReliabilityDiagram.from_run(run_dir)),
                    ("after ts", ReliabilityDiagram.from_run(run_dir, calibrator="ts"))):
        assert f"{view} · ECE {100 * d.ece:.2f}%" in svg
        for b in np.flatnonzero(d.count):
            assert (f"accuracy {d.accuracy[b]:.3f}, mean confidence {d.confidence[b]:.3f}, {int(d.count[b])} "
                    "samples") in svg


def test_table_shows_every_metric_the_summaries_hold(suite_dir, suite_reports, tmp_path):
    (ds,) = suite_reports["report"].datasets
    keys = {c.key: c for c in ds.columns}
    summary = json.loads((suite_dir / "runs" / "synthetic__ce__seed0" / "summary.json").read_text())
    for k in summary["test"]:
        if k != "n":
            assert k in keys, k
    assert keys["ece"].visible and keys["ts_ece"].visible and not keys["mce"].visible and not keys["ts_nll"].visible
    # a key nobody told the report about (e.g. added by another change to summarize) is shown as is
    copy = tmp_path / "suite"
    shutil.copytree(suite_dir, copy)
    for s in (copy / "runs").glob("*/summary.json"):
        data = json.loads(s.read_text())
        data["test"]["grouping_loss_v2"] = 0.25
        s.write_text(json.dumps(data))
    (ds,) = build_report(copy).datasets
    col = next(c for c in ds.columns if c.key == "grouping_loss_v2")
    assert col.header == "grouping_loss_v2" and col.better is None and ds.rows[0]["grouping_loss_v2_mean"] == 0.25


def test_table_rows_agree_with_results_json(suite_dir, suite_reports):
    rows = json.loads((suite_dir / "results.json").read_text())["rows"]
    (ds,) = suite_reports["report"].datasets
    for agg in rows:
        row = next(r for r in ds.rows if r["label"] == agg["objective"])
        for key, value in agg.items():
            plain = key.startswith(("epochs_to_95", "ece_curve"))
            if key.endswith(("_mean", "_std")) and value is not None and not plain:
                assert row[key] == pytest.approx(value, rel=1e-12), key
        assert row["epochs_to_95_mean"] == agg["epochs_to_95_mean"]


def test_format_cell(suite_reports):
    (ds,) = suite_reports["report"].datasets
    from caltrain.report.document import format_cell

    ece_col = next(c for c in ds.columns if c.key == "ece")
    row = ds.rows[0]
    text, value = format_cell(row, ece_col)
    assert value == row["ece_mean"] and text == f"{100 * row['ece_mean']:.2f} ± {100 * row['ece_std']:.2f}"


def test_markdown_report_writes_linked_svgs(suite_reports):
    out = suite_reports["md"]
    text = out.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 5 and "## Verdicts" in text
    for link in links:
        svg = (out.parent / link).read_text()
        assert svg.startswith('<svg class="plot" xmlns="http://www.w3.org/2000/svg"') and svg.endswith("</svg>")
    assert text.count("| ce |") == 1 and text.count("| ls |") == 1 and "```yaml" in text


def test_single_run_markdown_report_with_curvature(curvature_run, tmp_path):
    out = write_report(curvature_run, format="md", max_classes=2)
    assert out == curvature_run / "report.md"
    text = out.read_text()
    assert "ECE and Gauss-Newton sharpness against training steps" in text
    assert (curvature_run / "report_files").is_dir()
    assert text.count("| ce |") == 1 and "One objective: nothing to compare." in text


def test_missing_inputs_are_skipped_and_listed_in_the_caveats(run_dir, tmp_path):
    dst = tmp_path / "nologits"
    shutil.copytree(run_dir, dst)
    (dst / "logits_test.npz").unlink()
    report = build_report(dst)
    assert any(c.startswith("Left out") and "logits_test" in c for c in report.caveats)
    assert any(b.slug.endswith("learning-curves") for b in report.blocks)


def test_a_task_without_sections_gets_the_lead_only(run_dir, tmp_path):
    dst = tmp_path / "othertask"
    shutil.copytree(run_dir, dst)
    summary = json.loads((dst / "summary.json").read_text())
    summary["task"] = "some_future_task"
    (dst / "summary.json").write_text(json.dumps(summary))
    (ds,) = build_report(dst).datasets
    assert ds.task == "generic" and ds.sections == [] and ds.tradeoff and [c.key for c in ds.columns][:3] == \
        ["label", "accuracy", "ece"]


def test_a_registered_task_builds_its_own_sections(run_dir, tmp_path, monkeypatch):
    """The extension API: one TaskSections subclass, picked by summary["task"] or by its matches()."""
    from caltrain.report import tasks
    from caltrain.report.tasks import TASKS, Block, MetricInfo, Section, TaskSections

    class Dense(TaskSections):
        name = "dense_test"
        primary_metrics = ("mae_test", "ece")
        metric_info = {"mae_test": MetricInfo("MAE*", 1, 4, "low", "test metric")}

        @classmethod
        def matches(cls, run):
            return "mae_test" in run.summary.get("test", {})

        def sections(self, ctx):
            return [Section("Dense", [Block(slug=f"{ctx.slug}-dense", title="t", caption="c", body="<p>x</p>",
                                            kind="html")])]

    tasks._load()
    monkeypatch.setitem(TASKS._entries, "dense_test", Dense)
    dst = tmp_path / "dense"
    shutil.copytree(run_dir, dst)
    summary = json.loads((dst / "summary.json").read_text())
    summary["test"]["mae_test"] = 0.125
    summary.pop("task", None)  # a run written before summaries named their task: matches() decides
    (dst / "summary.json").write_text(json.dumps(summary))
    (ds,) = build_report(dst).datasets
    assert ds.task == "dense_test" and [s.title for s in ds.sections] == ["Dense"]
    assert [(c.key, c.header) for c in ds.columns][1:3] == [("mae_test", "MAE*"), ("ece", "ECE %")]
    summary["task"] = "dense_test"  # named by the run
    del summary["test"]["mae_test"]
    (dst / "summary.json").write_text(json.dumps(summary))
    assert build_report(dst).datasets[0].task == "dense_test"


def test_errors_name_the_argument(tmp_path, run_dir):
    with pytest.raises(ValueError, match="format"):
        write_report(run_dir, format="pdf")
    with pytest.raises(FileNotFoundError, match="path"):
        write_report(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="suite directory"):
        write_report(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(FileNotFoundError, match="no complete run"):
        write_report(tmp_path)


def test_matplotlib_is_imported_only_inside_functions():
    """No report module imports matplotlib (or mpl_toolkits) at module level, so ``import caltrain`` stays light.

    A static check of every module of the package (a subprocess import of torch would cost seconds).
    """
    import ast
    from pathlib import Path

    import caltrain.report

    for path in Path(caltrain.report.__file__).parent.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only; imports inside functions are fine
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("matplotlib", "mpl_toolkits") for n in names), (path, names)


def test_the_html_report_needs_no_matplotlib(suite_dir, tmp_path):
    """The report draws SVG itself: writing it never imports matplotlib (a subprocess, so other tests' imports
    do not count)."""
    import subprocess
    import sys

    code = ("import sys; from caltrain.report import write_report; "
            f"write_report({str(suite_dir)!r}, out={str(tmp_path / 'r.html')!r}); "
            "print(any(m.split('.')[0] == 'matplotlib' for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_best_cells_are_the_best_means_within_a_dataset():
    from caltrain.report.document import Column, best_cells

    columns = [Column("acc", "accuracy", better="high"), Column("ECE", "ece")]
    rows = [{"dataset": "a", "accuracy_mean": 0.9, "ece_mean": 0.05}, {"dataset": "a", "accuracy_mean": 0.8,
            "ece_mean": 0.02}, {"dataset": "b", "accuracy_mean": 0.5, "ece_mean": 0.3},
            {"dataset": "b", "accuracy_mean": 0.5, "ece_mean": 0.1}]
    best = best_cells(rows, columns)
    assert {(0, "accuracy"), (1, "ece"), (2, "accuracy"), (3, "accuracy"), (3, "ece")} == best


def test_html_marks_the_best_cells(suite_reports):
    text = suite_reports["html"].read_text()
    assert text.count("best") and len(re.findall(r'<td class="num best', text)) >= 8


def test_cells_carry_their_per_seed_values(suite_dir, suite_reports):
    from caltrain.report.document import Column, per_seed_values

    (ds,) = suite_reports["report"].datasets
    row = ds.rows[0]
    ece = per_seed_values(row, next(c for c in ds.columns if c.key == "ece"))
    assert [s for s, _ in ece] == [0, 1]
    assert sum(v for _, v in ece) / 2 == pytest.approx(row["ece_mean"])
    ts = per_seed_values(row, Column("TS ECE %", "ts_ece", 100))
    assert sum(v for _, v in ts) / 2 == pytest.approx(row["ts_ece_mean"])
    assert 'data-tip="ECE % per seed: seed 0: ' in suite_reports["html"].read_text()


def test_per_seed_values_of_a_calibrator_name_with_an_underscore():
    from caltrain.report.document import Column, per_seed_values

    row = {"per_seed": [{"seed": 3, "test": {"ece": 0.1}, "posthoc": {"vector_scaling": {"ece": 0.04}}}]}
    assert per_seed_values(row, Column("VS ECE %", "vector_scaling_ece", 100)) == [(3, 0.04)]
    assert per_seed_values(row, Column("ECE %", "ece", 100)) == [(3, 0.1)]
    assert per_seed_values({"per_seed": []}, Column("ECE %", "ece", 100)) == []


def test_a_dense_run_gets_a_report(tmp_path):
    """A dense binary run (no logits files; summary["task"] = "dense_binary", pooled-pixel and SOD keys): the lead
    is written with the task's own metrics and nothing assumes a classifier."""
    from caltrain.train import train
    from caltrain.train.config import build_config

    base = {"data": {"name": "synthetic_saliency", "options": {"n_train": 16, "n_val": 8, "n_test": 8, "size": 16},
                     "batch_size": 8, "eval_batch_size": 8},
            "model": {"name": "unet", "options": {"width": 4, "depth": 2}}, "epochs": 1, "quiet": True,
            "threads": 1, "eval": {"posthoc": ["ts"]}, "loss": {"name": "bce"}}
    run = tmp_path / "dense"
    summary = train(build_config(base=base, overrides=[]), run)
    assert summary["task"] == "dense_binary"
    out = write_report(run)
    (ds,) = build_report(run).datasets
    headers = {c.key: c.header for c in ds.columns}
    assert headers["s_measure"] == "S-measure" and headers["ts_ece"] == "TS ECE %" and "n_images" not in headers
    assert ds.tradeoff and not any("top-label" in c for c in build_report(run).caveats)
    assert "S-measure" in out.read_text()
