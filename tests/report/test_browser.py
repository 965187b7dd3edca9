"""The HTML report in headless Chromium: no console errors, every figure drawn, the lead on the first screen at
1400 x 900 px, no horizontal scroll, every figure titled, labelled and with a legend, the table sorts, the picker
shows and hides reliability diagrams; screenshots saved under the pytest tmp dir. Skipped when no Chromium is
installed (CI installs the Debian ``chromium`` package; nothing is installed at test time)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="headless Chromium not installed (apt-get install chromium)")
FLAGS = ["--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions"]
WINDOW = "--window-size=1400,900"


def _chromium(*args, tmp_path):
    profile = tmp_path / "profile"
    return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)


def _body_attrs(dom: str) -> dict[str, str]:
    body = re.search(r"<body([^>]*)>", dom)
    assert body, dom[:500]
    return dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))


def _probe(page_text: str, script: str, tmp_path, name: str = "probe.html") -> dict:
    """Append ``script`` (run after load; it stores a JSON-able object in ``window.__probe``) to a copy of the
    page, load it at 1400 x 900 and return that object."""
    probe = ("<script>window.addEventListener('load', function () { setTimeout(function () {"
             f"{script}; document.body.setAttribute('data-probe', JSON.stringify(window.__probe));"
             "}, 0); });</script></body>")
    page = tmp_path / name
    page.write_text(page_text.replace("</body>", probe))
    dom = _chromium(WINDOW, "--virtual-time-budget=8000", "--dump-dom", page.resolve().as_uri(), tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    attrs = _body_attrs(dom.stdout)
    assert "data-probe" in attrs, dom.stdout[:300]
    import html

    return json.loads(html.unescape(attrs["data-probe"]))


def test_report_opens_in_headless_chromium(suite_reports, tmp_path):
    page = suite_reports["html"].resolve().as_uri()
    dom = _chromium("--enable-logging=stderr", "--v=0", WINDOW, "--virtual-time-budget=10000", "--dump-dom", page,
                    tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    attrs = _body_attrs(dom.stdout)
    text = suite_reports["html"].read_text()
    assert attrs.get("data-images-ok") == "true" and attrs.get("data-images") == str(text.count("<img"))
    assert attrs.get("data-figures-ok") == "true" and attrs.get("data-figures") == str(text.count('<svg class="plot"'))
    assert int(attrs["data-figures"]) >= 6
    assert attrs.get("data-js-errors") == "0", attrs
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    tbody = dom.stdout[dom.stdout.index("<tbody>"):dom.stdout.index("</tbody>")]
    assert len(re.findall(r"<tr .*?</tr>", tbody, flags=re.S)) == 2  # one row per objective

    first = tmp_path / "report-first-screen.png"
    run = _chromium(f"--screenshot={first}", WINDOW, "--virtual-time-budget=5000", page, tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert first.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and first.stat().st_size > 20_000
    opened = tmp_path / "open.html"  # every dataset section unfolded, for a look at the figures
    opened.write_text(text.replace('<details class="dataset"', '<details class="dataset" open'))
    full = tmp_path / "report-sections.png"
    _chromium(f"--screenshot={full}", "--window-size=1400,4000", "--virtual-time-budget=5000",
              opened.resolve().as_uri(), tmp_path=tmp_path)
    print(f"report screenshots: {first} {full}")


_LAYOUT = """
var vh = window.innerHeight, vw = window.innerWidth;
var lead = document.querySelector('.lead:not([hidden])');
var table = lead.querySelector('table.results'), plot = lead.querySelector('.lead-plot svg.plot');
var tr = table.getBoundingClientRect(), pr = plot.getBoundingClientRect();
var tables = Array.prototype.map.call(document.querySelectorAll('table'), function (t) {
  return t.offsetParent === null ? 0 : t.scrollWidth - t.parentElement.clientWidth; });
var figures = Array.prototype.map.call(document.querySelectorAll('svg.plot'), function (s) {
  var t = s.querySelector('text.title'), items = s.querySelectorAll('g.legend .legend-item text');
  return {title: t ? t.textContent : '', xlabels: s.querySelectorAll('text.xlabel').length,
          ylabels: s.querySelectorAll('text.ylabel').length,
          legend: Array.prototype.map.call(items, function (x) { return x.textContent; })};
});
document.querySelectorAll('details').forEach(function (d) { d.open = true; });  // then unfold everything
document.querySelectorAll('[hidden]').forEach(function (e) { e.hidden = false; });
var empty = Array.prototype.filter.call(document.querySelectorAll('svg.plot'), function (s) {
  var r = s.getBoundingClientRect(), b = s.getBBox(); return !(r.width > 0 && r.height > 0 && b.width > 0); }).length;
window.__probe = {vh: vh, vw: vw, empty: empty, table: [tr.top, tr.bottom, tr.right],
                  plot: [pr.top, pr.bottom, pr.right],
                  scrollWidth: document.documentElement.scrollWidth, tables: tables, figures: figures};
