"""``render_html``: one self-contained HTML page (inline SVG figures, inline CSS and JS, nothing fetched).

Layout, for a reader who came for the answer:

1. **first screen**: one verdict per dataset (best calibrated objective at no accuracy cost, by how much, with
   its interval; the definitions fold out beneath), then per dataset (tabs when there are several) the results
   table (the task's primary metrics and the calibration error after each calibrator; the other keys behind
   "columns") beside the accuracy-vs-ECE trade-off (a switch for uncalibrated / after each calibrator);
2. one folded ``<details>`` section per dataset with the task's sections (small multiples, reliability
   diagrams for the objectives the reader picks, ...);
3. the conventions and caveats, and each run's configuration (folded).

Interactions (inline script, no network): sort the table by a header; switch table columns on and off; hover a
table row to highlight that objective in the trade-off plot; hover a mark or a cell for its values (``data-tip``
and the per-seed values of a cell); pick the objectives whose reliability diagrams are shown. After ``load``
the script checks that every ``<img>`` decoded and every ``<svg class="plot">`` was parsed as SVG with a size
and a title, and drawn with a non-empty box where it is displayed (a folded one is not laid out), and
records it on ``<body data-images data-images-ok data-figures data-figures-ok data-js-errors>`` (uncaught
errors are counted by a handler installed first), which the browser test reads back.
"""

from __future__ import annotations

import html
import json

from caltrain.report.document import DatasetReport, Report, best_cells, format_cell, per_seed_values
from caltrain.report.tasks import Block, Section

__all__ = ["render_html"]

_CSS = """
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1380px;
       color: #222; padding: .6rem 1rem 2rem; font-size: 14px; }
h1 { font-size: 1.3rem; margin: 0; } h2 { font-size: 1.15rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem;
     margin-top: 1.6rem; } h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
.sub { color: #666; font-size: .78rem; margin: .1rem 0 .4rem; }
.verdicts { background: #f5f8fc; border: 1px solid #d9e3f0; border-radius: 6px; padding: .35rem .7rem; }
.verdicts p { margin: .25rem 0; font-size: .86rem; line-height: 1.3; }
.verdicts details { font-size: .78rem; color: #444; } .verdicts details ul { margin: .2rem 0; padding-left: 1.2rem; }
.tabs { margin: .5rem 0 .3rem; display: flex; gap: .3rem; flex-wrap: wrap; }
.tabs button { border: 1px solid #bbb; background: #f4f4f4; padding: .2rem .8rem; border-radius: 4px; cursor: pointer;
               font-size: .85rem; }
.tabs button.active { background: #1f77b4; color: white; border-color: #1f77b4; }
.lead { display: flex; gap: 14px; align-items: flex-start; flex-wrap: wrap; }
.lead[hidden] { display: none; }
.lead-table { flex: 1 1 700px; min-width: 0; }
.lead-plot { flex: 0 1 470px; min-width: 0; }
.tools { display: flex; justify-content: space-between; align-items: baseline; gap: 1rem; }
.tools details { font-size: .78rem; position: relative; } .tools summary { cursor: pointer; color: #1f5f99; }
.tools .cols { position: absolute; right: 0; z-index: 5; background: white; border: 1px solid #ccc; padding: .4rem;
               width: 520px; columns: 3; box-shadow: 0 2px 8px rgba(0,0,0,.15); }
.tools .cols label { display: block; white-space: nowrap; }
table.results { border-collapse: collapse; font-size: .8rem; margin: .2rem 0; width: 100%; }
table.results th, table.results td { border-bottom: 1px solid #e2e2e2; padding: .16rem .35rem; text-align: right; }
table.results td.text, table.results th.text { text-align: left; }
table.results th { background: #f3f3f3; cursor: pointer; user-select: none; font-weight: 600; font-size: .75rem;
                   vertical-align: bottom; }
table.results td { white-space: nowrap; }
table.results td small { color: #888; font-size: .68rem; display: block; line-height: 1; }
table.results td { line-height: 1.15; }
table.results th.sorted-asc::after { content: " \\25B2"; } table.results th.sorted-desc::after { content: " \\25BC"; }
table.results td.best { font-weight: 700; background: #e6f2e6; }
table.results tr:hover td { background: #fff6d8; }
table.results .off { display: none; }
.swatch { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .3rem;
          vertical-align: -1px; }
.views { font-size: .8rem; margin-bottom: .2rem; } .views label { margin-right: .6rem; cursor: pointer; }
figure { margin: .4rem 0 1rem; } figure[hidden] { display: none; }
svg.plot { max-width: 100%; height: auto; display: block; }
svg.plot .mark, svg.plot [data-tip] { cursor: default; }
svg.plot.focus [data-objective] { opacity: .18; } svg.plot.focus [data-objective].hl { opacity: 1; }
figcaption { font-size: .8rem; color: #444; margin-top: .2rem; max-width: 1100px; }
details.dataset { border: 1px solid #ddd; border-radius: 6px; margin: .6rem 0; padding: .2rem .8rem; }
details.dataset > summary { cursor: pointer; font-size: 1.05rem; font-weight: 600; padding: .3rem 0; }
details.dataset > summary span { font-weight: normal; color: #666; font-size: .85rem; }
.picker { font-size: .82rem; margin: .3rem 0 .5rem; display: flex; flex-wrap: wrap; gap: .2rem .8rem; }
.picker label { cursor: pointer; white-space: nowrap; }
table.heat { border-collapse: collapse; font-size: .78rem; } table.heat td, table.heat th { padding: .15rem .4rem;
             border: 1px solid #eee; text-align: right; } table.heat th.text { text-align: left; }
details.run { margin: .2rem 0; } details.run summary { cursor: pointer; font-family: monospace; }
pre { background: #f7f7f7; padding: .5rem; overflow-x: auto; font-size: .75rem; max-height: 30rem; }
ul.caveats li { margin: .3rem 0; font-size: .85rem; }
#tip { position: fixed; pointer-events: none; background: rgba(30,30,30,.92); color: white; font-size: .75rem;
       padding: .25rem .45rem; border-radius: 4px; max-width: 420px; z-index: 10; display: none; }
"""

