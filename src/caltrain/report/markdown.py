"""``render_markdown``: the report as Markdown, its figures as PNG files in a folder beside it.

The figures are written to ``<files_dir>/<slug>.png`` and linked with relative paths, so the Markdown file and its
folder can be moved together (e.g. committed to a repository or attached to an issue).
"""

from __future__ import annotations

import os
from pathlib import Path

from caltrain.report.document import Report, best_cells, format_cell
from caltrain.utils.io import atomic_write_bytes

__all__ = ["render_markdown"]


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report, *, out: str | Path, files_dir: str | Path) -> str:
    """The report's Markdown text for a file at ``out``; writes its PNGs into ``files_dir``."""
    out, files_dir = Path(out), Path(files_dir)
    files_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# {report.title}", "", f"_{report.subtitle}_", "", "## Results", ""]
    lines.append("| " + " | ".join(_escape(c.header) for c in report.columns) + " |")
    lines.append("|" + "---|" * len(report.columns))
    best = best_cells(report.rows, report.columns)
    for i, row in enumerate(report.rows):
        cells = []
        for c in report.columns:
            text = _escape(format_cell(row, c)[0])
            cells.append(f"**{text}**" if (i, c.key) in best else text)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for heading, figures in report.sections.items():
        lines += [f"## Plots: {heading}", ""]
        for fig in figures:
            png = files_dir / f"{fig.slug}.png"
            atomic_write_bytes(png, fig.png)
            rel = Path(os.path.relpath(png, out.parent)).as_posix()
            lines += [f"![{_escape(fig.caption)}]({rel})", "", f"*{fig.caption}*", ""]
    lines += ["## Caveats", ""] + [f"- {c}" for c in report.caveats] + ["", "## Run configurations", ""]
    for cfg in report.configs:
        lines += [f"<details><summary>{cfg.name}</summary>", "", "```yaml", cfg.config_text.rstrip(), "```", "",
                  "```json", cfg.summary_text.rstrip(), "```", "", "</details>", ""]
    return "\n".join(lines) + "\n"
