"""Benchmark: pooled pixel ECE of a dense binary split, caltrain streaming vs the authors' loop vs torchmetrics.

    python bench/dense_metrics.py                         # 100 and 25 images of 1024 x 1024 (BENCHMARKS.md)
    python bench/dense_metrics.py --threads 0             # the same with torch's default number of threads
    python bench/dense_metrics.py --images 4 --size 256   # seconds, to check that it runs

Every image is a seeded 8-bit saliency map (a disc, an over-confident blurred map plus noise, saturated far from
the edge) with its 0/255 mask, generated outside the timers. Each method gets the maps in the form its user holds
them: float maps ``k / 255`` as a model hands them over (``caltrain``: float32, ``caltrain-float64``,
``torchmetrics``: float32; converted outside the timers), the 8-bit maps as read from PNG files (the authors'
loops, ``caltrain-uint8``); the same values, so the ECEs agree (float32 ``k / 255`` can fall in another bin than
the float64 quotient at an edge such as 153 / 255). Methods (10 equal-width bins, predicted foreground
``s >= 0.5``, confidence ``max(s, 1 - s)``):

- ``caltrain``: :class:`caltrain.metrics.DenseCalibration`, ``update`` image by image (default input checks
  on), ``compute()`` at the end: ECE, OE, UE, accuracy, NLL, Brier from O(n_bins) float64 sums;
- ``caltrain-uint8``: the same class fed the 8-bit maps (read as ``k / 255``, as the authors read them);
- ``caltrain-float64``: the same class fed float64 maps (the general exact route);
- ``authors``: the per-image loop of Carlisle-Liu/ASLP ``ECE.py`` (``ECE_EW``) as written, without the file
  reading and the plot: torch float32, per image a Python loop over the bins, each selecting its pixels with a
  mask several times (sums in float32, as theirs);
- ``authors-numpy``: the same loop made lean, in NumPy float64 (each bin's mask used once): a stronger
  baseline than the authors' code;
- ``torchmetrics``: ``BinaryCalibrationError(n_bins=10, norm="l1")`` fed the flattened pixels image by image
  as ``(confidence, correct)`` (the same top-label quantity); it keeps every pixel until ``compute()``.

Each (method, number of images) runs in a fresh subprocess on a pool of 8 distinct images cycled (the data in
memory does not grow with the number of images). Time: wall clock and CPU time of every update (mask
binarisation included for every method) and the final ``compute`` (the CPU time of the calling thread with one
torch thread, which on a shared machine is the fairer ratio: the wall clock also counts the time the process
waited for a core; of the whole process with several threads); memory: the peak resident set above
its level before the first update, sampled every 1 ms (``measure`` of ``bench/metrics.py``), and, for NumPy,
the ``tracemalloc`` peak.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import torch

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SRC)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import measure  # noqa: E402  (bench/metrics.py: time and RSS sampled every 1 ms)

METHODS = ("caltrain", "caltrain-uint8", "caltrain-float64", "authors", "authors-numpy", "torchmetrics")


def image(i: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded 8-bit map and 0/255 mask of one image (a disc, a blurred over-confident map plus noise)."""
    g = torch.Generator().manual_seed(i)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    c = torch.rand(3, generator=g)
    d = ((yy - c[0] * size) ** 2 + (xx - c[1] * size) ** 2).float().sqrt() - (0.1 + 0.3 * c[2]) * size
    gt = (d < 0).to(torch.uint8) * 255
    logit = -d / (0.02 * size) + 1.5 * torch.randn(size, size, generator=g)
    pred = (torch.sigmoid(logit) * 255).round().to(torch.uint8)
    return pred.numpy(), gt.numpy()


