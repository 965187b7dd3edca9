"""Dense binary calibration: pooled pixel ECE / OE / UE, accuracy, NLL and Brier of foreground-probability maps.

Dense binary models (salient-object detection, binary segmentation, defect and lesion masks) output one
foreground probability ``s`` per pixel. Following the ASLP authors' evaluation (Carlisle-Liu/ASLP, ``ECE.py``)
every pixel is one binary prediction:

    predicted foreground  yhat = 1[s >= 0.5],   confidence  c = max(s, 1 - s),   outcome  o = 1[yhat = y],

binned into ``B`` equal-width bins ``(lo, hi]`` of ``c`` (:mod:`caltrain.metrics.binning`; with ``c >= 0.5`` the
bins below 0.5 stay empty, as in the authors' code) and **pooled over every valid pixel of the dataset** (never
an average of per-image ECEs). With ``n_b``, ``conf_b``, ``acc_b`` and ``N = sum_b n_b``:

    ECE = sum_b (n_b / N) |acc_b - conf_b|
    OE  = sum_b (n_b / N) conf_b max(conf_b - acc_b, 0)          (over-confidence error, the authors' definition)
    UE  = sum_b (n_b / N) (1 - conf_b) max(acc_b - conf_b, 0)    (its mirror: a reading, the authors define no UE)

and ``accuracy = (1/N) sum o``, ``confidence = (1/N) sum c`` (mean confidence, the OOD statistic on an
empty-mask split), ``nll = -(1/N) sum log p_y`` with ``p_y = s`` if ``y = 1`` else ``1 - s`` (clamped below at
the smallest normal float64), ``brier = (1/N) sum (s - y)^2`` (the binary Brier score: half of the two-class
multiclass Brier score of ``[1 - s, s]`` that :func:`caltrain.metrics.brier_score` reports), ``n = N``.

The top-label ECE of ``[1 - s, s]`` (:func:`caltrain.metrics.expected_calibration_error`) is the same number
except for ``s = 0.5`` exactly (there ``argmax`` picks background, this module foreground, as the authors do).

Inputs: ``probs`` ``[N, 1, *spatial]`` or ``[N, *spatial]`` foreground probabilities (or logits with
``from_logits=True``, float64 sigmoid; or ``uint8`` 8-bit maps ``k`` read as the float64 ``k / 255``, as SOD
tools and the authors read PNG predictions: a histogram shortcut, several times faster, same result; a float32
``k / 255`` is a different number and can fall in another bin when ``k / 255`` is an edge, e.g. ``153 / 255``),
``targets`` the same shape without (or with) the channel dim, values in {0, 1} (integer, bool or float; soft
targets raise: binarise them first, e.g. ``gt >= 0.5`` as the SOD convention binarises masks at 128).
``ignore_index`` drops pixels whose target equals it (e.g. 255 on object borders), ``valid_mask`` (bool, the
shape of ``targets``) keeps only the ``True`` pixels; both may be combined.

Binning: ``"uniform"`` (default, the authors') is streamed by :class:`DenseCalibration` in O(B) float64 memory,
independent of the number of images. ``"quantile"`` (equal mass) needs every confidence: the function keeps all
valid pixels (about 17 bytes a pixel plus a sort: 1.7 GB for DUTS-TE's ~10^8 pixels) and is exact; for the
streaming class it is not offered.

``per_image_mean=True`` computes every key per image and averages over images (each image weighted equally;
images with no valid pixel are left out): a named convention for comparison with papers that report it, not
the pooled metric.

Example:
    >>> import torch
    >>> s = torch.tensor([[[0.9, 0.2], [0.6, 0.5]]])        # [N=1, H=2, W=2]
    >>> y = torch.tensor([[[1, 0], [0, 1]]])
    >>> out = dense_calibration_error(s, y, n_bins=10)       # conf 0.9, 0.8, 0.6, 0.5; correct 1, 1, 0, 1
    >>> round(out["ece"], 4), round(out["accuracy"], 2), out["n"]
    (0.35, 0.75, 4.0)
    >>> round(out["oe"], 4), round(out["ue"], 4)              # 1/4 * 0.6 * 0.6 ; 1/4 (.1 .1 + .2 .2 + .5 .5)
    (0.09, 0.075)
"""

