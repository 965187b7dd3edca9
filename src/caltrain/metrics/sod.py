"""Salient-object-detection metrics: MAE, F-measure, S-measure, E-measure, as pysodmetrics defines them.

The SOD convention (Fan et al.; the ``pysodmetrics`` package, which the tests compare against) computes every
metric **per image** and averages over images (unlike :mod:`caltrain.metrics.dense`, which pools pixels).
Each map ``s`` (foreground probability in [0, 1]) is first min-max normalised per image when it is not
constant (``minmax=True``, as pysodmetrics does; ``minmax=False`` skips it); the ground truth is a {0, 1} mask
(pysodmetrics binarises 8-bit masks at ``> 128``: pass ``gt > 128`` for PNG masks, and ``png / 255`` as the map).
With ``q = floor(255 s)`` the 256 thresholds ``t = 255, ..., 0`` predict foreground where ``q >= t``:

- ``mae``: mean ``|s - y|``;
- F-measure, ``beta2 = 0.3``: ``F = (1 + beta2) P R / (beta2 P + R)`` (0 when ``P R = 0``) at every threshold;
  the per-image curves are averaged over images, then ``max_f`` / ``mean_f`` are the max / mean over
  thresholds of that mean curve; ``adp_f`` at the adaptive threshold ``min(2 mean(s), 1)`` (on ``s``, not ``q``);
- S-measure (Fan et al. 2017), ``alpha = 0.5``: ``alpha S_object + (1 - alpha) S_region`` clipped at 0, ``1 -
  mean(s)`` for an empty mask, ``mean(s)`` for a full one;
- E-measure (Fan et al. 2018): the enhanced-alignment sum over the four (prediction, truth) parts of a binarised
  map divided by ``H W - 1``; ``max_e`` / ``mean_e`` over the 256 thresholds of the image-averaged curve,
  ``adp_e`` at the adaptive threshold. As in pysodmetrics (and the authors' MATLAB code) the sum is divided by
  ``H W - 1``, so a perfect map scores ``H W / (H W - 1)``, slightly above 1.

Verified against pysodmetrics 1.6.2 (``MAE``, ``Fmeasure`` and ``FmeasureV2``, ``Smeasure``, ``Emeasure``) to
1e-15 on random 8-bit maps, empty / full / one-pixel / gray masks, constant and narrow maps (tests/metrics/
test_sod*.py, with an independent NumPy reference that runs without it). One deliberate difference: when the
mask's centroid lies in the last row or column, one S-measure quadrant is empty; its weight is 0 and its term is
left out here, where pysodmetrics (like the MATLAB code) averages an empty array and returns NaN.

:class:`SODMetrics` streams them: its state is the per-image sums (two 256-point curves and five scalars), so
memory does not grow with the number of images; images in one ``update`` share a size, batches may differ.
S-measure splits each image at its own mask centroid and is computed image by image; everything else is
vectorised over the batch.

Example:
    >>> import torch
    >>> y = torch.zeros(1, 8, 8, dtype=torch.long); y[:, 2:6, 2:6] = 1
    >>> out = sod_metrics(y.double(), y)        # a perfect map
    >>> [round(out[k], 6) for k in ("mae", "max_f", "s_measure", "max_e")]
    [0.0, 1.0, 1.0, 1.015873]
"""

from __future__ import annotations

from typing import Any

import torch

from caltrain.metrics.streaming import StreamingMetric
from caltrain.utils.checks import as_tensor, check_number

__all__ = ["SOD_KEYS", "SODMetrics", "sod_metrics"]

#: Keys of :func:`sod_metrics` / :meth:`SODMetrics.compute`.
SOD_KEYS = ("mae", "max_f", "mean_f", "adp_f", "s_measure", "max_e", "mean_e", "adp_e", "n_images")

_EPS = 2.220446049250313e-16  # np.spacing(1), pysodmetrics' EPS