def run_one(method: str, n_images: int, size: int, threads: int) -> dict:
    """Feed ``n_images`` images (a pool of 8 distinct ones, cycled) to one method; time and peak extra memory."""
    if threads > 0:
        torch.set_num_threads(threads)
    n_pool = min(n_images, 8)
    pool: list = [image(i, size) for i in range(n_pool)]
    if method in ("caltrain", "caltrain-float64", "torchmetrics"):  # maps as a model hands them over
        dtype = torch.float64 if method == "caltrain-float64" else torch.float32
        pool = [(torch.from_numpy(pred).to(dtype).div_(255), gt) for pred, gt in pool]
    stream = (pool[i % n_pool] for i in range(n_images))
    if method.startswith("caltrain"):
        from caltrain.metrics import DenseCalibration

        metric = DenseCalibration(n_bins=10)
        if method == "caltrain-uint8":
            def feed(pred, gt):
                metric.update(torch.from_numpy(pred)[None], torch.from_numpy(gt > 127)[None])
        else:
            def feed(pred, gt):
                metric.update(pred[None], torch.from_numpy(gt > 127)[None])
        finish = metric.compute
    elif method == "authors":
        state = _AuthorsTorch(n_images)
        feed, finish = state.step, state.finish
    elif method == "authors-numpy":
        state_np: list = []
        feed = lambda pred, gt: _authors_numpy_state(pred, gt, state_np)  # noqa: E731
        finish = lambda: _authors_numpy_finish(state_np)  # noqa: E731
    elif method == "torchmetrics":
        from torchmetrics.classification import BinaryCalibrationError

        metric = BinaryCalibrationError(n_bins=10, norm="l1")

        def feed(pred, gt):
            s = pred.reshape(-1)
            fg = s >= 0.5
            metric.update(torch.where(fg, s, 1 - s), (fg == torch.from_numpy(gt > 127).reshape(-1)).long())

        finish = lambda: {"ece": float(metric.compute())}  # noqa: E731
    else:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")

    def run() -> dict:
        for pred, gt in stream:
            feed(pred, gt)
        return finish()

    numpy_peak = None
    if method == "authors-numpy":
        tracemalloc.start()
    cpu = [0.0]

    def timed() -> dict:
        # CPU time of this thread (one torch thread: all the work; the 1 ms RSS sampler thread is not counted);
        # with several torch threads, of the whole process (the sampler included)
        clock = time.thread_time if torch.get_num_threads() == 1 else time.process_time
        start = clock()
        result = run()
        cpu[0] = clock() - start
        return result

    seconds, extra, out = measure(timed, 1)
    cpu = cpu[0]
    if method == "authors-numpy":
        numpy_peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return {"method": method, "images": n_images, "size": size, "threads": torch.get_num_threads(),
            "seconds": seconds, "cpu_seconds": cpu, "extra_peak_mb": extra / 2**20, "tracemalloc_mb": numpy_peak,
            **{k: float(v) for k, v in out.items() if k in ("ece", "oe", "accuracy")}}


class _AuthorsTorch:
    """The loop of Carlisle-Liu/ASLP ``ECE.py`` ``ECE_EW`` (torch float32), images given instead of read.

    Per image: the map ``k / 255.0`` in float32, the prediction thresholded at 128, confidence
    ``max(s, 1 - s)``; per bin ``(lo, hi]`` (``torch.linspace`` float32 edges) a mask, the bin's confidence sum,
    correct count, pixel count, and its per-image mean confidence and accuracy (kept for their plot). At the
    end ECE, OE and accuracy from the pooled sums, with their ``+ 1e-6`` in the denominators.
    """

    def __init__(self, n_images: int, n_bins: int = 10) -> None:
        edges = torch.linspace(0, 1, steps=n_bins + 1)
        self.lowers, self.uppers = edges[:-1], edges[1:]
        self.acc, self.conf, self.bins = torch.zeros(n_bins), torch.zeros(n_bins), torch.zeros(n_bins)
        self.x_coords = np.zeros((n_bins, n_images))
        self.y_coords = np.zeros((n_bins, n_images))
        self.i = 0

    def step(self, pred_u8: np.ndarray, gt_u8: np.ndarray) -> None:
        i = self.i
        pred = torch.tensor(pred_u8.flatten()) / 255.0
        pred_bi = torch.tensor(pred_u8.flatten())
        pred_bi[pred_bi < 128] = 0
        pred_bi[pred_bi > 127] = 255
        gt = torch.tensor(gt_u8.flatten())
        confidences = torch.maximum(pred, 1.0 - pred)
        for j, (lo, hi) in enumerate(zip(self.lowers, self.uppers)):
            in_bin = confidences.gt(lo) * confidences.le(hi)
            if len(confidences[in_bin]) > 0:
                self.conf[j] = self.conf[j] + torch.sum(confidences[in_bin])
                self.x_coords[j][i] = torch.mean(confidences[in_bin]).item()
                correct = pred_bi[in_bin] == gt[in_bin]
                self.acc[j] = self.acc[j] + len(correct.masked_select(correct == True))  # noqa: E712 (theirs)
                self.bins[j] = self.bins[j] + len(confidences[in_bin])
                self.y_coords[j][i] = len(correct.masked_select(correct == True)) / len(confidences[in_bin])  # noqa: E712
        self.i += 1

    def finish(self) -> dict:
        n_total = torch.sum(self.bins)
        acc = self.acc / (self.bins + 1e-6)
        conf = self.conf / (self.bins + 1e-6)
        w = self.bins / n_total
        ece = float((torch.abs(conf - acc) * w).sum())
        oe = float(torch.where(conf > acc, torch.abs(conf - acc) * conf * w, torch.zeros(())).sum())
        return {"ece": ece, "oe": oe, "accuracy": float(self.acc.sum() / n_total)}