from __future__ import annotations

import math
from typing import Any

import torch

from caltrain.metrics.binning import BinStats, binned_statistics, uniform_edges
from caltrain.metrics.reliability import ReliabilityCurve
from caltrain.metrics.streaming import StreamingMetric
from caltrain.utils.checks import as_tensor, check_choice, check_finite, check_n_bins

__all__ = [
    "DENSE_KEYS",
    "DenseCalibration",
    "dense_bin_statistics",
    "dense_calibration_error",
    "dense_from_stats",
    "prepare_dense",
]

#: The keys of :func:`dense_calibration_error` and :meth:`DenseCalibration.compute`.
DENSE_KEYS = ("ece", "oe", "ue", "accuracy", "confidence", "nll", "brier", "n")

_TINY = torch.finfo(torch.float64).tiny
_BINNINGS = ("uniform", "quantile")


def prepare_dense(
    probs: Any,
    targets: Any,
    *,
    from_logits: bool = False,
    ignore_index: int | None = None,
    valid_mask: Any = None,
    validate_args: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s [M] foreground probabilities in the input's float dtype, y [M] bool)`` of the valid pixels.

    (See the module docstring; with ``from_logits`` ``s`` is the float64 sigmoid of the logits.)
    """
    s = as_tensor(probs, "probs")
    y = as_tensor(targets, "targets", device=s.device)
    if not (s.is_floating_point() or (s.dtype == torch.uint8 and not from_logits)):
        raise TypeError(
            f"probs: expected floating-point foreground probabilities (or logits), or uint8 maps k meaning k / 255, "
            f"got dtype {s.dtype}"
        )
    if s.ndim < 2:
        raise ValueError(f"probs: expected shape [N, 1, *spatial] or [N, *spatial], got shape {tuple(s.shape)}")
    if s.ndim == y.ndim + 1 and s.shape[1] == 1:
        s = s.squeeze(1)
    elif s.ndim == y.ndim and s.ndim >= 3 and s.shape[1] == 1 and y.shape[1] != 1:
        raise ValueError(f"targets: expected shape {[s.shape[0], *s.shape[2:]]} to match probs, got {list(y.shape)}")
    if s.shape != y.shape:
        raise ValueError(
            f"targets: expected shape {list(s.shape)} (or probs with a channel dim of 1) to match probs, "
            f"got probs {list(as_tensor(probs, 'probs').shape)} and targets {list(y.shape)}"
        )
    if s.numel() == 0:
        raise ValueError(f"probs: expected at least one pixel, got an empty input of shape {tuple(s.shape)}")
    s, y = s.reshape(-1), y.reshape(-1)
    keep = None
    if valid_mask is not None:
        m = as_tensor(valid_mask, "valid_mask", device=s.device)
        if m.dtype != torch.bool:
            raise TypeError(f"valid_mask: expected a bool tensor (True = evaluate), got dtype {m.dtype}")
        if m.numel() != s.numel() or (m.ndim > 1 and m.shape[0] != as_tensor(targets, "targets").shape[0]):
            raise ValueError(f"valid_mask: expected the shape of targets {list(as_tensor(targets, 'targets').shape)}, "
                             f"got {list(m.shape)}")
        keep = m.reshape(-1)
    if ignore_index is not None:
        k = y != ignore_index
        keep = k if keep is None else keep & k
    if keep is not None:
        s, y = s[keep], y[keep]
        if s.numel() == 0:
            raise ValueError("targets: no valid pixel left after ignore_index / valid_mask; nothing to evaluate")
    if validate_args:
        y_range = None if y.dtype == torch.bool or y.is_floating_point() else torch.aminmax(y)
        if y.dtype != torch.bool and (y_range is None or not 0 <= float(y_range.min) <= float(y_range.max) <= 1):
            bad = int(((y != 0) & (y != 1)).sum())
            if bad:
                hint = " (soft targets: binarise them first, e.g. targets >= 0.5)" if y.is_floating_point() else ""
                raise ValueError(f"targets: expected values in {{0, 1}}, found {bad} other value(s){hint}")
        if from_logits:
            check_finite(s, "probs")
        elif s.dtype != torch.uint8:
            lo, hi = (float(v) for v in torch.aminmax(s))
            if not (math.isfinite(lo) and math.isfinite(hi)):
                check_finite(s, "probs")
            if lo < 0 or hi > 1:
                raise ValueError(
                    f"probs: expected foreground probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}] "
                    "(if these are logits, pass from_logits=True)"
                )
    if from_logits:
        s = torch.sigmoid(s.to(torch.float64))
    return s, y if y.dtype == torch.bool else y != 0


def _float64(s: torch.Tensor) -> torch.Tensor:
    """Float64 probabilities: uint8 maps ``k`` are ``k / 255`` (the float64 quotient), floats are upcast."""
    return s.to(torch.float64).div_(255) if s.dtype == torch.uint8 else s.to(torch.float64)


def _pixel_terms(s: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(confidence, correct, p_y)`` of prepared pixels (float64, bool, float64)."""
    s = _float64(s)
    fg = s >= 0.5
    conf = torch.where(fg, s, 1 - s)
    correct = fg == y
    p_y = torch.where(correct, conf, 1 - conf)
    return conf, correct, p_y


_CHUNK = 1 << 16  # pixels per pass: the float64 temporaries stay in cache
_LANES = 8


def _chunk_terms(sc: torch.Tensor, yf: torch.Tensor, n_bins: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(cell, confidence, p_y)`` of float64 pixels ``sc`` and float64 {0, 1} targets ``yf``; cell = 2 bin + correct.

    Arithmetic only (comparisons to bool tensors and ``heaviside`` are several times slower on CPU).
    Bin: with ``m = round(c B)`` the only edge within ``0.5 / B`` of ``c`` is ``e_m = m / B`` (the float64
    ``uniform_edges`` value), so the ``(lo, hi]`` bin is ``m - 1`` if ``c <= e_m`` else ``m``; ``c - e_m`` is
    exact (Sterbenz), hence the sign test is exact.
    Correct: ``p_y = |s - (1 - y)|`` (``1 - s`` as the reference computes it) and the prediction is right
    iff ``p_y > 0.5``, or ``p_y = 0.5`` (``s = 0.5``, predicted foreground) and ``y = 1``.
    """
    conf = torch.maximum(sc, 1 - sc)
    m = (conf * n_bins).round_()
    bin_ = (conf - m / n_bins).ceil_().add_(m).sub_(1)  # ceil(c - e_m) = 0 if c <= e_m else 1 (|c - e_m| < 1)
    p_y = (sc - (1 - yf)).abs_()
    # ceil(p_y - 0.5 + 2^-60 y): 1 iff p_y > 0.5, or p_y = 0.5 and y = 1 (below 0.5, p_y - 0.5 <= -2^-54)
    correct = torch.add(p_y - 0.5, yf, alpha=2.0**-60).ceil_()
    return bin_.mul_(2).add_(correct), conf, p_y


def dense_bin_statistics(
    s: torch.Tensor, y: torch.Tensor, n_bins: int, weights: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """The float64 sums of prepared pixels that every key derives from (equal-width bins): the streamed state.

    ``count``/``conf_sum``/``acc_sum`` per bin, and ``n``, ``nll`` (sum of ``-log p_y``), ``brier`` (sum of
    ``(s - y)^2``). Pixels go through in chunks of 2^16 so the float64 temporaries stay in cache; the bin of
    each pixel is computed exactly by arithmetic (:func:`_chunk_terms`), the sums by ``bincount`` into
    ``2 n_bins`` (bin, correct) cells. ``weights`` (float64, one per pixel) counts each pixel that many times.

    8-bit maps (``uint8``, ``k`` meaning ``k / 255``: what a SOD evaluation reads from PNG files) take a
    shortcut with the same result: one ``bincount`` of ``(k, y)`` into 512 cells, then the float64 terms of
    the 512 distinct pixels weighted by their counts.
    """
    dev = s.device
    if s.dtype == torch.uint8 and weights is None:
        counts = torch.bincount(s.to(torch.int16).mul_(2).add_(y), minlength=512).to(torch.float64)
        levels = torch.arange(256, dtype=torch.float64, device=dev).div_(255).repeat_interleave(2)
        targets = torch.arange(2, device=dev).repeat(256).bool()
        return dense_bin_statistics(levels, targets, n_bins, weights=counts)
    size = 2 * n_bins
    cells = torch.zeros(size, dtype=torch.float64, device=dev)
    conf_cells = torch.zeros(size, dtype=torch.float64, device=dev)
    sq = torch.zeros((), dtype=torch.float64, device=dev)
    nll = torch.zeros((), dtype=torch.float64, device=dev)
    n = s.numel()
    # _LANES interleaved copies of the cells: most pixels fall in one or two cells, and a single accumulator per
    # cell would make every add wait for the previous one
    lane = (torch.arange(min(n, _CHUNK), device=dev) % _LANES) * size
    for i in range(0, n, _CHUNK):
        sc = _float64(s[i : i + _CHUNK])
        yf = y[i : i + _CHUNK].to(torch.float64)
        w = None if weights is None else weights[i : i + _CHUNK]
        cell, conf, p_y = _chunk_terms(sc, yf, n_bins)
        cell = cell.long().add_(lane[: sc.numel()])
        cells += torch.bincount(cell, weights=w, minlength=size * _LANES).reshape(_LANES, size).sum(0)
        wconf = conf if w is None else conf * w
        conf_cells += torch.bincount(cell, weights=wconf, minlength=size * _LANES).reshape(_LANES, size).sum(0)
        if w is None:
            sq += torch.dot(sc, sc) - 2 * torch.dot(sc, yf) + yf.sum()
            nll -= p_y.clamp_(min=_TINY).log_().sum()
        else:
            sq += torch.dot((sc - yf).square_(), w)
            nll -= torch.dot(p_y.clamp_(min=_TINY).log_(), w)
    count2, conf2 = cells.reshape(n_bins, 2), conf_cells.reshape(n_bins, 2)
    total = float(n) if weights is None else weights.sum()
    return {
        "count": count2.sum(1),
        "conf_sum": conf2.sum(1),
        "acc_sum": count2[:, 1].clone(),
        "n": torch.as_tensor(total, dtype=torch.float64, device=dev),
        "nll": nll,
        "brier": sq,
    }


def dense_from_stats(state: dict[str, torch.Tensor], stats: BinStats | None = None) -> dict[str, float]:
    """The dict of :data:`DENSE_KEYS` (Python floats) from summed statistics (module docstring for the formulas)."""
    if stats is None:
        stats = BinStats(state["count"], state["conf_sum"], state["acc_sum"])
    count, n = stats.count, stats.count.sum()
    safe = count.clamp(min=1)
    conf_b, acc_b = stats.conf_sum / safe, stats.acc_sum / safe
    w = count / n
    values = {
        "ece": (stats.acc_sum - stats.conf_sum).abs().sum() / n,
        "oe": (w * conf_b * (conf_b - acc_b).clamp(min=0)).sum(),
        "ue": (w * (1 - conf_b) * (acc_b - conf_b).clamp(min=0)).sum(),
        "accuracy": stats.acc_sum.sum() / n,
        "confidence": stats.conf_sum.sum() / n,
        "nll": state["nll"] / state["n"],
        "brier": state["brier"] / state["n"],
        "n": state["n"],
    }
    flat = torch.stack([v.to(torch.float64) for v in values.values()]).cpu().tolist()
    return dict(zip(values, flat))


def _pooled(s: torch.Tensor, y: torch.Tensor, n_bins: int, binning: str) -> dict[str, float]:
    state = dense_bin_statistics(s, y, n_bins)
    if binning == "uniform":
        return dense_from_stats(state)
    conf, correct, _ = _pixel_terms(s, y)
    return dense_from_stats(state, binned_statistics(conf, correct, n_bins, "quantile"))


def dense_calibration_error(
    probs: Any,
    targets: Any,
    n_bins: int = 10,
    *,
    binning: str = "uniform",
    from_logits: bool = False,
    ignore_index: int | None = None,
    valid_mask: Any = None,
    per_image_mean: bool = False,
    validate_args: bool = True,
) -> dict[str, float]:
    """Pooled pixel calibration of foreground-probability maps: dict with :data:`DENSE_KEYS` (module docstring).

    Args:
        probs: ``[N, 1, *spatial]`` or ``[N, *spatial]`` foreground probabilities (logits with ``from_logits``).
        targets: ``[N, *spatial]`` (or ``[N, 1, *spatial]``) masks with values in {0, 1}.
        n_bins: number of bins (default 10, the authors'); at most 10,000.
        binning: ``"uniform"`` (equal width, O(B) memory) or ``"quantile"`` (equal mass over the pooled pixels,
            exact, holds every valid pixel; ``oe``/``ue``/``ece`` use those bins).
        from_logits: ``probs`` are logits; a float64 sigmoid is applied.
        ignore_index: target value of pixels to leave out.
        valid_mask: bool, the shape of ``targets``; only ``True`` pixels count.
        per_image_mean: average the per-image values over images instead of pooling (a named convention).
        validate_args: check values (targets in {0, 1}, probabilities in [0, 1]); shapes are always checked.

    With ``per_image_mean=True``, ``n`` is the number of images averaged.
    """
    n_bins = check_n_bins(n_bins)
    check_choice(binning, "binning", _BINNINGS)
    kwargs = dict(from_logits=from_logits, ignore_index=ignore_index, validate_args=validate_args)
    if not per_image_mean:
        s, y = prepare_dense(probs, targets, valid_mask=valid_mask, **kwargs)
        return _pooled(s, y, n_bins, binning)
    p, t = as_tensor(probs, "probs"), as_tensor(targets, "targets")
    m = None if valid_mask is None else as_tensor(valid_mask, "valid_mask")
    prepare_dense(p, t, valid_mask=m, **kwargs)  # checks shapes and values once
    kwargs["validate_args"] = False
    rows = []
    for i in range(p.shape[0]):
        try:
            s, y = prepare_dense(p[i : i + 1], t[i : i + 1], valid_mask=None if m is None else m[i : i + 1], **kwargs)
        except ValueError:  # no valid pixel in this image
            continue
        rows.append(_pooled(s, y, n_bins, binning))
    out = {k: sum(r[k] for r in rows) / len(rows) for k in DENSE_KEYS}
    out["n"] = float(len(rows))
    return out


class DenseCalibration(StreamingMetric):
    """Streaming pooled pixel calibration: ``update(probs, targets, valid_mask=None)`` per batch or image.

    Holds ``3 * n_bins + 3`` float64 sums (memory independent of the number of images and pixels);
    ``compute()`` returns the dict of :func:`dense_calibration_error` on the concatenation of every batch
    (equal-width bins), ``curve()`` the pooled :class:`ReliabilityCurve`. ``merge`` and the ``all_reduce`` in
    ``compute()`` follow :class:`caltrain.metrics.streaming.StreamingMetric`.

    Example:
        >>> import torch
        >>> metric = DenseCalibration(n_bins=10)
        >>> s = torch.tensor([[[0.9, 0.2], [0.6, 0.5]]]); y = torch.tensor([[[1, 0], [0, 1]]])
        >>> metric.update(s[:, :1], y[:, :1]); metric.update(s[:, 1:], y[:, 1:])
        >>> round(metric.compute()["ece"], 4)
        0.35
    """

    def __init__(self, n_bins: int = 10, **kwargs: Any) -> None:
        self.n_bins = check_n_bins(n_bins)
        super().__init__(**kwargs)

    def update(self, probs: Any, targets: Any, valid_mask: Any = None) -> None:  # type: ignore[override]
        """Add one batch of maps ``[B, 1, *spatial]`` / ``[B, *spatial]`` and their masks."""
        s, y = prepare_dense(
            probs, targets, from_logits=self.from_logits, ignore_index=self.ignore_index,
            valid_mask=valid_mask, validate_args=self.validate_args,
        )
        for name, value in dense_bin_statistics(s, y, self.n_bins).items():
            old = self._state.get(name)
            self._state[name] = value if old is None else old + value

    def _finalize(self, state: dict[str, torch.Tensor]) -> dict[str, float]:
        return dense_from_stats(state)

    def curve(self) -> ReliabilityCurve:
        """Reliability-curve data of every pixel seen."""
        state = self.state()
        edges = uniform_edges(self.n_bins, device=state["count"].device)
        return ReliabilityCurve.from_stats(BinStats(state["count"], state["conf_sum"], state["acc_sum"], edges))