"""


def test_first_screen_holds_the_table_and_the_tradeoff_without_horizontal_scroll(suite_reports, tmp_path):
    got = _probe(suite_reports["html"].read_text(), _LAYOUT, tmp_path)
    assert got["vw"] == 1400 and got["vh"] >= 700, got  # headless Chromium keeps some of the 900 px for itself
    assert 0 < got["table"][1] <= got["vh"] and got["table"][2] <= got["vw"], got["table"]
    assert 0 < got["plot"][1] <= got["vh"] and got["plot"][2] <= got["vw"], got["plot"]
    assert got["scrollWidth"] <= got["vw"], got["scrollWidth"]  # no horizontal scroll for the page
    assert max(got["tables"]) <= 0, got["tables"]  # nor inside a table's box
    assert len(got["figures"]) >= 6 and got["empty"] == 0  # unfolded, every figure is drawn
    for fig in got["figures"]:
        assert fig["title"].strip() and fig["xlabels"] >= 1 and fig["ylabels"] >= 1, fig
        assert fig["legend"] and all(t.strip() for t in fig["legend"]), fig


def test_the_first_screen_holds_a_quick_sized_table_too(suite_dir, tmp_path):
    """11 objectives, 2 calibrators: rows and columns of the quick suite, from the tiny suite's runs relabelled."""
    from caltrain.report.document import build_report
    from caltrain.report.html import render_html

    copy = tmp_path / "suite"
    shutil.copytree(suite_dir, copy, ignore=shutil.ignore_patterns("results.*"))
    runs = sorted((copy / "runs").iterdir())
    names = ["ce", "ls", "focal", "flsd53", "mbls", "socrates", "sat", "gence", "calmo", "mmce", "mdca"]
    for i, name in enumerate(names):
        for seed in (0, 1):
            src = runs[(i % 2) * 2 + seed]
            dst = copy / "runs" / f"synthetic__{name}__seed{seed}"
            if not dst.exists():
                shutil.copytree(src, dst)
            labels = json.loads((dst / "labels.json").read_text())
            labels["objective"] = name
            (dst / "labels.json").write_text(json.dumps(labels))
            summary = json.loads((dst / "summary.json").read_text())
            summary["posthoc"]["ats"] = summary["posthoc"]["ts"]
            (dst / "summary.json").write_text(json.dumps(summary))
    page = tmp_path / "quick.html"
    page.write_text(render_html(build_report(copy)))
    got = _probe(page.read_text(), _LAYOUT, tmp_path, name="quick-probe.html")
    assert got["table"][1] <= got["vh"] and got["plot"][1] <= got["vh"], got
    assert got["scrollWidth"] <= got["vw"] and max(got["tables"]) <= 0, got
    shot = tmp_path / "quick-first-screen.png"
    _chromium(f"--screenshot={shot}", WINDOW, "--virtual-time-budget=5000", page.resolve().as_uri(),
              tmp_path=tmp_path)
    print(f"quick-sized screenshot: {shot}")


def test_clicking_a_header_sorts_the_table(suite_reports, tmp_path):
    """Click "ECE %" twice (ascending, then descending)."""
    got = _probe(suite_reports["html"].read_text(), """
      var th = Array.prototype.find.call(document.querySelectorAll('table.results th'),
                                         function (h) { return h.textContent === 'ECE %'; });
      var col = th.cellIndex, orders = [];
      [0, 1].forEach(function () {
        th.click();
        orders.push(Array.prototype.map.call(document.querySelectorAll('table.results tbody tr'),
                    function (r) { return Number(r.cells[col].getAttribute('data-sort')); }));
      });
      window.__probe = orders;""", tmp_path)
    ascending, descending = got
    assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True)


def test_the_picker_shows_and_hides_reliability_diagrams(suite_reports, tmp_path):
    got = _probe(suite_reports["html"].read_text(), """
      document.querySelectorAll('details.dataset').forEach(function (d) { d.open = true; });
      function shown() {
        return Array.prototype.filter.call(document.querySelectorAll('.picker-scope figure[data-objective]'),
          function (f) { return !f.hidden && f.getBoundingClientRect().height > 0; })
          .map(function (f) { return f.getAttribute('data-objective'); });
      }
      var before = shown();
      document.querySelector('.picker-scope button.pick-all[data-value="all"]').click();
      var everything = shown();
      var box = document.querySelector('.picker-scope input.pick[value="ce"]');
      box.checked = false; box.dispatchEvent(new Event('change'));
      window.__probe = [before, everything, shown()];""", tmp_path)
    before, everything, without_ce = got
    assert "ce" in before and everything == ["ce", "ls"] and without_ce == ["ls"]


def test_the_error_checks_catch_a_broken_page(suite_reports, tmp_path):
    """Control: the same checks flag a page with a console error, an uncaught exception and a broken image."""
    text = suite_reports["html"].read_text().replace(
        "</body>", '<img src="data:image/png;base64,AAAA"><script>console.error("boom"); notDefined();</script></body>')
    page = tmp_path / "broken.html"
    page.write_text(text)
    dom = _chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom",
                    page.resolve().as_uri(), tmp_path=tmp_path)
    attrs = _body_attrs(dom.stdout)
    assert attrs["data-js-errors"] == "1" and attrs["data-images-ok"] == "false"
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert any("boom" in line for line in console) and any("Uncaught" in line for line in console)
