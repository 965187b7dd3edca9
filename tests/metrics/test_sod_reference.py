"""SOD metrics against an independent per-image NumPy reference written from pysodmetrics' published definitions.

The reference follows pysodmetrics 1.6.2 (``MAE``, ``Fmeasure``, ``Smeasure``, ``Emeasure``; lartpang/PySODMetrics)
image by image with loops and masks, where caltrain's :class:`SODMetrics` is batched (histograms, cumulative
sums): maps ``k / 255`` min-max normalised when not constant, masks binarised at ``> 128``, F-measure with
``beta^2 = 0.3`` on the 256 thresholds of ``floor(255 s)`` (``max_f`` / ``mean_f`` of the image-averaged curve)
and at the adaptive threshold ``min(2 mean(s), 1)``, S-measure ``alpha = 0.5`` with the quadrants split at the
rounded foreground centroid + 1, E-measure over the four (prediction, truth) parts divided by ``H W - 1``.

One deliberate difference: when the foreground centroid lies in the last row or column a quadrant is empty;
its weight is 0 and caltrain (and this reference) leave its term out, where pysodmetrics (like the authors'
MATLAB code) takes the mean of an empty array and returns NaN for the image's S-measure.
"""

import math

import numpy as np
import pytest
import torch

from caltrain.metrics.sod import SODMetrics, sod_metrics

EPS = np.spacing(1)


def ref_image(pred_u8, gt_u8, beta2=0.3, alpha=0.5):
    """Per-image MAE, F curve [256] (thresholds 255..0), adaptive F, S-measure, E curve [256], adaptive E."""
    gt = gt_u8 > 128
    pred = pred_u8 / 255.0
    if pred.max() != pred.min():
        pred = (pred - pred.min()) / (pred.max() - pred.min())
    h, w = gt.shape
    size = h * w
    fg = int(gt.sum())
    q = (pred * 255).astype(np.uint8)

    def counts(binary):
        return int((binary & gt).sum()), int((binary & ~gt).sum())

    def f_measure(tp, pos):
        if tp == 0:
            return 0.0
        p, r = tp / max(pos, 1), tp / max(fg, 1)
        return (1 + beta2) * p * r / (beta2 * p + r)

    def e_measure(tp, fp):
        pred_fg = tp + fp
        if fg == 0:
            total = size - pred_fg
        elif fg == size:
            total = pred_fg
        else:
            mp, mg = pred_fg / size, fg / size
            parts = [(tp, 1 - mp, 1 - mg), (fp, 1 - mp, -mg), (fg - tp, -mp, 1 - mg),
                     (size - pred_fg - (fg - tp), -mp, -mg)]
            total = sum(n * ((2 * a * b / (a * a + b * b + EPS)) + 1) ** 2 / 4 for n, a, b in parts)
        return total / (size - 1 + EPS)

    f_curve, e_curve = [], []
    for t in range(255, -1, -1):
        tp, fp = counts(q >= t)
        f_curve.append(f_measure(tp, tp + fp))
        e_curve.append(e_measure(tp, fp))
    thr = min(2 * pred.mean(), 1)
    tp, fp = counts(pred >= thr)
    return {
        "mae": np.abs(pred - gt).mean(), "f_curve": np.array(f_curve), "adp_f": f_measure(tp, tp + fp),
        "s_measure": s_measure(pred, gt, alpha), "e_curve": np.array(e_curve), "adp_e": e_measure(tp, fp),
    }


