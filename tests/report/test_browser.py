"""The HTML report in headless Chromium: loads without console errors, one table row per objective, every image
decoded, and a screenshot saved under the pytest tmp dir. Skipped when no Chromium is installed (CI installs the
Debian ``chromium`` package; nothing is installed at test time)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="headless Chromium not installed (apt-get install chromium)")
FLAGS = ["--headless", "--disable-gpu", "--no-sandbox", "--disable-dev-shm-usage", "--hide-scrollbars",
         "--no-first-run", "--disable-extensions"]


def _chromium(*args, tmp_path):
    profile = tmp_path / "profile"
    return subprocess.run([BROWSER, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=120)


def test_report_opens_in_headless_chromium(suite_reports, tmp_path):
    page = suite_reports["html"].resolve().as_uri()
    dom = _chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000", "--dump-dom", page,
                    tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    body = re.search(r"<body([^>]*)>", dom.stdout)
    assert body, dom.stdout[:500]
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', body.group(1)))
    n_images = suite_reports["html"].read_text().count("<img")
    assert attrs.get("data-images-ok") == "true" and attrs.get("data-images") == str(n_images), attrs
    assert attrs.get("data-js-errors") == "0", attrs
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    tbody = dom.stdout[dom.stdout.index("<tbody>"):dom.stdout.index("</tbody>")]
    objectives = re.findall(r"<tr>.*?</tr>", tbody, flags=re.S)
    assert len(objectives) == 2  # one row per objective

    shot = tmp_path / "report.png"
    run = _chromium(f"--screenshot={shot}", "--window-size=1280,2400", "--virtual-time-budget=5000", page,
                    tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    print(f"report screenshot: {shot}")


def test_clicking_a_header_sorts_the_table(suite_reports, tmp_path):
    """Click "ECE %" twice (ascending, then descending) from a script appended to a copy of the page."""
    text = suite_reports["html"].read_text()
    probe = """<script>
    window.addEventListener('load', function () {
      var th = Array.prototype.find.call(document.querySelectorAll('#results th'),
                                         function (h) { return h.textContent === 'ECE %'; });
      var col = th.cellIndex, orders = [];
      [0, 1].forEach(function () {
        th.click();
        orders.push(Array.prototype.map.call(document.querySelectorAll('#results tbody tr'),
                    function (r) { return r.cells[col].getAttribute('data-sort'); }).join(','));
      });
      document.body.setAttribute('data-sorted', orders.join('|'));
    });
    </script></body>"""
    page = tmp_path / "probe.html"
    page.write_text(text.replace("</body>", probe))
    dom = _chromium("--virtual-time-budget=5000", "--dump-dom", page.resolve().as_uri(), tmp_path=tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    sorted_attr = re.search(r'data-sorted="([^"]*)"', dom.stdout)
    assert sorted_attr, dom.stdout[:300]
    ascending, descending = ([float(v) for v in part.split(",")] for part in sorted_attr.group(1).split("|"))
    assert ascending == sorted(ascending) and descending == sorted(ascending, reverse=True)


def test_the_error_checks_catch_a_broken_page(suite_reports, tmp_path):
    """Control: the same checks flag a page with a console error, an uncaught exception and a broken image."""
    text = suite_reports["html"].read_text().replace(
        "</body>", '<img src="data:image/png;base64,AAAA"><script>console.error("boom"); notDefined();</script></body>')
    page = tmp_path / "broken.html"
    page.write_text(text)
    dom = _chromium("--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom",
                    page.resolve().as_uri(), tmp_path=tmp_path)
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', re.search(r"<body([^>]*)>", dom.stdout).group(1)))
    assert attrs["data-js-errors"] == "1" and attrs["data-images-ok"] == "false"
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert any("boom" in line for line in console) and any("Uncaught" in line for line in console)
