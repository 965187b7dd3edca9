"""write_report: HTML self-contained, one table row per objective, Markdown with PNG files, single runs, errors."""

from __future__ import annotations

import base64
import re

import pytest

from caltrain.report import write_report
from caltrain.report.document import build_report


def test_html_is_self_contained_with_one_row_per_objective(suite_reports):
    text = suite_reports["html"].read_text()
    body = text[text.index("<tbody>"):text.index("</tbody>")]
    assert body.count("<tr>") == 2 and ">ce<" in body and ">ls<" in body
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", text)  # nothing fetched: no external src/href
    assert "http://" not in text and "https://" not in text and "<link" not in text
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == text.count("<img") >= 7
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in images)
    for needle in ("equal-width bins", "Caveats", "config.yaml", "synthetic__ls__seed1", "after ts",
                   "data-images-ok", "sample standard deviation"):
        assert needle in text


def test_report_document_sections_and_cells(suite_reports):
    report = suite_reports["report"]
    slugs = [f.slug for f in report.figures]
    for part in ("tradeoff", "learning-curves", "reliability", "smooth-reliability", "risk-coverage",
                 "classwise-synthetic__ce__seed0", "classwise-synthetic__ls__seed0"):
        assert any(s.endswith(part) for s in slugs), part
    assert [c.name for c in report.configs] == [f"synthetic__{o}__seed{s}" for o in ("ce", "ls") for s in (0, 1)]
    headers = [c.header for c in report.columns]
    assert "TS ECE %" in headers and "ECE %" in headers
    from caltrain.report.document import format_cell

    ece_col = report.columns[headers.index("ECE %")]
    row = report.rows[0]
    text, value = format_cell(row, ece_col)
    assert value == row["ece_mean"] and text == f"{100 * row['ece_mean']:.2f} ± {100 * row['ece_std']:.2f}"


def test_markdown_report_writes_linked_pngs(suite_reports):
    out = suite_reports["md"]
    text = out.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) >= 7
    for link in links:
        png = out.parent / link
        assert png.read_bytes()[:4] == b"\x89PNG"
    assert text.count("| synthetic | mlp |") == 2 and "```yaml" in text


def test_single_run_markdown_report_with_curvature(curvature_run, tmp_path):
    out = write_report(curvature_run, format="md", max_classes=2, dpi=40)
    assert out == curvature_run / "report.md"
    text = out.read_text()
    assert "Gauss-Newton sharpness (right axis) against training steps" in text
    assert (curvature_run / "report_files").is_dir()
    assert text.count("| synthetic | mlp | ce |") == 1


def test_missing_inputs_are_skipped_and_listed_in_the_caveats(run_dir, tmp_path):
    import shutil

    dst = tmp_path / "nologits"
    shutil.copytree(run_dir, dst)
    (dst / "logits_test.npz").unlink()
    report = build_report(dst)
    assert any("Figure skipped" in c and "logits_test" in c for c in report.caveats)
    assert any(f.slug.endswith("learning-curves") for f in report.figures)


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

    for path in Path(caltrain.report.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only; imports inside functions are fine
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("matplotlib", "mpl_toolkits") for n in names), (path, names)


def test_best_cells_are_the_best_means_within_a_dataset():
    from caltrain.report.document import TABLE_COLUMNS, best_cells

    rows = [{"dataset": "a", "accuracy_mean": 0.9, "ece_mean": 0.05}, {"dataset": "a", "accuracy_mean": 0.8,
            "ece_mean": 0.02}, {"dataset": "b", "accuracy_mean": 0.5, "ece_mean": 0.3},
            {"dataset": "b", "accuracy_mean": 0.5, "ece_mean": 0.1}]
    best = best_cells(rows, list(TABLE_COLUMNS))
    assert {(0, "accuracy"), (1, "ece"), (2, "accuracy"), (3, "accuracy"), (3, "ece")} == best


def test_html_marks_the_best_cells(suite_reports):
    text = suite_reports["html"].read_text()
    assert text.count('class="num best"') >= 8  # one or two objectives best in each ranked column


def test_cells_carry_their_per_seed_values(suite_dir, suite_reports):
    import json

    from caltrain.report.document import TABLE_COLUMNS, Column, per_seed_values

    row = json.loads((suite_dir / "results.json").read_text())["rows"][0]
    ece = per_seed_values(row, next(c for c in TABLE_COLUMNS if c.key == "ece"))
    assert [s for s, _ in ece] == [0, 1]
    assert sum(v for _, v in ece) / 2 == pytest.approx(row["ece_mean"])
    ts = per_seed_values(row, Column("TS ECE %", "ts_ece", 100))
    assert sum(v for _, v in ts) / 2 == pytest.approx(row["ts_ece_mean"])
    assert 'title="seed 0: ' in suite_reports["html"].read_text()


def test_per_seed_values_of_a_calibrator_name_with_an_underscore():
    from caltrain.report.document import Column, per_seed_values

    row = {"per_seed": [{"seed": 3, "test": {"ece": 0.1}, "posthoc": {"vector_scaling": {"ece": 0.04}}}]}
    assert per_seed_values(row, Column("VS ECE %", "vector_scaling_ece", 100)) == [(3, 0.04)]
    assert per_seed_values(row, Column("ECE %", "ece", 100)) == [(3, 0.1)]
    assert per_seed_values({"per_seed": []}, Column("ECE %", "ece", 100)) == []