def s_measure(pred, gt, alpha):
    y = gt.mean()
    if y == 0:
        return 1 - pred.mean()
    if y == 1:
        return pred.mean()

    def s_object(x):
        std = x.std(ddof=1) if x.size > 1 else 0.0
        return 2 * x.mean() / (x.mean() ** 2 + 1 + std + EPS)

    def ssim(p, g):
        n = p.size
        x, yy = p.mean(), g.mean()
        sx = ((p - x) ** 2).sum() / (n - 1 + EPS)
        sy = ((g - yy) ** 2).sum() / (n - 1 + EPS)
        sxy = ((p - x) * (g - yy)).sum() / (n - 1 + EPS)
        a, b = 4 * x * yy * sxy, (x * x + yy * yy) * (sx + sy)
        return a / (b + EPS) if a != 0 else (1.0 if b == 0 else 0.0)

    obj = y * s_object(pred[gt]) + (1 - y) * s_object(1 - pred[~gt])
    h, w = gt.shape
    cy, cx = (int(v) + 1 for v in np.argwhere(gt).mean(axis=0).round())
    g = gt.astype(np.float64)
    region = 0.0
    for rows, cols in ((slice(0, cy), slice(0, cx)), (slice(0, cy), slice(cx, w)), (slice(cy, h), slice(0, cx)),
                       (slice(cy, h), slice(cx, w))):
        p, t = pred[rows, cols], g[rows, cols]
        if p.size:  # an empty quadrant has weight 0 (pysodmetrics: NaN, see the module docstring)
            region += p.size / (h * w) * ssim(p, t)
    return max(0.0, alpha * obj + (1 - alpha) * region)


def ref_dataset(images):
    per = [ref_image(p, g) for p, g in images]
    f = np.mean([r["f_curve"] for r in per], axis=0)
    e = np.mean([r["e_curve"] for r in per], axis=0)
    mean = {k: float(np.mean([r[k] for r in per])) for k in ("mae", "adp_f", "s_measure", "adp_e")}
    return {**mean, "max_f": f.max(), "mean_f": f.mean(), "max_e": e.max(), "mean_e": e.mean()}


KINDS = ("random", "blob", "empty", "full", "one_pixel", "gray_mask", "constant", "narrow", "bright")


