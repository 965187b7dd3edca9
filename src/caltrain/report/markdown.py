"""``render_markdown``: the report as Markdown, its figures as SVG files in a folder beside it.

The figures are written to ``<files_dir>/<slug>.svg`` (stand-alone SVG, :func:`caltrain.report.svg.as_file`)
and linked with relative paths, so the Markdown file and its folder can be moved together (e.g. committed to a
repository, where the SVGs render). HTML-only blocks (the per-class ECE table) are inlined; every objective's
reliability diagrams are included (there is no picker in a static page).
"""

from __future__ import annotations

import os
from pathlib import Path

from caltrain.report.document import DatasetReport, Report, best_cells, format_cell
from caltrain.report.svg import as_file
from caltrain.utils.io import atomic_write_text

__all__ = ["render_markdown"]


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(ds: DatasetReport) -> list[str]:
    columns = [c for c in ds.columns if c.visible]
    lines = ["| " + " | ".join(_escape(c.header) for c in columns) + " |", "|" + "---|" * len(columns)]
    best = best_cells(ds.rows, columns)
    for i, row in enumerate(ds.rows):
        cells = []
        for c in columns:
            text = _escape(format_cell(row, c)[0])
            cells.append(f"**{text}**" if (i, c.key) in best else text)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def render_markdown(report: Report, *, out: str | Path, files_dir: str | Path) -> str:
    """The report's Markdown text for a file at ``out``; writes its SVG figures into ``files_dir``."""
    out, files_dir = Path(out), Path(files_dir)
    files_dir.mkdir(parents=True, exist_ok=True)

    def figure(block) -> list[str]:
        if block.kind != "svg":
            return [block.body, "", f"*{_escape(block.caption)}*", ""]
        path = files_dir / f"{block.slug}.svg"
        atomic_write_text(path, as_file(block.body))
        rel = Path(os.path.relpath(path, out.parent)).as_posix()
        return [f"![{_escape(block.title)}]({rel})", "", f"*{_escape(block.caption)}*", ""]

    lines = [f"# {report.title}", "", f"_{report.subtitle}_", "", "## Verdicts", ""]
    lines += [f"- **{ds.name}**: {ds.verdict_text}" for ds in report.datasets] + [""]
    lines += [f"> - {d}" for d in report.definitions] + [""]
    for ds in report.datasets:
        lines += [f"## {ds.name}", "", f"_{ds.subtitle}; mean ± std over seeds, bold = best of the column_", ""]
        lines += _table(ds) + [""]
        for block in ds.tradeoff:
            lines += figure(block)
        for section in ds.sections:
            lines += [f"### {section.title}", ""]
            for block in section.blocks:
                lines += figure(block)
    lines += ["## Conventions and caveats", ""] + [f"- {c}" for c in report.caveats] + ["", "## Run configurations", ""]
    for cfg in report.configs:
        lines += [f"<details><summary>{cfg.name}</summary>", "", "```yaml", cfg.config_text.rstrip(), "```", "",
                  "```json", cfg.summary_text.rstrip(), "```", "", "</details>", ""]
    return "\n".join(lines) + "\n"
