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

import itertools
import math
from typing import Any

import torch

from caltrain.metrics.binning import BinStats, binned_statistics, uniform_bin_index, uniform_edges
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
    _defer_range: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(s [M] foreground probabilities in the input's float dtype, y [M] bool)`` of the valid pixels.

    (See the module docstring; with ``from_logits`` ``s`` is the float64 sigmoid of the logits.)
    ``_defer_range`` (internal): leave the [0, 1] check of float32 / float16 / bfloat16 maps to
    ``dense_bin_statistics(..., check_range=True)``, which does it chunk by chunk.
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
        elif not (_defer_range and s.dtype in _LOWP):
            _check_probabilities(s)
    if from_logits:
        s = torch.sigmoid(s.to(torch.float64))
    return s, y if y.dtype == torch.bool else y != 0


#: float dtype -> (integer view, bits of 1.0): a non-negative float is at most 1 iff its bits are at most those
#: of 1.0 (negative floats, -0.0 included, and NaN fail the test; the exact check below then decides)
_ONE_BITS = {torch.float32: (torch.int32, 0x3F800000), torch.float16: (torch.int16, 0x3C00),
             torch.bfloat16: (torch.int16, 0x3F80)}


def _check_probabilities(s: torch.Tensor) -> None:
    """``ValueError`` unless every value of ``s`` is in [0, 1] (``check_finite``'s error for NaN / inf).

    For float32 / float16 / bfloat16 an integer ``aminmax`` of the bits decides first (about twice as fast as
    the float one, which has to handle NaN).
    """
    if s.dtype == torch.uint8:
        return
    if s.dtype in _ONE_BITS:
        view, one = _ONE_BITS[s.dtype]
        lo_bits, hi_bits = torch.aminmax(s.view(view))
        if bool((lo_bits >= 0) & (hi_bits <= one)):
            return
    lo, hi = (float(v) for v in torch.aminmax(s))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        check_finite(s, "probs")
    if lo < 0 or hi > 1:
        raise ValueError(
            f"probs: expected foreground probabilities in [0, 1], got values in [{lo:.4g}, {hi:.4g}] "
            "(if these are logits, pass from_logits=True)"
        )


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


_CHUNK = (1 << 15) - 16  # pixels per pass on the CPU: float64 temporaries stay in cache; below torch's parallel grain
_CHUNK_DEVICE = 1 << 22  # on an accelerator: few launches, bounded temporaries
_GROUP = 16  # the NLL takes one log per product of 16 probabilities
_NORMAL = 2.0**-1000  # a product below this (or 0) is redone pixel by pixel with the clamp
_LOWP = (torch.float32, torch.float16, torch.bfloat16)
_LOWP_MAX_BINS = 512  # the exactness argument of _lowp_statistics (|q| < 2^15 with the lane offsets)
_LANES = 8


def _chunk_size(s: torch.Tensor) -> int:
    return _CHUNK if s.device.type == "cpu" else _CHUNK_DEVICE


def _sum_log(p: torch.Tensor) -> torch.Tensor:
    """``sum_i log max(|p_i|, tiny)`` of float64 ``p`` (|p| <= 1): one ``log`` per product of 16 values.

    A product below 2^-1000 (an underflow risk, or a zero) is replaced by the sum of the clamped logs of its
    members, so the result is the clamped sum of logs up to the rounding of the products (16 ulp each).
    """
    head = p.numel() - p.numel() % _GROUP
    groups = p[:head].view(_GROUP, -1)
    prods = groups.prod(0).abs_()
    total = p[head:].abs().clamp_(min=_TINY).log_().sum()
    if head and bool(prods.min() < _NORMAL):
        low = prods < _NORMAL
        total = total + groups[:, low].abs().clamp_(min=_TINY).log_().sum()
        prods.masked_fill_(low, 1.0)
    return total + prods.log_().sum()


def _lowp_statistics(
    s: torch.Tensor, y: torch.Tensor, n_bins: int, lo_hi: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """:func:`dense_bin_statistics` of float32 / float16 / bfloat16 maps (``n_bins <= 512``), exactly.

    Per pixel, in float64: ``r = s - (1 - y)`` (exact for such ``s`` unless ``y = 0`` and ``s < 2^-30``;
    ``|r| = p_y``, ``r > 0`` iff ``y = 1`` and ``s > 0``, ``r = 0`` iff ``p_y = 0``) and ``q = 2 B r``; the key
    ``K = floor(q) + ceil(q)`` in ``[-4B, 4B]`` is ``2q`` on the integers and odd on the open intervals between
    them. Every edge of the reference rule (``conf > e_j`` with ``conf = max(s, 1 - s)``, predicted foreground
    ``s >= 1/2``) falls on an integer ``q``, and the key is exact: ``q`` is computed with an integer offset
    (below) as ``c + 2 B r``, within 2^-37 of its value as ``|c + 2 B r| < 2^15``; an integer value is
    computed exactly; and a float32 ``s >= 2^-11`` is a multiple of 2^-34, so a non-integer ``2 B s`` (or
    ``2 B (s - 1)``) is at least 2^-34 from every integer (``B <= 512``). Smaller ``s`` give ``|q| < 1/2``
    around ``s = 0`` (or ``s = 1``), whose key, if the rounding reached it, has the same bin, prediction and
    target. So every pixel of a key has the bin, prediction and target of the key's representative
    ``q = K / 2``, which is binned once by the reference rule (:func:`uniform_bin_index`). One
    ``scatter_add_`` of the complex weight ``r + 1i`` per pixel gives the count and the sum of ``r`` of
    every key (into ``_LANES`` interleaved copies: a run of equal keys, as in saturated maps, would make
    every add wait for the previous one); ``r . r`` and ``sum |r|`` give the Brier score, :func:`_sum_log`
    the NLL. Each pass is one torch call per chunk (the per-call overhead is a good part of the cost).
    ``lo_hi`` ``[2, n_chunks]`` (an integer view's dtype): each chunk's min and max bits, for the range check.
    """
    dev, B, f64 = s.device, n_bins, torch.float64
    half = 4 * B
    m = 2 * half + 1
    n = s.numel()
    chunk = min(_chunk_size(s) // _GROUP * _GROUP, n)  # chunks start at multiples of 16 (the products)
    n_chunks = -(-n // chunk)
    acc = torch.zeros(_LANES * 2 * m, dtype=torch.complex128, device=dev)
    dots = torch.empty(n_chunks, dtype=f64, device=dev)
    head = n - n % _GROUP  # pixels whose probabilities go into products of 16
    prods = torch.empty(head // _GROUP, dtype=f64, device=dev)
    r, q, k = (torch.empty(chunk, dtype=f64, device=dev) for _ in range(3))
    r1 = torch.ones(chunk, 2, dtype=f64, device=dev)  # rows (r, 1): the complex weights
    not_y = torch.empty(chunk, dtype=torch.bool, device=dev)
    bits = s.view(_ONE_BITS[s.dtype][0])
    # floor(q + c) + ceil(q + c) = K + 2c for an integer c: the offset (lane l of _LANES interleaved copies,
    # K to non-negative) goes into q as c = l m + 2B, making the key K + 2 l m + 4B in [2 l m, 2 l m + 8B]
    # (a full-length offset: a broadcast add of [_LANES] runs at half the speed)
    offset = (torch.arange(chunk, device=dev) % _LANES).to(f64).mul_(m).add_(2 * B)

    def views(c: int) -> tuple[torch.Tensor, ...]:
        """The buffers cut to ``c`` pixels (made once per size: each torch call costs microseconds)."""
        rc, qc, kc, r1c, nyc = r[:c], q[:c], k[:c], r1[:c], not_y[:c]
        g = c // _GROUP  # a chunk's start is a multiple of 16
        return (rc, qc, kc, qc.view(torch.int64), r1c[:, 0], torch.view_as_complex(r1c), offset[:c],
                rc[: g * _GROUP].view(_GROUP, g), nyc, nyc.view(torch.uint8))

    per = chunk // _GROUP  # products per full chunk; product P of chunk j is over pixels j chunk + P' + t g
    parts = (s.split(chunk), y.split(chunk), bits.split(chunk), dots.unbind(), prods.split(per) if head else ())
    check = lo_hi is not None
    if check:
        parts = (*parts, lo_hi.unbind(1))
    full = views(chunk)
    for j, (sc, yc, bc, dot, prod, *lo_hi_j) in enumerate(itertools.zip_longest(*parts)):
        c = sc.numel()
        rc, qc, kc, key, r_col, w1, off, groups, nyc, ny8 = full if c == chunk else views(c)
        if check:
            torch.aminmax(bc, out=tuple(lo_hi_j[0]))
        torch.logical_not(yc, out=nyc)
        rc.copy_(sc).sub_(ny8)
        torch.add(off, rc, alpha=2 * B, out=qc)
        torch.floor(qc, out=kc)
        key.copy_(kc.add_(qc.ceil_()))  # q is dead once the key is formed: the int64 key lives in its memory
        r_col.copy_(rc)
        acc.scatter_add_(0, key, w1)
        torch.dot(rc, rc, out=dot)
        if prod is not None:
            torch.prod(groups, 0, out=prod)
    # the NLL: one log per product of 16 (:func:`_sum_log`); product P of chunk j is over the pixels
    # j chunk + P' + t g (t < 16, P' = P - j per, g = per or the last chunk's number); low ones are redone
    logp = (s[head:].to(f64) - (~y[head:]).to(f64)).abs_().clamp_(min=_TINY).log_().sum()
    prods.abs_()
    if head and bool(prods.min() < _NORMAL):
        low = (prods < _NORMAL).nonzero().squeeze(1)
        jc = low // per
        g = torch.where(jc == n_chunks - 1, (head - (n_chunks - 1) * chunk) // _GROUP, per)
        pix = (jc * chunk + low % per)[:, None] + torch.arange(_GROUP, device=dev) * g[:, None]
        logp = logp + (s[pix].to(f64) - (~y[pix]).to(f64)).abs_().clamp_(min=_TINY).log_().sum()
        prods[low] = 1.0
    logp = logp + prods.log_().sum()
    acc = acc.view(_LANES, 2 * m)[:, :m].sum(0)
    cnt, rsum = acc.imag, acc.real
    K = torch.arange(-half, half + 1, dtype=f64, device=dev)
    target = K > 0  # K = 0: r = 0 (s = 0, y = 1 or s = 1, y = 0): counted as s = 1, y = 0 (same bin, conf 1)
    s_rep = torch.where(target, K / half, 1 + K / half)  # q = K / 2, s = q / (2 B) + 1 - y
    fg = s_rep >= 0.5
    bins = uniform_bin_index(torch.maximum(s_rep, 1 - s_rep), B)
    s_sum = rsum + cnt * (~target)
    conf = torch.where(fg, s_sum, cnt - s_sum)
    correct = (fg == target).to(f64)
    count = torch.zeros(B, dtype=f64, device=dev).index_add_(0, bins, cnt)
    abs_r = torch.where(target, rsum, -rsum).sum()
    return {
        "count": count,
        "conf_sum": torch.zeros(B, dtype=f64, device=dev).index_add_(0, bins, conf),
        "acc_sum": torch.zeros(B, dtype=f64, device=dev).index_add_(0, bins, cnt * correct),
        "n": torch.as_tensor(float(n), dtype=f64, device=dev),
        "nll": -logp,
        "brier": n - 2 * abs_r + dots.sum(),
    }


def _float64_statistics(
    s: torch.Tensor, y: torch.Tensor, n_bins: int, weights: torch.Tensor | None
) -> dict[str, torch.Tensor]:
    """:func:`dense_bin_statistics` of float64 (or uint8 ``k / 255``) pixels, optionally weighted.

    Per pixel, arithmetic only (comparisons to bool tensors and ``heaviside`` are several times slower on CPU):
    ``c = max(s, 1 - s)``; bin: with ``m = round(c B)`` the only edge within ``0.5 / B`` of ``c`` is
    ``e_m = m / B`` (the float64 ``uniform_edges`` value), so the ``(lo, hi]`` bin is ``m - 1 + ceil(c - e_m)``
    (``c - e_m`` is exact, Sterbenz, and below 1 in size); ``p_y = |s - (1 - y)|`` (``s`` itself, or ``1 - s``
    as the reference computes it); predicted background ``bg = ceil(1/2 - s)`` (``1/2 - s`` is exact near
    1/2: ``bg = 0`` iff ``s >= 1/2``) and the prediction is right iff ``|bg - y| = 1``. (Not from ``p_y``:
    for ``s = 1/2 - 2^-54``, ``1 - s`` rounds to 1/2, a tie that would make a right background prediction
    wrong.)
    One ``scatter_add_`` per chunk of the complex weight ``w c + w 1i`` (``w = 1`` unweighted) into the
    ``2 n_bins`` (bin, correct) cells, in ``_LANES`` interleaved copies as in :func:`_lowp_statistics`; the
    Brier score from ``(s - y) . (s - y)``, the NLL as in :func:`_sum_log` (weighted: ``w . log p_y``).
    """
    dev, f64, B = s.device, torch.float64, n_bins
    size = 2 * B
    acc = torch.zeros(_LANES * size, dtype=torch.complex128, device=dev)
    n = s.numel()
    chunk = min(_chunk_size(s), n)
    n_chunks = -(-n // chunk)
    sq = torch.empty(n_chunks, dtype=f64, device=dev)
    logs = torch.empty(n_chunks, dtype=f64, device=dev)
    one_minus, conf, m, b, p, yf = (torch.empty(chunk, dtype=f64, device=dev) for _ in range(6))
    w2 = torch.ones(chunk, 2, dtype=f64, device=dev)  # rows (w c, w): the complex weights
    key = torch.empty(chunk, dtype=torch.int64, device=dev)
    lane = torch.arange(_LANES, dtype=f64, device=dev).mul_(size).sub_(2)  # the -1 of the bin, doubled
    y8 = y.view(torch.uint8)
    one = torch.ones((), dtype=f64, device=dev)
    half = torch.full((), 0.5, dtype=f64, device=dev)
    for j, (sc, yc) in enumerate(zip(s.split(chunk), y8.split(chunk))):
        c = sc.numel()
        if c < chunk:
            one_minus, conf, m, b, p, yf, w2, key = (t[:c] for t in (one_minus, conf, m, b, p, yf, w2, key))
        if sc.dtype != f64:
            sc = sc.to(f64)
        yf.copy_(yc)
        torch.sub(one, sc, out=one_minus)
        torch.maximum(sc, one_minus, out=conf)
        torch.mul(conf, B, out=m).round_()
        torch.div(m, B, out=b)
        torch.sub(conf, b, out=b).ceil_().add_(m)  # bin + 1
        torch.sub(sc, torch.sub(one, yf, out=p), out=p).abs_()  # p_y = |s - (1 - y)|: s itself when y = 1
        torch.sub(half, sc, out=one_minus).ceil_().sub_(yf).abs_()  # correct = |bg - y| (1 - s is dead)
        torch.add(one_minus, b, alpha=2, out=b)  # cell + 2
        lanes = c - c % _LANES
        b[:lanes].view(-1, _LANES).add_(lane)
        b[lanes:].add_(lane[: c - lanes])
        key.copy_(b)
        torch.sub(sc, yf, out=m)  # s - y
        if weights is None:
            w2[:, 0].copy_(conf)
            torch.dot(m, m, out=sq[j])
            logs[j] = _sum_log(p)
        else:
            w = weights[j * chunk : j * chunk + c]
            torch.mul(conf, w, out=w2[:, 0])
            w2[:, 1].copy_(w)
            torch.dot(m.square_(), w, out=sq[j])
            torch.dot(p.clamp_(min=_TINY).log_(), w, out=logs[j])
        acc.scatter_add_(0, key, torch.view_as_complex(w2))
    acc = acc.view(_LANES, B, 2).sum(0)
    count2, conf2 = acc.imag, acc.real
    total = float(n) if weights is None else weights.sum()
    return {
        "count": count2.sum(1),
        "conf_sum": conf2.sum(1),
        "acc_sum": count2[:, 1].clone(),
        "n": torch.as_tensor(total, dtype=f64, device=dev),
        "nll": -logs.sum(),
        "brier": sq.sum(),
    }


def dense_bin_statistics(
    s: torch.Tensor, y: torch.Tensor, n_bins: int, weights: torch.Tensor | None = None, *, check_range: bool = False
) -> dict[str, torch.Tensor]:
    """The float64 sums of prepared pixels that every key derives from (equal-width bins): the streamed state.

    ``count``/``conf_sum``/``acc_sum`` per bin, and ``n``, ``nll`` (sum of ``-log p_y``), ``brier`` (sum of
    ``(s - y)^2``). ``weights`` (float64, one per pixel) counts each pixel that many times. Three exact
    routes, one result (up to float64 summation order; the NLL to about 1e-15 per pixel, :func:`_sum_log`):

    - float32 / float16 / bfloat16 maps, ``n_bins <= 512``: :func:`_lowp_statistics` (a key per pixel from two
      roundings, one ``scatter_add_``; about half the float64 operations of the general route);
    - 8-bit maps (``uint8``, ``k`` meaning ``k / 255``: what a SOD evaluation reads from PNG files): one
      ``bincount`` of ``(k, y)`` into 512 cells, then the float64 route on the 512 distinct pixels weighted
      by their counts;
    - float64 (and weighted) pixels: :func:`_float64_statistics` (the bin of each pixel by exact arithmetic).

    All go through the pixels in chunks (2^15 on the CPU) so that the float64 temporaries stay in cache.
    ``check_range``: raise the error of :func:`prepare_dense` unless every ``s`` is in [0, 1]; float32 /
    float16 / bfloat16 maps are checked chunk by chunk (an integer ``aminmax`` of the bits, the data in
    cache), so that no torch call of the update spans the whole map: a call that large runs in parallel
    with several torch threads, and OpenMP's waiting threads then take the core from the loop on a busy
    machine (several times slower in BENCHMARKS.md; with ``prepare_dense(..., _defer_range=True)``).
    """
    if s.dtype == torch.uint8 and weights is None:
        counts = torch.bincount(s.to(torch.int16).mul_(2).add_(y), minlength=512).to(torch.float64)
        levels = torch.arange(256, dtype=torch.float64, device=s.device).div_(255).repeat_interleave(2)
        targets = torch.arange(2, device=s.device).repeat(256).bool()
        return _float64_statistics(levels, targets, n_bins, counts)
    if s.dtype in _LOWP and weights is None and n_bins <= _LOWP_MAX_BINS:
        if not check_range:
            return _lowp_statistics(s, y, n_bins, None)
        view, one = _ONE_BITS[s.dtype]
        bits = s.view(view)
        n_chunks = -(-bits.numel() // min(_chunk_size(s) // _GROUP * _GROUP, bits.numel()))
        lo_hi = torch.empty(2, n_chunks, dtype=view, device=s.device)
        try:
            out = _lowp_statistics(s, y, n_bins, lo_hi)
        except RuntimeError:  # a key out of range (far outside [0, 1], NaN): report the input's values
            _check_probabilities(s)
            raise
        if not bool((lo_hi[0].min() >= 0) & (lo_hi[1].max() <= one)):
            _check_probabilities(s)  # raises, or passes (-0.0)
        return out
    if check_range:
        _check_probabilities(s)
    return _float64_statistics(s, y, n_bins, weights)


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


def _pooled(s: torch.Tensor, y: torch.Tensor, n_bins: int, binning: str, check: bool = False) -> dict[str, float]:
    state = dense_bin_statistics(s, y, n_bins, check_range=check and s.dtype in _LOWP)
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
        s, y = prepare_dense(probs, targets, valid_mask=valid_mask, _defer_range=True, **kwargs)
        return _pooled(s, y, n_bins, binning, validate_args and not from_logits)
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
            valid_mask=valid_mask, validate_args=self.validate_args, _defer_range=True,
        )
        check = self.validate_args and not self.from_logits and s.dtype in _LOWP
        for name, value in dense_bin_statistics(s, y, self.n_bins, check_range=check).items():
            old = self._state.get(name)
            self._state[name] = value if old is None else old + value

    def _finalize(self, state: dict[str, torch.Tensor]) -> dict[str, float]:
        return dense_from_stats(state)

    def curve(self) -> ReliabilityCurve:
        """Reliability-curve data of every pixel seen."""
        state = self.state()
        edges = uniform_edges(self.n_bins, device=state["count"].device)
        return ReliabilityCurve.from_stats(BinStats(state["count"], state["conf_sum"], state["acc_sum"], edges))