def make_image(rng, kind, h, w):
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    g = (rng.random((h, w)) < rng.uniform(0.05, 0.6)).astype(np.uint8) * 255
    if kind == "blob":
        r = min(h, w) * rng.uniform(0.1, 0.4)
        g = (((i - h * rng.random()) ** 2 + (j - w * rng.random()) ** 2) < r * r).astype(np.uint8) * 255
    elif kind in ("empty", "one_pixel"):
        g[:] = 0
        if kind == "one_pixel":
            g[rng.integers(h - 1), rng.integers(w - 1)] = 255  # not in the last row / column
    elif kind == "full":
        g[:] = 255
    elif kind == "gray_mask":
        g = rng.integers(0, 256, (h, w)).astype(np.uint8)
    p = np.clip(g * rng.uniform(0.2, 0.9) + rng.integers(0, 120, (h, w)), 0, 255).astype(np.uint8)
    if kind == "constant":
        p[:] = rng.integers(0, 256)
    elif kind == "narrow":
        p = (p // 4 + 100).astype(np.uint8)
    elif kind == "bright":
        p = np.clip(p.astype(int) + 150, 0, 255).astype(np.uint8)  # adaptive threshold clamped at 1
    return p, g


def empty_quadrant(gt):
    """Whether the S-measure split of a mask (neither empty nor full) leaves a quadrant empty."""
    if gt.all() or not gt.any():
        return False
    cy, cx = (int(v) + 1 for v in np.argwhere(gt).mean(axis=0).round())
    return cy == gt.shape[0] or cx == gt.shape[1]


def feed(images, metric=None):
    metric = metric or SODMetrics()
    for p, g in images:
        metric.update(torch.from_numpy(p / 255.0)[None], torch.from_numpy(g > 128)[None])
    return metric.compute()


@pytest.mark.parametrize("seed", range(6))
def test_matches_numpy_reference_on_random_maps(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(3, 40)), int(rng.integers(3, 40))
    images = [make_image(rng, KINDS[(seed + k) % len(KINDS)], h, w) for k in range(len(KINDS))]
    out, ref = feed(images), ref_dataset(images)
    for key, value in ref.items():
        assert out[key] == pytest.approx(value, abs=1e-12), key
    batched = sod_metrics(torch.stack([torch.from_numpy(p / 255.0) for p, _ in images]),
                          torch.stack([torch.from_numpy(g > 128) for _, g in images]))
    assert batched == pytest.approx(out, abs=1e-12)


@pytest.mark.parametrize("where", ["last_column", "last_row", "corner"])
def test_centroid_in_the_last_row_or_column(where):
    """An empty quadrant (weight 0) leaves the S-measure finite (pysodmetrics returns NaN there)."""
    rng = np.random.default_rng(4)
    p = rng.integers(0, 256, (7, 9)).astype(np.uint8)
    g = np.zeros((7, 9), np.uint8)
    rows, cols = {"last_column": (slice(2, 5), 8), "last_row": (6, slice(1, 4)), "corner": (6, 8)}[where]
    g[rows, cols] = 255
    out = feed([(p, g)])
    assert math.isfinite(out["s_measure"])
    assert out["s_measure"] == pytest.approx(ref_dataset([(p, g)])["s_measure"], abs=1e-12)


def test_conventions_by_hand():
    """beta^2 = 0.3 (not 0.3^2), thresholds on floor(255 s) with >=, adaptive threshold min(2 mean, 1)."""
    gt = np.zeros((1, 4), np.uint8)
    gt[0, :2] = 255
    pred = np.array([[255, 128, 128, 0]], np.uint8)  # min-max: 1, 0.502, 0.502, 0
    out = feed([(pred, gt)])
    # threshold 255: TP 1, P 1, R 1/2 -> F = 1.3 * 0.5 / (0.3 + 0.5) = 0.8125; thresholds 128..1: P = 2/3, R = 1
    f_high, f_mid = 1.3 * 0.5 / (0.3 + 0.5), 1.3 * (2 / 3) / (0.3 * 2 / 3 + 1)
    assert out["max_f"] == pytest.approx(max(f_high, f_mid), abs=1e-12)
    # the curve: 127 thresholds (255..129) at f_high, 128 (128..1) at f_mid, threshold 0 at P = 1/2, R = 1
    f_zero = 1.3 * 0.5 / (0.3 * 0.5 + 1)
    assert out["mean_f"] == pytest.approx((127 * f_high + 128 * f_mid + f_zero) / 256, abs=1e-12)
    # adaptive: 2 * mean = 1.0039 -> clamped to 1 -> only the 255 pixel is foreground
    assert out["adp_f"] == pytest.approx(f_high, abs=1e-12)


def test_against_pysodmetrics_random_kinds():
    """The same random maps through pysodmetrics itself, when it is installed (not a test dependency)."""
    M = pytest.importorskip("py_sod_metrics")
    rng = np.random.default_rng(7)
    for trial in range(4):
        h, w = int(rng.integers(3, 40)), int(rng.integers(3, 40))
        images = [make_image(rng, KINDS[(trial + k) % len(KINDS)], h, w) for k in range(len(KINDS))]
        images = [(p, g) for p, g in images if not empty_quadrant(g > 128)]  # pysodmetrics: NaN there
        mae, fm, sm, em = M.MAE(), M.Fmeasure(), M.Smeasure(), M.Emeasure()
        for p, g in images:
            for m in (mae, fm, sm, em):
                m.step(p, g)
        out = feed(images)
        f, e = fm.get_results()["fm"], em.get_results()["em"]
        expected = {"mae": mae.get_results()["mae"], "max_f": f["curve"].max(), "mean_f": f["curve"].mean(),
                    "adp_f": f["adp"], "s_measure": sm.get_results()["sm"], "max_e": e["curve"].max(),
                    "mean_e": e["curve"].mean(), "adp_e": e["adp"]}
        for key, value in expected.items():
            assert out[key] == pytest.approx(float(value), abs=1e-12), key
