"""Benchmark: caltrain's calibration metrics vs torchmetrics and netcal, side by side in one run.

    python bench/metrics.py                 # the figures of BENCHMARKS.md ("metrics"); a few minutes
    python bench/metrics.py --quick         # N = 1e5 only, to check that it runs

For N in {1e5, 1e6, 1e7} with K = 10 (and N = 1e6 with K = 100), float32 probabilities (what a model emits):

- top-label ECE (15 equal-width bins): caltrain ``expected_calibration_error`` (validated, and
  ``validate_args=False``), caltrain ``CalibrationError`` streamed in batches of 1e5, torchmetrics
  ``multiclass_calibration_error`` (its full call, validation included), netcal ``ECE(15).measure``;
- AdaECE (15 equal-mass bins): caltrain ``binning="quantile"`` vs netcal ``ECE(15, equal_intervals=False)``;
- classwise ECE: caltrain vs the NumPy loop over classes a user would write (no library offers it);
- ``summarize`` (every scalar metric in one call, as the trainer logs it), caltrain only, with a
  ``true_posterior`` (the true-calibration entries included); its ``value`` column is its ECE.

Per call: seconds (best of ``--repeat``), peak extra resident memory during the call (sampled every 1 ms
from /proc/self/statm, above the level before the call), and the absolute error against a float64
reference (NumPy, per-bin pairwise float64 sums of the same bin assignment). Ratios are
``other time / caltrain time`` (validated call). One torch thread by default (``--threads``).

    python bench/metrics.py --contention    # ECE at 1e7 x 10: 1 and 2 threads, idle and under load

``--contention`` times the top-label ECE on N = 1e7, K = 10 (``--contention-n``) at 1 and 2 torch threads,
first as the machine is, then with ``--load`` (2) busy processes running (``while True: pass``), calls
interleaved, median of ``--repeat`` (5): caltrain as shipped (2^16-row chunks taken in turn by
``torch.get_num_threads()`` worker threads, each operation on one intra-op thread), the alternatives
(:data:`WAYS`: the chunks in the calling thread only; every operation on all intra-op threads with 2^16-row
chunks, as before, or with 2^20-row chunks: fewer, larger parallel regions), and torchmetrics
``multiclass_calibration_error`` (validated, as a user calls it).
Ratio: torchmetrics time / caltrain time (> 1: caltrain faster).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from caltrain import metrics as M  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def measure(fn, repeat: int):
    """(best seconds, peak extra bytes, result)."""
    best, peak_extra, result = float("inf"), 0, None
    for _ in range(repeat):
        base = rss()
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss())
                time.sleep(0.001)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        stop.set()
        thread.join()
        peak[0] = max(peak[0], rss())
        best = min(best, elapsed)
        peak_extra = max(peak_extra, peak[0] - base)
    return best, peak_extra, result


def make_data(n: int, k: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    z = 2.5 * torch.randn(n, k, generator=gen)
    probs = torch.softmax(z, dim=1)  # float32
    pred = probs.argmax(1)
    flip = torch.rand(n, generator=gen) < 0.35
    labels = torch.where(flip, torch.randint(0, k, (n,), generator=gen), pred)
    return probs, labels


def ref_from_index(scores: np.ndarray, outcomes: np.ndarray, index: np.ndarray, n_bins: int, groups: int = 1) -> float:
    """Mean over groups of sum_b |A_b - S_b| / N, with per-bin pairwise float64 sums (sorted by bin)."""
    order = np.argsort(index, kind="stable")
    idx = index[order]
    s = scores[order].astype(np.float64)
    o = outcomes[order].astype(np.float64)
    cuts = np.searchsorted(idx, np.arange(groups * n_bins + 1))
    gaps = np.array([abs(o[a:b].sum() - s[a:b].sum()) for a, b in zip(cuts[:-1], cuts[1:])])
    n = len(scores) // groups
    return float(gaps.reshape(groups, n_bins).sum(1).mean() / n)


def references(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = 15) -> dict[str, float]:
    p = probs.numpy()
    y = labels.numpy()
    conf = p.max(1).astype(np.float64)
    correct = (p.argmax(1) == y).astype(np.float64)
    edges = np.arange(n_bins + 1) / n_bins
    uniform = np.searchsorted(edges[1:-1], conf, side="left")
    order = np.argsort(conf, kind="stable")
    quantile = np.empty(len(conf), dtype=np.int64)
    quantile[order] = np.arange(len(conf)) * n_bins // len(conf)
    out = {
        "ece": ref_from_index(conf, correct, uniform, n_bins),
        "adaece": ref_from_index(conf, correct, quantile, n_bins),
    }
    if p.shape[0] * p.shape[1] <= 2e7:
        k = p.shape[1]
        cw_scores = p.T.reshape(-1).astype(np.float64)
        cw_out = (y[None, :] == np.arange(k)[:, None]).reshape(-1).astype(np.float64)
        cw_index = (np.searchsorted(edges[1:-1], cw_scores, side="left").reshape(k, -1) + np.arange(k)[:, None] * n_bins).reshape(-1)
        out["classwise_ece"] = ref_from_index(cw_scores, cw_out, cw_index, n_bins, groups=k)
    return out


def numpy_classwise(p: np.ndarray, y: np.ndarray, n_bins: int = 15) -> float:
    """What a user would write: a loop over classes with np.digitize and np.bincount (float64)."""
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for k in range(p.shape[1]):
        pk = p[:, k].astype(np.float64)
        idx = np.clip(np.digitize(pk, edges[1:-1], right=True), 0, n_bins - 1)
        cnt = np.bincount(idx, minlength=n_bins)
        s = np.bincount(idx, weights=pk, minlength=n_bins)
        a = np.bincount(idx, weights=(y == k).astype(np.float64), minlength=n_bins)
        total += np.abs(a - s).sum() / len(y)
    return total / p.shape[1]


def streamed(probs, labels, batch: int = 100_000):
    metric = M.CalibrationError(n_bins=15)
    for start in range(0, probs.shape[0], batch):
        metric.update(probs[start : start + batch], labels[start : start + batch])
    return metric.compute()


def run_case(n: int, k: int, repeat: int, netcal_max: int) -> list[dict]:
    from netcal.metrics import ECE
    from torchmetrics.functional.classification import multiclass_calibration_error

    probs, labels = make_data(n, k)
    ref = references(probs, labels)
    rows = []

    def add(metric, impl, fn, reps=repeat):
        seconds, mem, value = measure(fn, reps)
        value = float(value)
        rows.append({
            "N": n, "K": k, "metric": metric, "impl": impl, "seconds": seconds, "peak_mb": mem / 2**20,
            "value": value, "abs_error": abs(value - ref[metric]) if metric in ref else None,
        })
        print(json.dumps(rows[-1]), flush=True)

    p_np, y_np = probs.numpy(), labels.numpy()
    add("ece", "caltrain", lambda: M.expected_calibration_error(probs, labels))
    add("ece", "caltrain (validate_args=False)", lambda: M.expected_calibration_error(probs, labels, validate_args=False))
    add("ece", "caltrain streaming (batches 1e5)", lambda: streamed(probs, labels))
    add("ece", "torchmetrics", lambda: multiclass_calibration_error(probs, labels, num_classes=k, n_bins=15, norm="l1"))
    if n <= netcal_max:
        add("ece", "netcal", lambda: ECE(bins=15).measure(p_np, y_np), reps=1)
    add("adaece", "caltrain", lambda: M.adaptive_calibration_error(probs, labels))
    if n <= netcal_max:
        add("adaece", "netcal (equal_intervals=False)", lambda: ECE(bins=15, equal_intervals=False).measure(p_np, y_np), reps=1)
    add("classwise_ece", "caltrain", lambda: M.classwise_calibration_error(probs, labels))
    add("classwise_ece", "numpy loop over classes", lambda: numpy_classwise(p_np, y_np), reps=1)
    add("summarize", "caltrain", lambda: M.summarize(probs, labels, true_posterior=probs)["ece"])
    return rows


#: How caltrain's chunked top-label accumulation runs: as shipped, and the alternatives measured against it.
WAYS = {
    "shipped: 2^16-row chunks on worker threads, 1 intra-op thread": None,
    "2^16-row chunks in the calling thread, 1 intra-op thread": 1,
    "2^16-row chunks, all intra-op threads (the threading before)": 1 << 16,
    "2^20-row chunks, all intra-op threads": 1 << 20,
}


@contextlib.contextmanager
def accumulation(way: str):
    """caltrain's chunked accumulation as shipped, or one of the alternatives in :data:`WAYS`."""
    import caltrain.metrics.ece as ece
    import caltrain.utils.checks as checks
    from caltrain.utils.threads import map_chunks

    setting = WAYS[way]
    if setting is None:
        yield
        return
    saved = ece.map_chunks, checks.map_chunks
    if setting == 1:
        ece.map_chunks = checks.map_chunks = lambda fn, n, chunk, workers=None: map_chunks(fn, n, chunk, workers=1)
    else:  # a plain loop: every operation on all intra-op threads
        ece.map_chunks = lambda fn, n, chunk, workers=None: [fn(s, min(s + setting, n)) for s in range(0, n, setting)]
        checks.map_chunks = lambda fn, n, chunk, workers=None: [fn(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    try:
        yield
    finally:
        ece.map_chunks, checks.map_chunks = saved


def contention(n: int, k: int, repeat: int, load: int) -> list[dict]:
    """ECE on [n, k] at 1 and 2 threads, idle and under ``load`` busy processes, interleaved; median seconds."""
    import random
    import statistics

    from torchmetrics.functional.classification import multiclass_calibration_error

    from _machine import busy_load, describe

    probs, labels = make_data(n, k)
    ways = tuple(WAYS)

    def ours(way):
        def call():
            with accumulation(way):
                return M.expected_calibration_error(probs, labels)
        return call

    calls = {f"caltrain ({w})": ours(w) for w in ways}
    calls["torchmetrics"] = lambda: multiclass_calibration_error(probs, labels, num_classes=k, n_bins=15)
    values = {name: float(fn()) for name, fn in calls.items()}  # warm-up (and the values agree)
    rows = []
    for busy in (0, load):
        with busy_load(busy):
            machine = describe()
            for threads in (1, 2):
                torch.set_num_threads(threads)
                times: dict[str, list[float]] = {name: [] for name in calls}
                order = list(calls)
                for r in range(repeat):
                    random.Random(r).shuffle(order)
                    for name in order:
                        t0 = time.perf_counter()
                        calls[name]()
                        times[name].append(time.perf_counter() - t0)
                med = {name: statistics.median(v) for name, v in times.items()}
                for name, t in med.items():
                    rows.append({"N": n, "K": k, "busy_processes": busy, "threads": threads, "impl": name,
                                 "seconds": t, "value": values[name], "load": machine["load"],
                                 "torchmetrics_over_this": med["torchmetrics"] / t})
                    print(json.dumps(rows[-1]), flush=True)
    return rows


def print_contention(rows: list[dict]) -> None:
    print(f"\n{'background':<22} {'threads':>7}  {'implementation':<44} {'seconds':>8} {'tm / this':>9}  load")
    for r in rows:
        bg = "idle (as the machine is)" if not r["busy_processes"] else f"{r['busy_processes']} busy processes"
        print(f"{bg:<22} {r['threads']:>7}  {r['impl']:<44} {r['seconds']:>8.3f} {r['torchmetrics_over_this']:>9.2f}"
              f"  {r['load']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--contention", action="store_true", help="ECE at 1 and 2 threads, idle and under load")
    parser.add_argument("--contention-n", type=int, default=10_000_000)
    parser.add_argument("--load", type=int, default=2, help="busy processes for the loaded half of --contention")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--netcal-max", type=int, default=10_000_000, help="largest N given to netcal")
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    if args.contention:
        from _machine import describe

        print(json.dumps(describe()))
        rows = contention(args.contention_n, 10, max(args.repeat, 5) if args.repeat == 3 else args.repeat, args.load)
        print_contention(rows)
        if args.out:
            Path(args.out).write_text(json.dumps(rows, indent=1))
        return
    torch.set_num_threads(args.threads)
    cases = [(100_000, 10)] if args.quick else [(100_000, 10), (1_000_000, 10), (1_000_000, 100), (10_000_000, 10)]
    rows = []
    for n, k in cases:
        rows += run_case(n, k, 1 if n >= 10_000_000 else args.repeat, args.netcal_max)
    print()
    print(f"{'N':>9} {'K':>4}  {'metric':<14} {'implementation':<34} {'seconds':>9} {'peak MB':>9} {'abs error':>10} {'ratio':>7}")
    for r in rows:
        base = next(b for b in rows if (b["N"], b["K"], b["metric"], b["impl"]) == (r["N"], r["K"], r["metric"], "caltrain"))
        err = "-" if r["abs_error"] is None else f"{r['abs_error']:.1e}"
        print(
            f"{r['N']:>9} {r['K']:>4}  {r['metric']:<14} {r['impl']:<34} {r['seconds']:>9.3f} {r['peak_mb']:>9.1f} "
            f"{err:>10} {r['seconds'] / base['seconds']:>7.2f}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
