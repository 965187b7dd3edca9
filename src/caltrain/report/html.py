"""``render_html``: one self-contained HTML page (PNG figures as base64 data URIs, inline CSS and JS).

The page needs no network access: no external stylesheet, script, font or image. The results table sorts by a
column when its header is clicked (numbers by value, text alphabetically; click again to reverse); hovering a
mean ± std cell shows the per-seed values. An inline
script checks after ``load`` that every ``<img>`` decoded (``complete`` and ``naturalWidth > 0``) and records the
result on ``<body data-images-ok="true|false" data-images="n" data-js-errors="n">`` (uncaught script errors
counted by a handler installed first), which the browser test reads back.
"""

from __future__ import annotations

import base64
import html
import json

from caltrain.report.document import Report, best_cells, format_cell, per_seed_values

__all__ = ["render_html"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 1.5rem auto; max-width: 1200px;
       color: #222; padding: 0 1rem; }
h1 { font-size: 1.5rem; margin-bottom: .2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
.sub { color: #666; font-size: .85rem; }
table.results { border-collapse: collapse; font-size: .85rem; margin: 1rem 0; }
table.results th, table.results td { border: 1px solid #ccc; padding: .25rem .5rem; text-align: right; }
table.results td.text, table.results th.text { text-align: left; }
table.results th { background: #f3f3f3; cursor: pointer; user-select: none; white-space: nowrap; }
table.results td { white-space: nowrap; }
table.results th.sorted-asc::after { content: " \\25B2"; } table.results th.sorted-desc::after { content: " \\25BC"; }
table.results tr:nth-child(even) td { background: #fafafa; }
table.results td.best { font-weight: bold; }
.scroll { overflow-x: auto; }
figure { margin: 1rem 0 2rem; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: .85rem; color: #444; margin-top: .3rem; }
details { margin: .3rem 0; } summary { cursor: pointer; font-family: monospace; }
pre { background: #f7f7f7; padding: .5rem; overflow-x: auto; font-size: .8rem; }
ul.caveats li { margin: .3rem 0; font-size: .9rem; }
"""

#: Runs first (in <head>): counts uncaught errors so a test can read them back from the DOM.
_ERROR_JS = """
window.__reportErrors = [];
window.addEventListener('error', function (e) { window.__reportErrors.push(String(e.message)); });
"""

_JS = """
(function () {
  function cellValue(td) {
    var v = td.getAttribute('data-sort');
    if (v === null || v === '') return null;
    var x = Number(v);
    return isNaN(x) ? v.toLowerCase() : x;
  }
  function sortTable(table, col, th) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = !th.classList.contains('sorted-asc');
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.classList.remove('sorted-asc', 'sorted-desc');
    });
    th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
    rows.sort(function (a, b) {
      var x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
      if (x === y) return 0;
      if (x === null) return 1;
      if (y === null) return -1;
      return (x < y ? -1 : 1) * (asc ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('table.results').forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.addEventListener('click', function () { sortTable(table, i, th); });
    });
  });
  window.addEventListener('load', function () {
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.every(function (img) { return img.complete && img.naturalWidth > 0; });
    document.body.setAttribute('data-images', String(imgs.length));
    document.body.setAttribute('data-images-ok', ok ? 'true' : 'false');
    document.body.setAttribute('data-js-errors', String(window.__reportErrors.length));
  });
})();
"""


_NUMERIC = ("n_seeds", "ece_curve_std")


def _table(report: Report) -> str:
    head = "".join(
        f'<th class="{"num" if c.stat or c.key in _NUMERIC else "text"}" title="click to sort">'
        f"{html.escape(c.header)}</th>" for c in report.columns
    )
    body = []
    best = best_cells(report.rows, report.columns)
    for i, row in enumerate(report.rows):
        cells = []
        for c in report.columns:
            text, sort = format_cell(row, c)
            cls = ("num" if isinstance(sort, (int, float)) else "text") + (" best" if (i, c.key) in best else "")
            sort_attr = "" if sort is None else html.escape(str(sort), quote=True)
            seeds = per_seed_values(row, c)
            title = ""
            if seeds:
                tip = ", ".join(f"seed {s}: {v * c.scale:.{c.digits + 1}f}" for s, v in seeds)
                title = f' title="{html.escape(tip, quote=True)}"'
            cells.append(f'<td class="{cls}" data-sort="{sort_attr}"{title}>{html.escape(text)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="results" id="results"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style><script>{_ERROR_JS}</script></head><body>",
        f"<h1>{html.escape(report.title)}</h1>", f'<p class="sub">{html.escape(report.subtitle)}</p>',
        "<h2>Results</h2>", '<div class="scroll">' + _table(report) + "</div>",
    ]
    for heading, figures in report.sections.items():
        parts.append(f"<h2>Plots: {html.escape(heading)}</h2>")
        for fig in figures:
            data = base64.b64encode(fig.png).decode("ascii")
            caption = html.escape(fig.caption, quote=True)
            parts.append(f'<figure id="{html.escape(fig.slug, quote=True)}"><img alt="{caption}" '
                         f'src="data:image/png;base64,{data}"><figcaption>{caption}</figcaption></figure>')
    parts.append("<h2>Caveats</h2><ul class=\"caveats\">")
    parts.extend(f"<li>{html.escape(c)}</li>" for c in report.caveats)
    parts.append("</ul><h2>Run configurations</h2>")
    for cfg in report.configs:
        parts.append(f"<details><summary>{html.escape(cfg.name)}</summary><p>config.yaml</p>"
                     f"<pre>{html.escape(cfg.config_text)}</pre><p>summary.json</p>"
                     f"<pre>{html.escape(cfg.summary_text)}</pre></details>")
    parts.append(f"<script>{_JS}</script>")
    parts.append(f"<script type=\"application/json\" id=\"report-meta\">"
                 f"{json.dumps({'rows': len(report.rows), 'figures': len(report.figures)})}</script>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
