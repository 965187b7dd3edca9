"""Report plots against what a user would otherwise pick, side by side in one run.

1. Smooth reliability curve with a 200-resample bootstrap band: ``caltrain.report.SmoothReliability`` against
   ``relplot.prepare_rel_diagram`` (same reflected Gaussian kernel, same fixed bandwidth), N in {1e3, 1e4, 1e5};
   time, ratio, and the largest difference to relplot's un-bagged line where the confidence density is > 0.2.
2. Reliability-diagram data (15 equal-width bins, top label, K = 10): ``ReliabilityDiagram.from_predictions``
   against scikit-learn ``calibration_curve`` on the same (confidence, correct) pairs, N in {1e5, 1e6}.
3. Drawing one reliability diagram to PNG: ``ReliabilityDiagram.plot`` (with histogram) against scikit-learn
   ``CalibrationDisplay.from_predictions``.
4. ``write_report`` of a tiny real suite (2 objectives x 2 seeds): seconds per figure and the HTML size.

Run: ``python bench/report.py [--quick]``. Figures of a run are in docs/report.md.
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
        lines = []
        t0 = time.perf_counter()
        out = write_report(tmp, log=lines.append)
        t_html = time.perf_counter() - t0
        t0 = time.perf_counter()
        write_report(tmp, format="md")
        t_md = time.perf_counter() - t0
        print(f"suite training {t_suite:.1f} s; report.html {t_html:.1f} s for {len(lines)} figures "
              f"({t_html / len(lines):.2f} s per figure), {out.stat().st_size / 1e3:.0f} kB; report.md {t_md:.1f} s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, one repeat")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else 3
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, python {sys.version.split()[0]}")
    bench_smooth([1_000, 10_000] if args.quick else [1_000, 10_000, 100_000], repeat)
    bench_bins([100_000] if args.quick else [100_000, 1_000_000], repeat)
    bench_draw(repeat)
    bench_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
