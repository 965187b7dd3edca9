"""Benchmark: pooled pixel ECE of a dense binary split, caltrain streaming vs the authors' loop vs torchmetrics.

    python bench/dense_metrics.py                         # 100 and 25 images of 1024 x 1024 (BENCHMARKS.md)
    python bench/dense_metrics.py --images 4 --size 256   # seconds, to check that it runs

Every image is an 8-bit saliency map and its mask (what a SOD evaluation reads from PNG files), generated
seeded, one at a time, outside the timers. Three ways to get the pooled pixel ECE (10 equal-width bins,
predicted foreground ``s >= 0.5``, confidence ``max(s, 1 - s)``):

- ``caltrain``: :class:`caltrain.metrics.DenseCalibration`, ``update`` image by image (default input checks
  on), ``compute()`` at the end (ECE, OE, UE, accuracy, NLL, Brier from O(n_bins) float64 sums);
- ``caltrain-uint8``: the same class fed the 8-bit maps themselves (``uint8``, read as ``k / 255``, as the
  authors read their PNGs): one ``bincount`` of (level, mask) per image, the same result;
- ``authors``: the per-image evaluation loop of Carlisle-Liu/ASLP ``ECE.py`` (``ECE_EW``), reimplemented in
  NumPy here: per image, a Python loop over the bins, each selecting its pixels by mask (float64 sums);
- ``torchmetrics``: ``BinaryCalibrationError(n_bins=10, norm="l1")`` fed the flattened pixels image by image
  as ``(confidence, correct)`` (its binary metric bins the score it is given, so this gives the same
  top-label quantity); it keeps every pixel in its state until ``compute()``.

Each (method, number of images) runs in a fresh subprocess with one torch thread, on a pool of 8 distinct
images generated first and cycled (so the data in memory does not grow with the number of images); time is
that of every update (mask binarisation ``gt > 127`` included for every method) and the final ``compute``; memory
is the peak resident set above its level before the first update, sampled every 1 ms from /proc/self/statm
(``measure`` of ``bench/metrics.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

SRC = str(Path(__file__).resolve().parents[1] / "src")
sys.path.insert(0, SRC)
sys.path.insert(0, str(Path(__file__).resolve().parent))

from metrics import measure  # noqa: E402  (bench/metrics.py: time and RSS sampled every 1 ms)


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


def run_one(method: str, n_images: int, size: int) -> dict:
    """Feed ``n_images`` images (a pool of 8 distinct ones, cycled) to one method; time and peak extra RSS."""
    torch.set_num_threads(1)
    pool = [image(i, size) for i in range(min(n_images, 8))]
    stream = (pool[i % len(pool)] for i in range(n_images))
    if method in ("caltrain", "caltrain-uint8"):
        from caltrain.metrics import DenseCalibration

        metric = DenseCalibration(n_bins=10)
        if method == "caltrain":
            def feed(pred, gt):
                metric.update(torch.from_numpy(pred)[None].float().div_(255), torch.from_numpy(gt > 127)[None])
        else:
            def feed(pred, gt):
                metric.update(torch.from_numpy(pred)[None], torch.from_numpy(gt > 127)[None])
        finish = metric.compute
    elif method == "authors":
        state: list = []
        feed = lambda pred, gt: _authors_state(pred, gt, state)  # noqa: E731
        finish = lambda: _authors_finish(state)  # noqa: E731
    elif method == "torchmetrics":
        from torchmetrics.classification import BinaryCalibrationError

        metric = BinaryCalibrationError(n_bins=10, norm="l1")

        def feed(pred, gt):
            s = torch.from_numpy(pred).reshape(-1).float().div_(255)
            fg = s >= 0.5
            metric.update(torch.where(fg, s, 1 - s), (fg == torch.from_numpy(gt > 127).reshape(-1)).long())

        finish = lambda: {"ece": float(metric.compute())}  # noqa: E731
    else:
        raise ValueError(method)

    def run() -> dict:
        for pred, gt in stream:
            feed(pred, gt)
        return finish()

    seconds, extra, out = measure(run, 1)
    return {"method": method, "images": n_images, "size": size, "seconds": seconds, "extra_peak_mb": extra / 2**20,
            **out}


_EDGES = np.linspace(0, 1, 11)


def _authors_state(pred_u8: np.ndarray, gt: np.ndarray, acc_list: list) -> None:
    """One image of Carlisle-Liu/ASLP ECE.py (ECE_EW) in NumPy: per bin a mask and sums (running, in acc_list[0])."""
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


def _authors_finish(acc_list: list) -> dict:
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
    ap.add_argument("--images", type=int, nargs="+", default=[25, 100])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--methods", nargs="+", default=["caltrain", "caltrain-uint8", "authors", "torchmetrics"])
    ap.add_argument("--child", nargs=3, metavar=("METHOD", "IMAGES", "SIZE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], int(args.child[1]), int(args.child[2]))))
        return
    print(f"load: {os.getloadavg()}  cpus: {os.cpu_count()}  torch {torch.__version__}", flush=True)
    rows = []
    for n in args.images:
        for method in args.methods:
            res = subprocess.run(
                [sys.executable, __file__, "--child", method, str(n), str(args.size)],
                capture_output=True, text=True, check=True,
            )
            row = json.loads(res.stdout.strip().splitlines()[-1])
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(f"load after: {os.getloadavg()}")
    print("\n| images | method | seconds | peak extra RSS (MB) | ECE | authors' loop time / this time |")
    print("|---|---|---|---|---|---|")
    for n in args.images:
        here = [r for r in rows if r["images"] == n]
        ref = next((r["seconds"] for r in here if r["method"] == "authors"), float("nan"))
        for r in here:
            print(f"| {n} x {r['size']}^2 | {r['method']} | {r['seconds']:.2f} | {r['extra_peak_mb']:.0f} | "
                  f"{r['ece']:.6f} | {ref / r['seconds']:.1f} |")

if __name__ == "__main__":
    main()
