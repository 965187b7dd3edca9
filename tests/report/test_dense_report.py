"""The dense binary task's report sections, on a tiny real dense suite (bce and aslp x 2 seeds, 16x16 images).

Checked against the files the trainer wrote and independent NumPy references: the reliability bars are the saved
bins (and those bins are a NumPy binning of the saved test maps, which here hold the whole test split), the ECE
printed is the summary's; every example map decodes (Pillow) to the saved mask / probability / confidence; the α
histogram's counts are ``np.histogram`` of the saved α; the α curves are the seeds' mean of the per-epoch records;
the OOD bars are the summaries' means; every figure has a title, axis labels and a legend.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import warnings

import numpy as np
import pytest

from caltrain.report.document import build_report
from caltrain.report.html import render_html
from caltrain.report.tasks.dense_binary import (ALPHA_BINS, N_SHOWN, alpha_edges, png_bytes, read_alpha,
                                                reliability_diagram)

TINY_DENSE_SUITE = {
    "base": {"epochs": 2, "quiet": True, "threads": 1, "eval": {"posthoc": ["ts"], "n_bins": 15},
             "data": {"name": "synthetic_saliency", "batch_size": 8, "eval_batch_size": 8,
                      "options": {"n_train": 16, "n_val": 8, "n_test": 8, "size": 16}},
             "model": {"name": "unet", "options": {"width": 4, "depth": 2}}, "optim": {"lr": 0.01}},
    "datasets": {"synthetic_saliency": {}},
    "objectives": {"bce": {"loss": {"name": "bce"}},
                   "aslp": {"loss": {"name": "aslp", "options": {"variant": "mc", "start_epoch": 1, "eta": 0.5}}}},
}


@pytest.fixture(scope="module")
def dense_suite(tmp_path_factory):
    """A complete dense suite written by the real trainer (read-only: copy before editing)."""
    from caltrain.train.suite import Suite, run_suite

    out = tmp_path_factory.mktemp("dense") / "suite"
    suite = Suite(name="tiny-dense", description="bce, aslp x 2 seeds", seeds=(0, 1), **TINY_DENSE_SUITE)
    with warnings.catch_warnings():  # 2 epochs of a 4-channel U-Net: TS may hit its bound, which it says
        warnings.filterwarnings("ignore", message="ts: the NLL-optimal temperature", category=RuntimeWarning)
        result = run_suite(suite, out, log=lambda s: None)
    assert not result["failed"], result["failed"]
    return out


@pytest.fixture(scope="module")
def dense_report(dense_suite):
    report = build_report(dense_suite)
    return report, render_html(report)


def _runs(suite, objective):
    from caltrain.report.loading import load_suite

    return [r for r in load_suite(suite).runs if r.objective == objective]


def _block(report, slug_part):
    (ds,) = report.datasets
    found = [b for s in ds.sections for b in s.blocks if slug_part in b.slug]
    assert found, [b.slug for s in ds.sections for b in s.blocks]
    return found


def _tips(svg):
    return [html.unescape(t) for t in re.findall(r'data-tip="([^"]*)"', svg)]


def test_sections_table_and_caveats(dense_report):
    report, page = dense_report
    (ds,) = report.datasets
    assert ds.task == "dense_binary"
    assert [s.title.split(" ")[0] for s in ds.sections] == ["Learning", "Dense", "Example", "ASLP:",
                                                           "Out-of-distribution:"]
    visible = [c.key for c in ds.columns if c.visible]
    assert visible[:6] == ["label", "accuracy", "ece", "oe", "ue", "true_ece"] and "s_measure" in visible
    assert "ts_ece" in visible and {c.key: c.header for c in ds.columns}["accuracy"] == "pixel acc %"
    # pickers: the reference bce, and the lowest mean test ECE
    rel = next(s for s in ds.sections if s.title.startswith("Dense"))
    assert rel.picker == ["bce", "aslp"] and rel.picked[0] == "bce"
    caveats = " ".join(report.caveats)
    assert "pooled over every pixel" in caveats and "No verdict for the dense dataset" in caveats
    assert "top-label" not in caveats  # the classification conventions are not claimed
    assert not [s for s in report.caveats if s.startswith("Left out")], report.caveats


def test_reliability_bars_are_the_saved_bins_and_the_ece_the_summary(dense_suite, dense_report):
    report, _ = dense_report
    for obj in ("bce", "aslp"):
        run = min(_runs(dense_suite, obj), key=lambda r: r.seed)
        saved = json.loads(run.files.reliability("test").read_text())
        (block,) = [b for b in _block(report, "dense-reliability") if b.objective == obj]
        tips = [t for t in _tips(block.body) if t.startswith("bin (")]
        for view, summary in (("uncalibrated", run.summary["test"]), ("ts", run.summary["posthoc"]["ts"])):
            bins = {k: np.asarray(v, dtype=np.float64) for k, v in saved[view].items()}
            d = reliability_diagram(bins)
            assert d.ece == pytest.approx(summary["ece"], rel=1e-9, abs=1e-12)
            assert f"{'uncalibrated' if view == 'uncalibrated' else 'after ts'} · ECE {100 * summary['ece']:.2f}%" \
                in html.unescape(block.body)
            filled = bins["count"] > 0
            expected = [f"accuracy {a:.3f}, mean confidence {c:.3f}, {int(n)} samples"
                        for a, c, n in zip(bins["acc_sum"][filled] / bins["count"][filled],
                                           bins["conf_sum"][filled] / bins["count"][filled], bins["count"][filled])]
            for text in expected:
                assert any(text in t for t in tips), (view, text)
        # an independent binning of the saved maps (8 test images: the examples hold the whole split)
        ex = np.load(run.files.examples("test"), allow_pickle=False)
        assert len(ex["index"]) == run.summary["test"]["n_images"]
        s = ex["probability"].astype(np.float64).ravel()
        y = ex["mask"].ravel().astype(bool)
        conf = np.maximum(s, 1 - s)
        correct = (s >= 0.5) == y
        idx = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)
        count = np.bincount(idx, minlength=15)
        np.testing.assert_array_equal(count, saved["uncalibrated"]["count"])
        np.testing.assert_allclose(np.bincount(idx, weights=correct, minlength=15), saved["uncalibrated"]["acc_sum"])
        np.testing.assert_allclose(np.bincount(idx, weights=conf, minlength=15), saved["uncalibrated"]["conf_sum"],
                                   rtol=1e-6)
        ece = np.abs(np.bincount(idx, weights=correct - conf, minlength=15)).sum() / len(s)
        assert ece == pytest.approx(run.summary["test"]["ece"], abs=1e-6)


def _png(uri):
    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_example_maps_decode_to_the_saved_arrays(dense_suite, dense_report):
    report, _ = dense_report
    for obj in ("bce", "aslp"):
        run = min(_runs(dense_suite, obj), key=lambda r: r.seed)
        ex = np.load(run.files.examples("test"), allow_pickle=False)
        (block,) = [b for b in _block(report, "examples") if b.objective == obj]
        images = re.findall(r'<image [^>]*href="([^"]+)"', block.body)
        kinds = ["image", "ground truth", "posterior", "probability s", "confidence"]
        assert len(images) == N_SHOWN * len(kinds)
        for i in range(N_SHOWN):
            tiles = [_png(u) for u in images[i * len(kinds):(i + 1) * len(kinds)]]
            assert [t.mode for t in tiles] == ["RGB", "L", "L", "L", "P"] and all(t.size == (16, 16) for t in tiles)
            np.testing.assert_array_equal(np.asarray(tiles[0]), np.moveaxis(ex["image"][i], 0, -1))
            np.testing.assert_array_equal(np.asarray(tiles[1]), 255 * ex["mask"][i, 0])
            np.testing.assert_array_equal(np.asarray(tiles[2]), np.round(255 * ex["posterior"][i, 0].astype(float)))
            s = ex["probability"][i, 0].astype(np.float64)
            np.testing.assert_array_equal(np.asarray(tiles[3]), np.round(255 * s))
            np.testing.assert_array_equal(np.asarray(tiles[4]), np.round(255 * (2 * np.maximum(s, 1 - s) - 1)))
            acc = np.mean((s >= 0.5) == (ex["mask"][i, 0] == 1))
            assert f"test image {int(ex['index'][i])} · pixel accuracy {100 * acc:.1f}%" in html.unescape(block.body)
        assert block.body.count('image-rendering: pixelated') == len(images)


def test_alpha_histogram_counts_are_numpy_histograms_of_the_saved_alpha(dense_suite, dense_report):
    report, _ = dense_report
    runs = _runs(dense_suite, "aslp")
    alphas = [np.load(r.files.sample_state, allow_pickle=False)["alpha"] for r in runs]
    assert all(a.shape == (16,) for a in alphas) and max(a.max() for a in alphas) > 0
    for r, a in zip(runs, alphas):
        np.testing.assert_array_equal(read_alpha(r), a)
    edges = np.linspace(0, max(a.max() for a in alphas), ALPHA_BINS + 1)
    np.testing.assert_array_equal(alpha_edges({"aslp": [(r.seed, a) for r, a in zip(runs, alphas)]}), edges)
    expected = np.histogram(np.concatenate(alphas), bins=edges)[0]
    (block,) = _block(report, "alpha-hist")
    got = [int(m) for t in _tips(block.body) for m in re.findall(r"[)\]]: (\d+) images \(", t)]
    assert len(got) == ALPHA_BINS and got == expected.tolist() and sum(got) == 32
    seeds = [re.findall(r"seed (\d+): (\d+)", t) for t in _tips(block.body) if " images (" in t]
    for b, per in enumerate(seeds):
        assert [int(c) for _, c in per] == [int(np.histogram(a, bins=edges)[0][b]) for a in alphas]
    assert "bce" not in re.findall(r'data-objective="([^"]+)"', block.body)  # ASLP runs only


def test_alpha_curves_are_the_mean_of_the_epoch_records(dense_suite, dense_report):
    report, _ = dense_report
    runs = _runs(dense_suite, "aslp")
    records = [[json.loads(line) for line in r.files.metrics.read_text().splitlines()] for r in runs]
    medians = [[rec["objective"]["alpha_q50"] for rec in recs if isinstance(rec.get("epoch"), int)] for recs in records]
    (block,) = _block(report, "alpha-epochs")
    tip = next(t for t in _tips(block.body) if t.startswith("aslp, median α by epoch"))
    shown = [float(v) for v in re.findall(r"\d+: ([-\d.e]+)", tip.split(": ", 1)[1])]
    np.testing.assert_allclose(shown, np.mean(medians, axis=0), rtol=2e-3, atol=1e-12)  # 3 significant digits


def test_ood_bars_are_the_summaries(dense_suite, dense_report):
    report, _ = dense_report
    (block,) = _block(report, "dense-ood")
    name = next(iter(_runs(dense_suite, "bce")[0].summary["ood"]))
    assert name in block.title
    tips = _tips(block.body)
    for obj in ("bce", "aslp"):
        for key in ("confidence", "ece"):
            mean = np.mean([r.summary["ood"][name][key] for r in _runs(dense_suite, obj)])
            assert any(t.startswith(f"{obj}, {name}: {key} {100 * mean:.2f}% mean over 2 seed(s)") for t in tips)


def _figures(svg_text):
    """(title, number of x labels, number of y labels, legend texts) of every ``<svg class="plot">``."""
    out = []
    for svg in re.findall(r'<svg class="plot".*?</svg>', svg_text, flags=re.S):
        title = re.search(r'<text class="title"[^>]*>([^<]*)<', svg)
        legend = re.search(r'<g class="legend">(.*?)</g></g>', svg, flags=re.S)
        items = re.findall(r'<g class="legend-item">.*?<text[^>]*>([^<]*)</text>', legend.group(0), flags=re.S) \
            if legend else []
        out.append((title.group(1) if title else "", svg.count('class="xlabel"'), svg.count('class="ylabel"'), items))
    return out


def test_every_dense_figure_has_a_title_labels_and_a_legend(dense_report):
    report, page = dense_report
    figures = _figures(page)
    (ds,) = report.datasets
    assert len(figures) == len(ds.tradeoff) + sum(b.kind == "svg" for s in ds.sections for b in s.blocks) >= 9
    for title, xl, yl, legend in figures:
        assert title.strip() and xl >= 1 and yl >= 1, title
        assert legend and all(t.strip() for t in legend), title


def test_a_run_without_its_dense_files_leaves_them_out_and_says_so(dense_suite, tmp_path):
    copy = tmp_path / "suite"
    shutil.copytree(dense_suite, copy)
    run = copy / "runs" / "synthetic_saliency__aslp__seed0"
    (run / "examples_test.npz").unlink()
    (run / "reliability_test.json").write_text(json.dumps({"n_bins": 15, "uncalibrated": {"count": [1, 2]}}))
    report = build_report(copy)
    left_out = [c for c in report.caveats if c.startswith("Left out")]
    assert any("examples synthetic_saliency__aslp__seed0: no examples_test.npz" in c for c in left_out), left_out
    assert any("dense reliability" in c and "count must be 15" in c for c in left_out), left_out
    (ds,) = report.datasets
    assert [b.objective for b in _block(report, "examples")] == ["bce"]
    assert [b.objective for b in _block(report, "dense-reliability")] == ["bce"]
    assert any(s.title.startswith("ASLP") for s in ds.sections)  # the other sections are still drawn


def test_a_run_that_does_not_name_its_task_is_matched_by_its_metrics(dense_suite, tmp_path):
    from caltrain.report.loading import load_run
    from caltrain.report.tasks import task_of

    run = tmp_path / "run"
    shutil.copytree(dense_suite / "runs" / "synthetic_saliency__bce__seed0", run)
    summary = json.loads((run / "summary.json").read_text())
    del summary["task"]
    (run / "summary.json").write_text(json.dumps(summary))
    assert task_of(load_run(run)) == "dense_binary"
    (ds,) = build_report(run).datasets  # a single run: no picker needed, one objective
    assert ds.task == "dense_binary" and len(ds.sections) == 4  # no ASLP section for a bce run


def test_markdown_writes_every_dense_figure_as_svg(dense_suite, tmp_path):
    from caltrain.report import write_report

    out = write_report(dense_suite, format="md", out=tmp_path / "r" / "report.md")
    files = sorted(p.name for p in (tmp_path / "r" / "report_files").iterdir())
    assert any("examples-aslp" in f for f in files) and any("alpha-hist" in f for f in files)
    text = out.read_text()
    for f in files:
        assert f"report_files/{f}" in text


def test_large_float_examples_are_block_means_and_scaled_per_image():
    """User data: float inputs with one channel, 130 x 70 maps, no posterior: 4 maps per image, block means over
    a factor ceil(130 / 64) = 3 (rows and columns beyond a multiple dropped), the input min-max scaled."""
    from caltrain.report.tasks.dense_binary import example_grid

    rng = np.random.default_rng(1)
    n, h, w = 2, 130, 70
    s = rng.random((n, 1, h, w)).astype(np.float32)
    arrays = {"index": np.array([5, 9]), "image": rng.normal(size=(n, 1, h, w)).astype(np.float32) * 3 + 1,
              "mask": (rng.random((n, 1, h, w)) > 0.7).astype(np.uint8), "probability": s}
    svg = example_grid(arrays, title="user data", objective="bce", seed=0, slug="t")
    uris = re.findall(r'<image [^>]*href="([^"]+)"', svg)
    assert len(uris) == 2 * 4 and "posterior" not in re.findall(r">([a-z ]+)</text>", svg)
    tiles = [_png(u) for u in uris]
    assert all(t.size == (23, 43) for t in tiles)  # (W, H) = (70 // 3, 130 // 3)

    def blocks(a):
        a = a[: 129, : 69].astype(np.float64)
        return a.reshape(43, 3, 23, 3).mean(axis=(1, 3))

    x = arrays["image"][1, 0].astype(np.float64)
    x = (x - x.min()) / (x.max() - x.min())
    np.testing.assert_array_equal(np.asarray(tiles[4]), np.clip(np.round(255 * blocks(x)), 0, 255))
    np.testing.assert_array_equal(np.asarray(tiles[6]), np.round(255 * blocks(s[1, 0])))
    assert "min-max scaled from" in html.unescape(svg)


def test_malformed_example_files_are_refused_naming_the_array(tmp_path):
    from types import SimpleNamespace

    from caltrain.report.tasks.dense_binary import read_examples
    from caltrain.train.run_dir import RunDir
    from caltrain.utils.io import save_npz

    run = SimpleNamespace(files=RunDir(tmp_path))
    ok = {"index": np.arange(2), "image": np.zeros((2, 3, 4, 4), np.uint8), "mask": np.zeros((2, 1, 4, 4), np.uint8),
          "probability": np.zeros((2, 1, 4, 4), np.float32)}
    save_npz(run.files.examples("test"), **ok)
    assert sorted(read_examples(run)) == sorted(ok)
    for key, bad, message in (("probability", np.zeros((2, 4, 4), np.float32), "probability must be"),
                              ("mask", np.zeros((2, 1, 4, 5), np.uint8), "mask has shape"),
                              ("image", np.zeros((2, 3, 5, 4), np.uint8), "image must be"),
                              ("mask", None, "no 'mask' array")):
        arrays = {k: v for k, v in ok.items() if not (k == key and bad is None)}
        if bad is not None:
            arrays[key] = bad
        save_npz(run.files.examples("test"), **arrays)
        with pytest.raises(ValueError, match=message):
            read_examples(run)


# --------------------------------------------------------------------------------------------------- PNG writer
@pytest.mark.parametrize("kind", ["grey", "rgb", "palette"])
def test_png_bytes_decode_with_pillow(kind):
    from PIL import Image

    rng = np.random.default_rng(0)
    if kind == "rgb":
        pixels = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
        palette = None
    else:
        pixels = rng.integers(0, 256 if kind == "grey" else 4, size=(5, 7), dtype=np.uint8)
        palette = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [1, 2, 3]], dtype=np.uint8) if kind == "palette" \
            else None
    image = Image.open(io.BytesIO(png_bytes(pixels, palette=palette)))
    image.load()
    assert image.size == (7, 5)
    np.testing.assert_array_equal(np.asarray(image), pixels)
    if palette is not None:
        np.testing.assert_array_equal(np.asarray(image.convert("RGB")), palette[pixels])


def test_png_bytes_refuse_bad_inputs():
    with pytest.raises(ValueError, match="pixels"):
        png_bytes(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="pixels"):
        png_bytes(np.zeros((2, 2, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="palette"):
        png_bytes(np.zeros((2, 2, 3), dtype=np.uint8), palette=np.zeros((2, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="outside the palette"):
        png_bytes(np.full((2, 2), 2, dtype=np.uint8), palette=np.zeros((2, 3), dtype=np.uint8))


def test_tick_labels_of_a_step_of_2_5_keep_their_decimal():
    """Regression: ``fmt`` gave a step of 2.5 no decimal ("2", "8" for 2.5 and 7.5) and 0.025 two ("0.03")."""
    from caltrain.report.svg import fmt, nice_ticks

    ticks, step = nice_ticks(0, 8.4)
    assert step == 2.5 and [fmt(t, step) for t in ticks] == ["0.0", "2.5", "5.0", "7.5"]
    assert [fmt(v, 0.025) for v in (0.025, 0.075)] == ["0.025", "0.075"]
    assert fmt(40.0, 20.0) == "40" and fmt(0.4, 0.2) == "0.4"


# ------------------------------------------------------------------------------------------------ in Chromium
def test_the_dense_report_in_headless_chromium(dense_report, tmp_path):
    """No console error; every figure drawn after unfolding; the lead on the first screen; no horizontal scroll;
    every figure titled, labelled and with a legend; screenshots saved (paths printed)."""
    from tests.report.test_browser import _LAYOUT, BROWSER, _body_attrs, _chromium, _probe

    if BROWSER is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    _, page_text = dense_report
    page = tmp_path / "dense.html"
    page.write_text(page_text)
    dom = _chromium("--enable-logging=stderr", "--v=0", "--window-size=1400,900", "--virtual-time-budget=8000",
                    "--dump-dom", page.resolve().as_uri(), tmp_path=tmp_path)
    attrs = _body_attrs(dom.stdout)
    assert attrs.get("data-figures-ok") == "true" and attrs.get("data-js-errors") == "0", attrs
    assert not [line for line in dom.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    got = _probe(page_text, _LAYOUT, tmp_path, name="dense-probe.html")
    assert got["empty"] == 0 and got["scrollWidth"] <= got["vw"] and max(got["tables"]) <= 0, got
    assert 0 < got["table"][1] <= got["vh"] and 0 < got["plot"][1] <= got["vh"], got
    for fig in got["figures"]:
        assert fig["title"].strip() and fig["xlabels"] >= 1 and fig["ylabels"] >= 1, fig
        assert fig["legend"] and all(t.strip() for t in fig["legend"]), fig
    opened = tmp_path / "open.html"
    opened.write_text(page_text.replace('<details class="dataset"', '<details class="dataset" open'))
    shot = tmp_path / "dense-sections.png"
    _chromium(f"--screenshot={shot}", "--window-size=1400,4200", "--virtual-time-budget=5000",
              opened.resolve().as_uri(), tmp_path=tmp_path)
    print(f"dense report screenshot: {shot}")