_EDGES = np.linspace(0, 1, 11)


def _authors_numpy_state(pred_u8: np.ndarray, gt: np.ndarray, acc_list: list) -> None:
    """One image of the authors' loop made lean, in NumPy float64: per bin one mask and three sums."""
    if not acc_list:
        acc_list.append(np.zeros((3, 10)))
    state = acc_list[0]
    pred = pred_u8.reshape(-1) / 255.0
    pred_bi = np.where(pred_u8.reshape(-1) > 127, 255, 0)
    g = gt.reshape(-1)
    confidences = np.maximum(pred, 1.0 - pred)
    for j in range(10):
        in_bin = (confidences > _EDGES[j]) & (confidences <= _EDGES[j + 1])
        if in_bin.any():
            state[1, j] += confidences[in_bin].sum()
            state[0, j] += np.count_nonzero(pred_bi[in_bin] == g[in_bin])
            state[2, j] += np.count_nonzero(in_bin)


def _authors_numpy_finish(acc_list: list) -> dict:
    acc, conf, bins = acc_list[0]
    n = bins.sum()
    a, c = acc / (bins + 1e-6), conf / (bins + 1e-6)
    return {
        "ece": float((np.abs(c - a) * bins / n).sum()),
        "oe": float((np.where(c > a, np.abs(c - a) * c, 0) * bins / n).sum()),
        "accuracy": float(acc.sum() / n),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, nargs="+", default=[100, 25])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    ap.add_argument("--threads", type=int, default=1, help="torch threads in each run (0: torch's default)")
    ap.add_argument("--child", nargs=4, metavar=("METHOD", "IMAGES", "SIZE", "THREADS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        method, n, size, threads = args.child
        print(json.dumps(run_one(method, int(n), int(size), int(threads))))
        return
    print(f"load: {os.getloadavg()}  cpus: {os.cpu_count()}  torch {torch.__version__}", flush=True)
    rows = []
    for n in args.images:
        for method in args.methods:
            res = subprocess.run(
                [sys.executable, __file__, "--child", method, str(n), str(args.size), str(args.threads)],
                capture_output=True, text=True, check=True,
            )
            row = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"load after: {os.getloadavg()}")
    print("\n| images | method | threads | wall s | CPU s | peak extra RSS (MB) | ECE | "
          "authors' loop / this (wall, CPU) | lean NumPy loop / this (wall, CPU) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.images:
        here = [r for r in rows if r["images"] == n]

        def ref(name: str) -> tuple[float, float]:
            r = next((r for r in here if r["method"] == name), None)
            return (r["seconds"], r["cpu_seconds"]) if r else (float("nan"), float("nan"))

        (aw, ac), (nw, nc) = ref("authors"), ref("authors-numpy")
        for r in here:
            print(f"| {n} x {r['size']}^2 | {r['method']} | {r['threads']} | {r['seconds']:.2f} | "
                  f"{r['cpu_seconds']:.2f} | {r['extra_peak_mb']:.0f} | {r['ece']:.6f} | "
                  f"{aw / r['seconds']:.1f}, {ac / r['cpu_seconds']:.1f} | "
                  f"{nw / r['seconds']:.1f}, {nc / r['cpu_seconds']:.1f} |")


if __name__ == "__main__":
    main()
