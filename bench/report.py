"""Report plots against what a user would otherwise pick, side by side in one run.

1. Smooth reliability curve with a 200-resample bootstrap band: ``caltrain.report.SmoothReliability`` against
   ``relplot.prepare_rel_diagram`` (same reflected Gaussian kernel, same fixed bandwidth), N in {1e3, 1e4, 1e5};
   time, ratio, and the largest difference to relplot's un-bagged line where the confidence density is > 0.2.
2. Reliability-diagram data (15 equal-width bins, top label, K = 10): ``ReliabilityDiagram.from_predictions``
   against scikit-learn ``calibration_curve`` on the same (confidence, correct) pairs, N in {1e5, 1e6}.
3. Drawing one reliability diagram to PNG: ``ReliabilityDiagram.plot`` (with histogram) against scikit-learn
   ``CalibrationDisplay.from_predictions``.
4. ``write_report`` of a tiny real suite (2 objectives x 2 seeds): seconds and the HTML size.
5. ``write_report`` of a quick-sized suite (2 datasets x 11 objectives x 2 seeds, 3 epochs), the old report
   (git revision ``OLD_REPORT_REV``: matplotlib PNGs, refitted nothing either) against this tree's (SVG), each in
   a fresh process, alternating, best of 3; seconds, ratio, HTML size and the load average before each run.

Run: ``python bench/report.py [--quick] [--only-report] [--suite DIR]``. Figures are in BENCHMARKS.md and
docs/report.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _predictions(n: int, k: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, k, generator=g, dtype=torch.float64) * 2.5
    probs = torch.softmax(logits, 1)
    labels = torch.multinomial(torch.softmax(logits / 1.6, 1), 1, generator=g).squeeze(1)
    return probs, labels


def bench_smooth(sizes, repeat):
    import relplot

    from caltrain.report import SmoothReliability

    print("\n## smooth reliability curve, 200 bootstrap resamples, h = 0.05")
    print(f"{'N':>8} {'caltrain s':>11} {'relplot s':>10} {'ratio':>7} {'max |diff| curve':>17}")
    for n in sizes:
        probs, labels = _predictions(n, k=4)
        conf = probs.max(1).values.numpy()
        correct = (probs.argmax(1) == labels).double().numpy()
        ours = SmoothReliability.from_predictions(probs, labels, bandwidth=0.05, n_boot=200, grid_size=200)
        t_ours = _best(lambda: SmoothReliability.from_predictions(probs, labels, bandwidth=0.05, n_boot=200,
                                                                  grid_size=200), repeat)
        t_theirs = _best(lambda: relplot.prepare_rel_diagram(conf, correct, num_bootstrap=200, kde_bandwidth=0.05),
                         1 if n >= 100_000 else repeat)
        line = relplot.prepare_rel_diagram(conf, correct, kde_bandwidth=0.05, plot_confidence_band=False)
        curve_theirs = np.interp(ours.grid, line["mesh"], line["mu"])  # its un-bagged line, same kernel and h
        ok = ~np.isnan(ours.curve) & (ours.density > 0.2)
        diff = float(np.max(np.abs(ours.curve[ok] - curve_theirs[ok]))) if ok.any() else float("nan")
        print(f"{n:>8} {t_ours:>11.3f} {t_theirs:>10.3f} {t_theirs / t_ours:>6.1f}x {diff:>17.2e}")


def bench_bins(sizes, repeat):
    from sklearn.calibration import calibration_curve

    from caltrain.report import ReliabilityDiagram

    print("\n## reliability-diagram data, 15 equal-width bins, K = 10")
    print(f"{'N':>8} {'caltrain s':>11} {'sklearn s':>10} {'ratio':>7} {'max |diff| acc':>15}")
    for n in sizes:
        probs, labels = _predictions(n)
        t_ours = _best(lambda: ReliabilityDiagram.from_predictions(probs, labels), repeat)

        def sk():
            p = probs.numpy()
            conf = p.max(1)
            correct = (p.argmax(1) == labels.numpy()).astype(float)
            return calibration_curve(correct, conf, n_bins=15, strategy="uniform")

        t_sk = _best(sk, repeat)
        ours = ReliabilityDiagram.from_predictions(probs, labels)
        acc_sk, _ = sk()
        diff = float(np.max(np.abs(ours.accuracy[ours.count > 0] - acc_sk)))
        print(f"{n:>8} {t_ours:>11.3f} {t_sk:>10.3f} {t_sk / t_ours:>6.1f}x {diff:>15.2e}")


def bench_draw(repeat):
    from sklearn.calibration import CalibrationDisplay

    from caltrain.report import ReliabilityDiagram
    from caltrain.report.figures import figure_png

    print("\n## one reliability diagram drawn to PNG (N = 10^4, 96 dpi)")
    probs, labels = _predictions(10_000)

    def ours():
        figure_png(ReliabilityDiagram.from_predictions(probs, labels).plot().figure_)

    def sk():
        import io

        from matplotlib.figure import Figure

        fig = Figure(figsize=(4.2, 4.8))
        ax = fig.add_subplot(1, 1, 1)
        p = probs.numpy()
        CalibrationDisplay.from_predictions((p.argmax(1) == labels.numpy()).astype(int), p.max(1), n_bins=15, ax=ax)
        fig.savefig(io.BytesIO(), format="png", dpi=96)

    t_ours, t_sk = _best(ours, repeat), _best(sk, repeat)
    print(f"caltrain (bars, gap bars, histogram): {t_ours:.3f} s; scikit-learn CalibrationDisplay (line only): "
          f"{t_sk:.3f} s; ratio {t_ours / t_sk:.1f}x")


def bench_report():
    from caltrain.report import write_report
    from caltrain.train.suite import Suite, run_suite

    print("\n## write_report of a tiny real suite (2 objectives x 2 seeds, synthetic, 2-epoch MLP)")
    with tempfile.TemporaryDirectory() as tmp:
        suite = Suite(name="tiny", description="bench", seeds=(0, 1),
                      base={"epochs": 2, "quiet": True, "optim": {"lr": 0.05}, "eval": {"posthoc": ["ts"]},
                            "data": {"batch_size": 64, "options": {"train_size": 256, "val_size": 160,
                                                                   "test_size": 400, "dim": 8}}},
                      datasets={"synthetic": {"data": {"name": "synthetic"}, "model": {"name": "mlp"}}},
                      objectives={"ce": {"loss": {"name": "ce"}}, "ls": {"loss": {"name": "ls"}}})
        t0 = time.perf_counter()
        run_suite(suite, tmp, log=lambda s: None)
        t_suite = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = write_report(tmp)
        t_html = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_report(tmp, format="md")
        t_md = time.perf_counter() - t0
        print(f"suite training {t_suite:.1f} s; report.html {t_html:.2f} s, {out.stat().st_size / 1e3:.0f} kB; "
              f"report.md {t_md:.2f} s")


#: The last commit whose report drew matplotlib PNGs (the "old" side of the comparison).
OLD_REPORT_REV = "7c81f8e67f90d5910dc1305dcc7e33393ad6ce07"

_TIMED = """
import json, sys, time
t0 = time.perf_counter()
from caltrain.report import write_report
t1 = time.perf_counter()
out = write_report(sys.argv[1], out=sys.argv[2])
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "write": t2 - t1, "bytes": out.stat().st_size}))
"""


def _cpu() -> str:
    """The processor's model name (Linux), else what platform says."""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load() -> str:
    import os

    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def bench_old_vs_new(suite_dir: str | None, repeats: int, old_rev: str) -> None:
    """``caltrain report`` of a quick-sized suite, the old implementation (``old_rev``) against this tree's,
    each in a fresh process (same interpreter and environment), alternating, ``repeats`` times each."""
    import json
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if suite_dir is None:
            suite_dir = str(tmp / "quick")
            print(f"\nbuilding the quick suite with 2 seeds and 3 epochs in {suite_dir} (load {_load()}) ...")
            subprocess.run([sys.executable, "-m", "caltrain", "bench", "quick", "--out", suite_dir, "--seeds", "2",
                            "--set", "epochs=3", "--no-report"], check=True, capture_output=True,
                           env={**os.environ, "PYTHONPATH": str(root / "src")})
        old_src = tmp / "old"
        old_src.mkdir()
        archive = subprocess.run(["git", "-C", str(root), "archive", old_rev, "src/caltrain"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old_src)], input=archive, check=True)
        n_runs = sum(1 for p in Path(suite_dir, "runs").glob("*/summary.json"))
        print(f"\n## caltrain report of a quick-sized suite ({n_runs} runs): old ({old_rev[:7]}, matplotlib PNGs) "
              f"vs new (SVG), fresh process each, alternating, {repeats} repeats")
        print(f"machine: {_cpu()}, {os.cpu_count()} cores; "
              f"load (1/5/15 min) at start {_load()}")
        print(f"{'side':>5} {'repeat':>6} {'write s':>8} {'import s':>9} {'MB':>6} {'load':>14}")
        results: dict[str, list[dict]] = {"old": [], "new": []}
        for r in range(repeats):
            for side, src in (("old", old_src / "src"), ("new", root / "src")):
                out = tmp / f"{side}-{r}.html"
                proc = subprocess.run([sys.executable, "-c", _TIMED, suite_dir, str(out)], capture_output=True,
                                      text=True, env={**os.environ, "PYTHONPATH": str(src)}, check=True)
                row = json.loads(proc.stdout.strip().splitlines()[-1])
                results[side].append(row)
                print(f"{side:>5} {r:>6} {row['write']:>8.2f} {row['import']:>9.2f} {row['bytes'] / 1e6:>6.2f} "
                      f"{_load():>14}")
        old = min(x["write"] for x in results["old"])
        new = min(x["write"] for x in results["new"])
        whole_old = min(x["write"] + x["import"] for x in results["old"])
        whole_new = min(x["write"] + x["import"] for x in results["new"])
        print(f"best of {repeats}: old {old:.1f} s, new {new:.1f} s: {old / new:.1f}x faster (with the imports: "
              f"{whole_old:.1f} s vs {whole_new:.1f} s, {whole_old / whole_new:.1f}x); "
              f"size {results['old'][0]['bytes'] / 1e6:.2f} MB -> {results['new'][0]['bytes'] / 1e6:.2f} MB; "
              f"load at end {_load()}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repeat")
    parser.add_argument("--suite", metavar="DIR", help="a quick-sized suite directory for the old-vs-new report "
                        "comparison (default: build the quick suite with 2 seeds and 3 epochs, a few minutes)")
    parser.add_argument("--only-report", action="store_true", help="run only the old-vs-new report comparison")
    parser.add_argument("--old-rev", default=OLD_REPORT_REV, help="git revision of the old report")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else 3
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, python {sys.version.split()[0]}")
    if not args.only_report:
        bench_smooth([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000], repeat)
        bench_bins([100_000] if args.quick else [100_000, 1_000_000], repeat)
        bench_draw(repeat)
        bench_report()
    bench_old_vs_new(args.suite, 1 if args.quick else 3, args.old_rev)
    return 0


if __name__ == "__main__":
    sys.exit(main())