def _as_maps(probs: Any, targets: Any) -> tuple[torch.Tensor, torch.Tensor]:
    s = as_tensor(probs, "probs")
    y = as_tensor(targets, "targets", device=s.device)
    if not s.is_floating_point():
        raise TypeError(f"probs: expected floating-point maps in [0, 1], got dtype {s.dtype}")
    if s.ndim == 4 and s.shape[1] == 1:
        s = s[:, 0]
    if y.ndim == 4 and y.shape[1] == 1:
        y = y[:, 0]
    if s.ndim == 2:
        s, y = s[None], y[None] if y.ndim == 2 else y
    if s.ndim != 3 or s.shape != y.shape:
        raise ValueError(
            f"targets: expected maps [N, 1, H, W] / [N, H, W] / [H, W] and masks of the same shape, got probs "
            f"{list(as_tensor(probs, 'probs').shape)} and targets {list(as_tensor(targets, 'targets').shape)}"
        )
    if s.numel() == 0 or s.shape[1] * s.shape[2] < 2:
        raise ValueError(f"probs: expected non-empty maps of at least 2 pixels, got shape {list(s.shape)}")
    lo, hi = (float(v) for v in torch.aminmax(s))
    if not (lo >= 0 and hi <= 1):  # also catches NaN
        raise ValueError(f"probs: expected maps in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    if y.dtype != torch.bool:
        bad = int(((y != 0) & (y != 1)).sum())
        if bad:
            raise ValueError(f"targets: expected masks in {{0, 1}} (binarise 8-bit masks with > 128), found {bad} "
                             "other value(s)")
    return s.to(torch.float64), y != 0


def _minmax(s: torch.Tensor) -> torch.Tensor:
    flat = s.reshape(s.shape[0], -1)
    lo, hi = flat.min(1).values, flat.max(1).values
    span = hi - lo
    norm = (flat - lo[:, None]) / torch.where(span > 0, span, torch.ones_like(span))[:, None]
    return torch.where((span > 0)[:, None], norm, flat).reshape(s.shape)


def _f_measure(tp: torch.Tensor, pred_pos: torch.Tensor, gt_pos: torch.Tensor, beta2: float) -> torch.Tensor:
    precision = tp / pred_pos.clamp(min=1)
    recall = tp / gt_pos.clamp(min=1)
    num = (1 + beta2) * precision * recall
    den = torch.where(num == 0, torch.ones_like(num), beta2 * precision + recall)
    return num / den


def _e_measure(fg_fg: torch.Tensor, fg_bg: torch.Tensor, gt_fg: torch.Tensor, size: int) -> torch.Tensor:
    """Enhanced-alignment measure from the counts of a binarised map (pysodmetrics' closed form), any shape."""
    pred_fg = fg_fg + fg_bg
    pred_bg = size - pred_fg
    bg_fg = gt_fg - fg_fg
    bg_bg = pred_bg - bg_fg
    mp, mg = pred_fg / size, gt_fg / size
    total = torch.zeros_like(pred_fg)
    for count, a, b in (
        (fg_fg, 1 - mp, 1 - mg), (fg_bg, 1 - mp, -mg), (bg_fg, -mp, 1 - mg), (bg_bg, -mp, -mg),
    ):
        align = 2 * a * b / (a * a + b * b + _EPS)
        total = total + (align + 1).square() / 4 * count
    total = torch.where(gt_fg == 0, pred_bg, torch.where(gt_fg == size, pred_fg, total))
    return total / (size - 1 + _EPS)


def _ssim(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    n = pred.numel()
    x, y = pred.mean(), gt.mean()
    sx = (pred - x).square().sum() / (n - 1 + _EPS)
    sy = (gt - y).square().sum() / (n - 1 + _EPS)
    sxy = ((pred - x) * (gt - y)).sum() / (n - 1 + _EPS)
    a = 4 * x * y * sxy
    b = (x * x + y * y) * (sx + sy)
    if a != 0:
        return a / (b + _EPS)
    return torch.ones((), dtype=pred.dtype) if b == 0 else torch.zeros((), dtype=pred.dtype)


def _s_object(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean()
    std = x.std(correction=1) if x.numel() > 1 else torch.zeros((), dtype=x.dtype)  # one pixel: 0, as pysodmetrics
    return 2 * mean / (mean * mean + 1 + std + _EPS)


def _s_measure(pred: torch.Tensor, gt: torch.Tensor, alpha: float) -> float:
    """S-measure of one map ``[H, W]`` float64 and mask ``[H, W]`` bool (Fan et al. 2017, pysodmetrics)."""
    y = float(gt.double().mean())
    if y == 0:
        return float(1 - pred.mean())
    if y == 1:
        return float(pred.mean())
    g = gt.double()
    obj = _s_object(pred[gt]) * y + _s_object(1 - pred[~gt]) * (1 - y)
    h, w = gt.shape
    idx = gt.nonzero().double().mean(0)
    cy, cx = (int(torch.round(v)) + 1 for v in idx)  # numpy rounds half to even, as torch.round
    area = h * w
    w1 = cx * cy / area
    w2 = cy * (w - cx) / area
    w3 = (h - cy) * cx / area
    w4 = 1 - w1 - w2 - w3
    parts = [(slice(0, cy), slice(0, cx)), (slice(0, cy), slice(cx, w)), (slice(cy, h), slice(0, cx)),
             (slice(cy, h), slice(cx, w))]
    region = 0.0
    for weight, (r, c) in zip((w1, w2, w3, w4), parts):
        p, t = pred[r, c], g[r, c]
        region = region + weight * (_ssim(p, t) if p.numel() else torch.zeros((), dtype=torch.float64))
    return max(0.0, float(alpha * obj + (1 - alpha) * region))


class SODMetrics(StreamingMetric):
    """Streaming SOD metrics (module docstring): ``update(probs, targets)`` with maps ``[B, 1, H, W]`` or ``[B, H, W]``.

    Args:
        beta2: F-measure weight (0.3, the SOD standard).
        alpha: S-measure weight (0.5).
        minmax: min-max normalise each non-constant map first (pysodmetrics does).
    """

    def __init__(self, *, beta2: float = 0.3, alpha: float = 0.5, minmax: bool = True, **kwargs: Any) -> None:
        self.beta2 = float(check_number(beta2, "beta2", low=0))
        self.alpha = float(check_number(alpha, "alpha", low=0, high=1))
        self.minmax = bool(minmax)
        super().__init__(**kwargs)

    def update(self, probs: Any, targets: Any) -> None:  # type: ignore[override]
        """Add a batch of same-sized maps and their {0, 1} masks."""
        s, gt = _as_maps(probs, targets)
        if self.minmax:
            s = _minmax(s)
        n, h, w = s.shape
        size = h * w
        flat, g = s.reshape(n, -1), gt.reshape(n, -1)
        gt_fg = g.sum(1, dtype=torch.float64)
        q = (flat * 255).to(torch.long).clamp_(0, 255)  # truncation, as numpy's astype(uint8)
        offset = (torch.arange(n, device=s.device) * 256)[:, None]
        idx = (q + offset).reshape(-1)
        fg_hist = torch.bincount(idx, weights=g.reshape(-1).double(), minlength=256 * n).reshape(n, 256)
        all_hist = torch.bincount(idx, minlength=256 * n).reshape(n, 256).double()
        tp = fg_hist.flip(-1).cumsum(-1)  # column j: threshold 255 - j
        pred_pos = all_hist.flip(-1).cumsum(-1)
        f_curve = _f_measure(tp, pred_pos, gt_fg[:, None], self.beta2)
        e_curve = _e_measure(tp, pred_pos - tp, gt_fg[:, None], size)
        thr = (2 * flat.mean(1)).clamp(max=1)[:, None]
        binary = flat >= thr
        a_tp = (binary & g).sum(1, dtype=torch.float64)
        a_pos = binary.sum(1, dtype=torch.float64)
        adp_f = torch.where(a_tp == 0, torch.zeros_like(a_tp), _f_measure(a_tp, a_pos, gt_fg, self.beta2))
        adp_e = _e_measure(a_tp, a_pos - a_tp, gt_fg, size)
        sm = torch.tensor([_s_measure(s[i], gt[i], self.alpha) for i in range(n)], dtype=torch.float64)
        new = {
            "n_images": torch.tensor(float(n), dtype=torch.float64),
            "mae": (flat - g.double()).abs().mean(1).sum(),
            "f_curve": f_curve.sum(0),
            "adp_f": adp_f.sum(),
            "s_measure": sm.sum().to(s.device),
            "e_curve": e_curve.sum(0),
            "adp_e": adp_e.sum(),
        }
        for name, value in new.items():
            value = value.to(s.device)
            old = self._state.get(name)
            self._state[name] = value if old is None else old + value.to(old.device)

    def _finalize(self, state: dict[str, torch.Tensor]) -> dict[str, float]:
        n = state["n_images"]
        f, e = state["f_curve"] / n, state["e_curve"] / n
        values = {
            "mae": state["mae"] / n, "max_f": f.max(), "mean_f": f.mean(), "adp_f": state["adp_f"] / n,
            "s_measure": state["s_measure"] / n, "max_e": e.max(), "mean_e": e.mean(), "adp_e": state["adp_e"] / n,
            "n_images": n,
        }
        flat = torch.stack([v.to(torch.float64).cpu() for v in values.values()]).tolist()
        return dict(zip(values, flat))

    def curves(self) -> dict[str, torch.Tensor]:
        """The image-averaged F-measure and E-measure curves ``[256]``, index ``j`` = threshold ``255 - j``."""
        state = self.state()
        return {"f_measure": state["f_curve"] / state["n_images"], "e_measure": state["e_curve"] / state["n_images"]}


def sod_metrics(
    probs: Any, targets: Any, *, beta2: float = 0.3, alpha: float = 0.5, minmax: bool = True
) -> dict[str, float]:
    """MAE, max/mean/adaptive F-measure, S-measure, max/mean/adaptive E-measure averaged over images.

    ``probs``: ``[N, 1, H, W]``, ``[N, H, W]`` or ``[H, W]`` maps in [0, 1]; ``targets``: {0, 1} masks of the
    same spatial shape. Keys: :data:`SOD_KEYS`. See the module docstring for the definitions.
    """
    metric = SODMetrics(beta2=beta2, alpha=alpha, minmax=minmax, sync=False)
    metric.update(probs, targets)
    return metric.compute()