#: Runs first (in <head>): counts uncaught errors so a test can read them back from the DOM.
_ERROR_JS = """
window.__reportErrors = [];
window.addEventListener('error', function (e) { window.__reportErrors.push(String(e.message)); });
"""

_JS = """
(function () {
  function all(sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); }
  function cellValue(td) {
    var v = td.getAttribute('data-sort');
    if (v === null || v === '') return null;
    var x = Number(v);
    return isNaN(x) ? v.toLowerCase() : x;
  }
  function sortTable(table, col, th) {
    var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    var asc = !th.classList.contains('sorted-asc');
    all('th', table.tHead).forEach(function (h) { h.classList.remove('sorted-asc', 'sorted-desc'); });
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
  all('table.results').forEach(function (table) {
    all('th', table.tHead).forEach(function (th, i) {
      th.addEventListener('click', function () { sortTable(table, i, th); });
    });
  });
  all('.tabs button').forEach(function (b) {
    b.addEventListener('click', function () {
      all('.tabs button').forEach(function (o) { o.classList.toggle('active', o === b); });
      var name = b.getAttribute('data-dataset');
      all('.lead').forEach(function (l) { l.hidden = l.getAttribute('data-dataset') !== name; });
    });
  });
  all('input.col').forEach(function (box) {
    box.addEventListener('change', function () {
      var lead = box.closest('.lead');
      all('[data-col="' + box.value + '"]', lead).forEach(function (c) { c.classList.toggle('off', !box.checked); });
    });
  });
  all('input.view').forEach(function (radio) {
    radio.addEventListener('change', function () {
      var plot = radio.closest('.lead-plot');
      all('figure[data-view]', plot).forEach(function (f) { f.hidden = f.getAttribute('data-view') !== radio.value; });
    });
  });
  all('.picker-scope').forEach(function (scope) {
    function update() {
      var on = {};
      all('input.pick', scope).forEach(function (b) { on[b.value] = b.checked; });
      all('figure[data-objective]', scope).forEach(function (f) { f.hidden = !on[f.getAttribute('data-objective')]; });
    }
    all('input.pick', scope).forEach(function (b) { b.addEventListener('change', update); });
    all('button.pick-all', scope).forEach(function (b) {
      b.addEventListener('click', function () {
        var value = b.getAttribute('data-value') === 'all';
        all('input.pick', scope).forEach(function (x) { x.checked = value; });
        update();
      });
    });
  });
  all('table.results tbody tr').forEach(function (tr) {
    var obj = tr.getAttribute('data-objective'), lead = tr.closest('.lead');
    tr.addEventListener('mouseenter', function () {
      all('.lead-plot svg.plot', lead).forEach(function (svg) {
        svg.classList.add('focus');
        all('[data-objective]', svg).forEach(function (m) {
          m.classList.toggle('hl', m.getAttribute('data-objective') === obj);
        });
      });
    });
    tr.addEventListener('mouseleave', function () {
      all('.lead-plot svg.plot', lead).forEach(function (svg) { svg.classList.remove('focus'); });
    });
  });
  var tip = document.getElementById('tip');
  document.addEventListener('mouseover', function (e) {
    var el = e.target.closest ? e.target.closest('[data-tip]') : null;
    if (!el) { tip.style.display = 'none'; return; }
    tip.textContent = el.getAttribute('data-tip');
    tip.style.display = 'block';
  });
  document.addEventListener('mousemove', function (e) {
    if (tip.style.display === 'block') {
      var x = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 4);
      tip.style.left = x + 'px'; tip.style.top = (e.clientY + 14) + 'px';
    }
  });
  window.addEventListener('load', function () {
    var imgs = Array.prototype.slice.call(document.images);
    var ok = imgs.every(function (img) { return img.complete && img.naturalWidth > 0; });
    var svgs = all('svg.plot');
    var svgOk = svgs.every(function (s) {  // parsed as SVG, sized; drawn with a non-empty box where displayed
      if (!(s instanceof SVGSVGElement) || !(s.viewBox.baseVal.width > 0)) return false;
      if (!s.querySelector('text.title')) return false;
      if (s.getClientRects().length === 0) return true;  // in a folded section or not picked: not laid out
      try { var b = s.getBBox(); return b.width > 0 && b.height > 0; } catch (err) { return false; }
    });
    document.body.setAttribute('data-images', String(imgs.length));
    document.body.setAttribute('data-images-ok', ok ? 'true' : 'false');
    document.body.setAttribute('data-figures', String(svgs.length));
    document.body.setAttribute('data-figures-ok', svgOk ? 'true' : 'false');
    document.body.setAttribute('data-js-errors', String(window.__reportErrors.length));
  });
})();
"""

_NUMERIC = ("n_seeds", "ece_curve_std")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(ds: DatasetReport) -> str:
    head = []
    for c in ds.columns:
        cls = ("num" if c.stat or c.key in _NUMERIC else "text") + ("" if c.visible else " off")
        tip = f"{c.description}; click to sort" if c.description else "click to sort"
        head.append(f'<th class="{cls}" data-col="{_e(c.key)}" title="{_e(tip)}">{_e(c.header)}</th>')
    body = []
    best = best_cells(ds.rows, ds.columns)
    for i, row in enumerate(ds.rows):
        cells = []
        for c in ds.columns:
            text, sort = format_cell(row, c)
            cls = ("num" if isinstance(sort, (int, float)) else "text") + (" best" if (i, c.key) in best else "")
            cls += "" if c.visible else " off"
            sort_attr = "" if sort is None else _e(sort)
            seeds = per_seed_values(row, c)
            title = ""
            if seeds:
                tip = ", ".join(f"seed {s}: {v * c.scale:.{c.digits + 1}f}" for s, v in seeds)
                title = f' data-tip="{_e(c.header + " per seed: " + tip)}"'
            if c.key == "label":
                inner = f'<span class="swatch" style="background:{ds.colours.get(text, "#999")}"></span>{_e(text)}'
            elif " ± " in text:
                mean, std = text.split(" ± ")
                inner = f"{_e(mean)}<small>±{_e(std)}</small>"
            else:
                inner = _e(text)
            cells.append(f'<td class="{cls}" data-col="{_e(c.key)}" data-sort="{sort_attr}"{title}>{inner}</td>')
        body.append(f'<tr data-objective="{_e(row.get("label", ""))}">' + "".join(cells) + "</tr>")
    return (f'<table class="results" id="results-{ds.slug}"><thead><tr>{"".join(head)}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _columns_menu(ds: DatasetReport) -> str:
    boxes = "".join(f'<label title="{_e(c.description)}"><input type="checkbox" class="col" value="{_e(c.key)}"'
                    f'{" checked" if c.visible else ""}> {_e(c.header)}</label>'
                    for c in ds.columns if c.key != "label")
    return f'<details><summary>columns ({len(ds.columns) - 1})</summary><div class="cols">{boxes}</div></details>'


def _figure(block: Block, *, extra: str = "", hidden: bool = False) -> str:
    body = block.body
    return (f'<figure id="{_e(block.slug)}"{extra}{" hidden" if hidden else ""}>{body}'
            f"<figcaption>{_e(block.caption)}</figcaption></figure>")


def _lead(ds: DatasetReport, hidden: bool) -> str:
    views = ""
    if len(ds.tradeoff) > 1:
        views = '<div class="views">' + "".join(
            f'<label><input type="radio" class="view" name="view-{ds.slug}" value="{i}"{" checked" if i == 0 else ""}>'
            f" {_e(b.title.split(', ')[-1])}</label>" for i, b in enumerate(ds.tradeoff)) + "</div>"
    plots = "".join(_figure(b, extra=f' data-view="{i}"', hidden=i > 0) for i, b in enumerate(ds.tradeoff))
    return (f'<div class="lead" data-dataset="{_e(ds.name)}" id="lead-{ds.slug}"{" hidden" if hidden else ""}>'
            f'<div class="lead-table"><div class="tools"><p class="sub"><b>{_e(ds.name)}</b> · {_e(ds.subtitle)} · '
            f"mean ± std over seeds; bold = best of the column</p>{_columns_menu(ds)}</div>{_table(ds)}</div>"
            f'<div class="lead-plot">{views}{plots}</div></div>')


def _section(section: Section) -> str:
    scope = ' class="picker-scope"' if section.picker else ""
    parts = [f"<section{scope}><h3>{_e(section.title)}</h3>"]
    if section.intro:
        parts.append(f'<p class="sub">{_e(section.intro)}</p>')
    if section.picker:
        boxes = "".join(f'<label><input type="checkbox" class="pick" value="{_e(o)}"'
                        f'{" checked" if o in section.picked else ""}> {_e(o)}</label>' for o in section.picker)
        parts.append(f'<div class="picker">compare: {boxes}<button class="pick-all" data-value="all">all</button>'
                     f'<button class="pick-all" data-value="none">none</button></div>')
    for block in section.blocks:
        extra = f' data-objective="{_e(block.objective)}"' if block.objective is not None else ""
        hidden = bool(section.picker) and block.objective is not None and block.objective not in section.picked
        parts.append(_figure(block, extra=extra, hidden=hidden))
    parts.append("</section>")
    return "".join(parts)


def render_html(report: Report) -> str:
    """The report as one self-contained HTML document (module docstring)."""
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(report.title)}</title><style>{_CSS}</style><script>{_ERROR_JS}</script></head><body>",
        f"<header><h1>{_e(report.title)}</h1><p class=\"sub\">{_e(report.subtitle)}</p></header>",
        '<section class="verdicts" id="verdicts">',
    ]
    for ds in report.datasets:
        parts.append(f'<p data-dataset="{_e(ds.name)}"><b>{_e(ds.name)}</b>: {_e(ds.verdict_text)}</p>')
    if report.definitions:
        parts.append("<details><summary>how the verdict is computed</summary><ul>"
                     + "".join(f"<li>{_e(d)}</li>" for d in report.definitions) + "</ul></details>")
    parts.append("</section>")
    if len(report.datasets) > 1:
        active = ' class="active"'
        parts.append('<nav class="tabs">' + "".join(
            f'<button data-dataset="{_e(d.name)}"{active if i == 0 else ""}>{_e(d.name)}</button>'
            for i, d in enumerate(report.datasets)) + "</nav>")
    parts.extend(_lead(ds, hidden=i > 0) for i, ds in enumerate(report.datasets))
    parts.append("<h2>Per dataset</h2>")
    for ds in report.datasets:
        parts.append(f'<details class="dataset" id="sec-{ds.slug}"><summary>{_e(ds.name)} '
                     f"<span>{_e(ds.subtitle)} · {len(ds.sections)} sections</span></summary>")
        parts.extend(_section(s) for s in ds.sections)
        if not ds.sections:
            parts.append('<p class="sub">No sections for this task.</p>')
        parts.append("</details>")
    parts.append('<h2>Conventions and caveats</h2><ul class="caveats">')
    parts.extend(f"<li>{_e(c)}</li>" for c in report.caveats)
    parts.append(f"</ul><details><summary>Run configurations ({len(report.configs)})</summary>")
    for cfg in report.configs:
        parts.append(f'<details class="run"><summary>{_e(cfg.name)}</summary><p>config.yaml</p>'
                     f"<pre>{_e(cfg.config_text)}</pre><p>summary.json</p>"
                     f"<pre>{_e(cfg.summary_text)}</pre></details>")
    parts.append("</details>")
    parts.append('<div id="tip"></div>')
    parts.append(f"<script>{_JS}</script>")
    meta = {"datasets": [d.name for d in report.datasets], "rows": len(report.rows), "figures": len(report.blocks)}
    parts.append(f'<script type="application/json" id="report-meta">{json.dumps(meta)}</script>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
