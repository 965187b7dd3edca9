"""The dense binary task's report sections (salient-object detection, binary segmentation: one logit per pixel).

A dense run (:mod:`caltrain.train.dense`) keeps no logits; the report draws what it saved instead (every path from
:class:`~caltrain.train.run_dir.RunDir`, arrays read with ``np.load(allow_pickle=False)``):

- ``reliability_test.json``: the pooled bin sums of the test split, ``{"n_bins": B, "uncalibrated": {"count",
  "conf_sum", "acc_sum"}, "<calibrator>": {...}}``, over every test pixel: confidence c = max(s, 1 - s) of the
  foreground probability s, outcome o = 1[1[s >= 0.5] = y], equal-width bins (lo, hi] (:mod:`caltrain.metrics.dense`);
- ``examples_test.npz``: ``index`` [n], ``image`` [n, C, H, W] (uint8, or float inputs for user data), ``mask``
  uint8 [n, 1, H, W], ``probability`` float32 [n, 1, H, W] (the selected model's s), ``posterior`` [n, 1, H, W]
  (the true P(y = 1 | x) where the dataset knows it, ``synthetic_saliency``);
- ``sample_state.npz``: ASLP's final per-image α [N train images]; ``metrics.jsonl``: ASLP's ``objective`` record
  per epoch (``alpha_mean``, ``alpha_q00`` .. ``alpha_q100``, ``alpha_at_zero``, ...);
- ``summary.json``: ``ood[<set>]``, the pooled pixel metrics on an empty-mask OOD set.

After the lead (table, trade-off; no verdict: the paired bootstrap needs per-sample test predictions, which a
dense run does not keep), a dataset's folded section holds:

1. learning curves on the validation split (the classification task's figure: pixel accuracy, pooled ECE, NLL);
2. pooled pixel reliability diagrams of the test split before and after each calibrator, one row per objective
   (first seed), for the objectives the reader picks; bars = sum_b acc / n_b, ECE = sum_b |A_b - S_b| / N from
   the saved sums (:func:`caltrain.metrics.ece.calibration_error_from_stats`), which is the summary's ``ece``;
3. example maps: the first :data:`N_SHOWN` saved test images with their ground truth, the true posterior (where
   known), the predicted probability s and the confidence max(s, 1 - s), as small PNG images (:func:`png_bytes`,
   no matplotlib) inside an SVG figure, one figure per objective (picker);
4. ASLP: the histogram of the final α_i over the training images (seeds pooled, one panel per ASLP objective) and
   α's quantiles against epochs (the per-epoch records, quantiles averaged over seeds, each seed's mean α);
5. OOD: mean confidence and pooled ECE on the empty-mask set per objective (bars = mean over seeds, dots = seeds,
   diamond = the same statistic on the test split).

Readings (choices the trainer's files leave open): the reliability diagrams draw the confidence range [0.5, 1]
(a binary top-label confidence is never below 0.5; the bins below stay empty); example maps larger than
:data:`MAX_SIDE` pixels are shown as block means over an integer factor; float inputs are min-max scaled per image;
an image with neither 1 nor 3 channels shows its first channel.
"""

from __future__ import annotations

import base64
import html
import math
import struct
import zlib
from typing import Any, Sequence

import numpy as np

from caltrain.report.tasks import Block, DatasetContext, MetricInfo, Section, TaskSections, register_task

__all__ = ["DenseBinarySections", "N_SHOWN", "MAX_SIDE", "png_bytes", "png_data_uri", "read_alpha",
           "read_examples", "read_reliability", "reliability_diagram"]

#: Test images per objective in the example grid (of the ``caltrain.train.dense.N_EXAMPLES`` a run saves).
N_SHOWN = 4
#: Example maps are shown at most this many pixels on a side (block means over an integer factor beyond it).
MAX_SIDE = 64
#: Bins of the α histogram (equal width from 0 to the largest α of the dataset's ASLP runs).
ALPHA_BINS = 20
#: Anchors of the confidence colour map (viridis at 0, 1/4, 1/2, 3/4, 1; linear in between).
_VIRIDIS = ((68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37))
#: On-screen size of one example map (CSS pixels; the PNG is scaled up with ``image-rendering: pixelated``).
_TILE = 54


@register_task("dense_binary")
class DenseBinarySections(TaskSections):
    """Sections of a dense binary dataset (module docstring)."""

    primary_metrics = ("accuracy", "ece", "oe", "ue", "true_ece", "nll", "brier", "mae", "max_f", "s_measure",
                       "max_e")
    reference_candidates = ("bce",)
    calibration_metric = "ece"
    metric_info = {
        "accuracy": MetricInfo("pixel acc %", 100, 2, "high", "pixel accuracy, 1[s >= 0.5] = y, pooled over every "
                                                              "pixel"),
        "ece": MetricInfo("ECE %", 100, 2, "low", "pooled pixel ECE: equal-width bins (lo, hi] of the pixel "
                                                  "confidence max(s, 1 - s), sum_b (n_b/N)|acc_b - conf_b|"),
        "oe": MetricInfo("OE %", 100, 2, "low", "over-confidence error, sum_b (n_b/N) conf_b max(conf_b - acc_b, 0) "
                                                "(pooled pixels; the ASLP authors' definition)"),
        "ue": MetricInfo("UE %", 100, 2, "low", "under-confidence error, sum_b (n_b/N) (1 - conf_b) "
                                                "max(acc_b - conf_b, 0) (pooled pixels; the mirror of OE, a reading)"),
        "confidence": MetricInfo("conf %", 100, 2, None, "mean pixel confidence max(s, 1 - s)"),
        "nll": MetricInfo("NLL", 1, 3, "low", "pixel negative log-likelihood -mean log p_y"),
        "brier": MetricInfo("Brier", 1, 4, "low", "binary Brier score mean (s - y)^2 over pixels"),
        "true_ece": MetricInfo("true ECE %", 100, 2, "low", "pooled pixel calibration error of the confidence "
                                                            "against the known per-pixel posterior (synthetic data)"),
        "pointwise_ce": MetricInfo("pointwise CE %", 100, 2, "low", "mean |q(yhat|x) - conf| over pixels, q the "
                                                                    "known posterior (calibration error + grouping "
                                                                    "loss)"),
        "grouping_loss": MetricInfo("grouping loss %", 100, 2, "low", "pointwise CE - true ECE (pixels)"),
        "mae": MetricInfo("MAE", 1, 4, "low", "mean |s - y| per image, averaged over images (SOD convention)"),
        "max_f": MetricInfo("max F", 1, 3, "high", "maximum over thresholds of the image-averaged F-measure, "
                                                   "beta^2 = 0.3"),
        "mean_f": MetricInfo("mean F", 1, 3, "high", "mean over thresholds of the image-averaged F-measure"),
        "adp_f": MetricInfo("adaptive F", 1, 3, "high", "F-measure at the adaptive threshold min(2 mean(s), 1)"),
        "s_measure": MetricInfo("S-measure", 1, 3, "high", "structure measure (Fan et al. 2017), alpha = 0.5, "
                                                           "per image, averaged"),
        "max_e": MetricInfo("max E", 1, 3, "high", "maximum over thresholds of the image-averaged E-measure"),
        "mean_e": MetricInfo("mean E", 1, 3, "high", "mean over thresholds of the image-averaged E-measure"),
        "adp_e": MetricInfo("adaptive E", 1, 3, "high", "E-measure at the adaptive threshold"),
    }

    @classmethod
    def matches(cls, run) -> bool:
        return "s_measure" in (run.summary.get("test") or {})

    builders = ("_learning", "_reliability", "_examples", "_alpha", "_ood")
    skip_errors = (FileNotFoundError, ValueError, KeyError)

    def caveats(self, ctx: DatasetContext) -> list[str]:
        n_bins = sorted({r.n_bins for r in ctx.runs})
        out = [f"Dense binary ({ctx.dataset}): every pixel is one binary prediction, foreground when s >= 0.5, with "
               f"confidence max(s, 1 - s); ECE, OE, UE, pixel accuracy, NLL and Brier are pooled over every pixel of "
               f"the split ({', '.join(map(str, n_bins))} equal-width bins (lo, hi], float64 sums; never an average "
               "of per-image ECEs); true ECE and pointwise CE use the known per-pixel posterior; MAE, F-, S- and "
               "E-measure follow the SOD convention (per image, averaged over images; F with beta^2 = 0.3)."]
        calibrators = list(dict.fromkeys(c for r in ctx.runs for c in (r.summary.get("posthoc") or {})))
        if calibrators:
            pixels = sorted({int(r.summary["posthoc_pixels"]) for r in ctx.runs
                             if isinstance(r.summary.get("posthoc_pixels"), (int, float))})
            drawn = f" ({', '.join(map(str, pixels))} pixels drawn)" if pixels else ""
            out.append(f"Dense post-hoc calibrators ({', '.join(calibrators)}; ts = binary temperature scaling "
                       f"sigmoid(z/T)) were fitted on a seeded subsample of the validation pixels{drawn} and scored "
                       "on every test pixel; the dense reliability diagrams draw the pooled bins the run saved "
                       "(reliability_test.json), nothing is recomputed.")
        if len(ctx.objectives) > 1:
            out.append(f"No verdict for the dense dataset {ctx.dataset}: its paired bootstrap resamples test "
                       "predictions, and a dense run keeps only pooled bins and a few example maps; compare the "
                       "table's mean ± std over seeds.")
        return out

    # -- 1. learning curves (the classification task's figure: its keys are the dense validation records' too) ----
    def _learning(self, ctx: DatasetContext) -> Section | None:
        from caltrain.report.tasks.classification import learning_section

        return learning_section(ctx)

    # -- 2. reliability -----------------------------------------------------------------------------------------
    def _reliability(self, ctx: DatasetContext) -> Section | None:
        from caltrain.report.charts import reliability_row

        blocks = []
        for obj in ctx.objectives:
            run = ctx.firsts[obj]
            if not run.files.reliability("test").is_file():
                ctx.skipped.append(f"{ctx.dataset} / dense reliability {run.name}: no reliability_test.json")
                continue
            try:
                n_bins, views = read_reliability(run)
            except ValueError as err:
                ctx.skipped.append(f"{ctx.dataset} / dense reliability {run.name}: {err}")
                continue
            named = [v for v in ("uncalibrated", *ctx.calibrators) if v in views]
            missing = [c for c in ctx.calibrators if c not in views]
            if missing:
                ctx.skipped.append(f"{ctx.dataset} / dense reliability after {', '.join(missing)} for {run.name}: "
                                   "not in its reliability_test.json")
            diagrams = [(v if v == "uncalibrated" else f"after {v}", reliability_diagram(views[v], label=v))
                        for v in named]
            title = f"{obj} (seed {run.seed}): pooled test pixels, before and after calibration"
            svg = reliability_row(diagrams, title=title, objective=obj, colour=ctx.colours[obj],
                                  slug=f"{ctx.slug}-drel-{len(blocks)}", xlim=(0.5, 1.0))
            n = diagrams[0][1].n
            blocks.append(Block(
                slug=f"{ctx.slug}-dense-reliability-{_safe(obj)}", title=title, objective=obj, body=svg,
                caption=f"{run.name}: all {n:,} test pixels pooled, {n_bins} equal-width bins (lo, hi] of the "
                        "confidence max(s, 1 - s), which is never below 0.5 (the axis starts there); bars = "
                        "fraction of correct pixels per bin, ECE = sum_b |correct_b - confidence sum_b| / N, "
                        "the run's summary value. After a calibrator: its fit on validation pixels, applied to "
                        "every test pixel (the bins the run saved)."))
        if not blocks:
            return None
        return Section("Dense reliability diagrams (test pixels), before and after calibration", blocks,
                       intro="Pick the objectives to compare; each row is one objective's first seed.",
                       picker=list(ctx.objectives), picked=_picked(ctx))

    # -- 3. examples ----------------------------------------------------------------------------------------------
    def _examples(self, ctx: DatasetContext) -> Section | None:
        blocks = []
        for obj in ctx.objectives:
            run = ctx.firsts[obj]
            if not run.files.examples("test").is_file():
                ctx.skipped.append(f"{ctx.dataset} / examples {run.name}: no examples_test.npz")
                continue
            try:
                arrays = read_examples(run)
            except ValueError as err:
                ctx.skipped.append(f"{ctx.dataset} / examples {run.name}: {err}")
                continue
            if len(arrays["index"]) == 0:
                continue
            title = f"{obj} (seed {run.seed}): test images, ground truth and predicted maps"
            svg = example_grid(arrays, title=title, objective=obj, seed=run.seed, slug=f"{ctx.slug}-ex-{len(blocks)}")
            blocks.append(Block(
                slug=f"{ctx.slug}-examples-{_safe(obj)}", title=title, objective=obj, body=svg,
                caption=f"{run.name}: the first {min(N_SHOWN, len(arrays['index']))} test images the run saved "
                        "(examples_test.npz). Grey maps from black 0 to white 1: the ground-truth mask, the true "
                        "posterior P(y = 1 | x) where the dataset knows it, and the predicted foreground "
                        "probability s; the confidence max(s, 1 - s) on its own colour scale from 0.5 to 1. Hover a "
                        "map for the image's pixel accuracy and mean confidence."))
        if not blocks:
            return None
        return Section("Example maps (test)", blocks, intro="Pick the objectives to compare; the same test images "
                                                            "for every objective.",
                       picker=list(ctx.objectives), picked=_picked(ctx))

    # -- 4. ASLP's alpha ------------------------------------------------------------------------------------------
    def _alpha(self, ctx: DatasetContext) -> Section | None:
        finals: dict[str, list[tuple[int, np.ndarray]]] = {}
        curves: dict[str, list[tuple[int, np.ndarray, dict[str, np.ndarray]]]] = {}
        for obj in ctx.objectives:
            for run in ctx.by_objective[obj]:
                alpha = read_alpha(run)
                if alpha is not None:
                    finals.setdefault(obj, []).append((run.seed, alpha))
                epochs = alpha_records(run)
                if epochs is not None:
                    curves.setdefault(obj, []).append((run.seed, *epochs))
        blocks = []
        if finals:
            title = f"{ctx.dataset}: final ASLP α per training image (seeds pooled)"
            blocks.append(Block(
                slug=f"{ctx.slug}-alpha-hist", title=title,
                body=alpha_histogram(finals, colours=ctx.colours, title=title, slug=f"{ctx.slug}-ah"),
                caption=f"Histogram of α_i at the end of training (sample_state.npz), {ALPHA_BINS} equal-width bins "
                        "[a, b) from 0 to the largest α of the dataset's ASLP runs (the last bin closed), counts of "
                        "every seed's training images added; the dashed line is the mean α. Hover a bar for the "
                        "per-seed counts."))
        if curves:
            title = f"{ctx.dataset}: ASLP α against epochs (quantiles over the training images)"
            blocks.append(Block(
                slug=f"{ctx.slug}-alpha-epochs", title=title,
                body=alpha_epochs(curves, colours=ctx.colours, title=title, slug=f"{ctx.slug}-ae"),
                caption="From the objective records of metrics.jsonl (the distribution of α_i after each epoch): "
                        "bands q0-q100, q10-q90, q25-q75 and the median, each quantile averaged over seeds at each "
                        "epoch; thin lines: each seed's mean α."))
        if not blocks:
            return None
        return Section("ASLP: per-image label-perturbation probability α", blocks)

    # -- 5. OOD ---------------------------------------------------------------------------------------------------
    def _ood(self, ctx: DatasetContext) -> Section | None:
        names = list(dict.fromkeys(n for r in ctx.runs for n in (r.summary.get("ood") or {})))
        blocks = []
        for name in names:
            rows = []
            for obj in ctx.objectives:
                per_seed = [(r.seed, (r.summary.get("ood") or {}).get(name) or {}, r.summary.get("test") or {})
                            for r in ctx.by_objective[obj]]
                per_seed = [(s, o, t) for s, o, t in per_seed if _num(o.get("confidence")) and _num(o.get("ece"))]
                if per_seed:
                    rows.append((obj, per_seed))
            if not rows:
                continue
            title = f"{ctx.dataset}: confidence and ECE on the empty-mask OOD set {name}"
            blocks.append(Block(
                slug=f"{ctx.slug}-dense-ood-{_safe(name)}", title=title,
                body=ood_bars(rows, ood_name=name, colours=ctx.colours, title=title,
                              slug=f"{ctx.slug}-dood-{len(blocks)}"),
                caption=f"summary.json ood[{name}]: pixel confidence max(s, 1 - s) averaged over every pixel of the "
                        "OOD set, whose masks are empty (a model that is unsure where no object is has a low value), "
                        "and the pooled pixel ECE there (accuracy = fraction of pixels predicted background); bars = "
                        "mean over seeds, dots = seeds, hollow diamond = the same statistic on the test split."))
        if not blocks:
            return None
        return Section("Out-of-distribution: empty-mask images", blocks)


# ---------------------------------------------------------------------------------------------------- reading
def read_reliability(run: Any) -> tuple[int, dict[str, dict[str, np.ndarray]]]:
    """``(n_bins, {view: {"count", "conf_sum", "acc_sum"}})`` of a run's ``reliability_test.json`` (float64 [B]).

    Raises:
        FileNotFoundError: the run saved no such file.
        ValueError: malformed content (named).
    """
    from caltrain.utils.io import read_json

    path = run.files.reliability("test")
    data = read_json(path)
    n_bins = data.get("n_bins") if isinstance(data, dict) else None
    if not isinstance(n_bins, int) or n_bins < 1:
        raise ValueError(f"{path}: expected a positive integer 'n_bins', got {n_bins!r}")
    views = {}
    for view, sums in data.items():
        if view == "n_bins":
            continue
        if not isinstance(sums, dict):
            raise ValueError(f"{path}: entry {view!r} is not an object of bin sums")
        arrays = {}
        for key in ("count", "conf_sum", "acc_sum"):
            a = np.asarray(sums.get(key, []), dtype=np.float64)
            if a.shape != (n_bins,) or not np.all(np.isfinite(a)) or np.any(a < 0):
                raise ValueError(f"{path}: {view}.{key} must be {n_bins} finite non-negative numbers")
            arrays[key] = a
        views[view] = arrays
    if "uncalibrated" not in views:
        raise ValueError(f"{path}: no 'uncalibrated' entry (holds {sorted(views)})")
    return n_bins, views


def reliability_diagram(sums: dict[str, np.ndarray], *, label: str | None = None):
    """A :class:`~caltrain.report.ReliabilityDiagram` from pooled equal-width bin sums (``count``, ``conf_sum``,
    ``acc_sum`` [B]): the bins of :meth:`caltrain.metrics.ReliabilityCurve.from_stats` and the ECE of
    :func:`caltrain.metrics.ece.calibration_error_from_stats` (sum_b |A_b - S_b| / N), the numbers the trainer's
    :class:`caltrain.metrics.DenseCalibration` reports."""
    import torch

    from caltrain.metrics import BinStats, ReliabilityCurve
    from caltrain.metrics.binning import uniform_edges
    from caltrain.metrics.ece import calibration_error_from_stats
    from caltrain.report.reliability import ReliabilityDiagram

    count = torch.as_tensor(sums["count"], dtype=torch.float64)
    stats = BinStats(count, torch.as_tensor(sums["conf_sum"], dtype=torch.float64),
                     torch.as_tensor(sums["acc_sum"], dtype=torch.float64), uniform_edges(count.shape[0]))
    curve = ReliabilityCurve.from_stats(stats)
    filled = np.flatnonzero(count.numpy() > 0)
    edges = curve.edges.numpy()
    span = (float(edges[filled[0]]), float(edges[filled[-1] + 1])) if filled.size else (0.0, 1.0)
    return ReliabilityDiagram(edges=edges, confidence=curve.confidence.numpy(), accuracy=curve.accuracy.numpy(),
                              count=count.numpy(), ece=float(calibration_error_from_stats(stats)) if filled.size
                              else 0.0, binning="uniform", label=label, data_range=span)


def read_examples(run: Any) -> dict[str, np.ndarray]:
    """The arrays of a run's ``examples_test.npz`` (:func:`caltrain.utils.io.load_arrays`: no pickle), checked.

    Raises:
        FileNotFoundError: no such file. ValueError: missing arrays or shapes that do not agree (named).
    """
    from caltrain.utils.io import load_arrays

    path = run.files.examples("test")
    arrays = load_arrays(path)
    if "index" not in arrays:
        raise ValueError(f"{path}: no 'index' array (holds {sorted(arrays)})")
    n = len(arrays["index"])
    if n == 0:
        return arrays
    for key in ("image", "mask", "probability"):
        if key not in arrays:
            raise ValueError(f"{path}: no {key!r} array (holds {sorted(arrays)})")
    shape = arrays["probability"].shape
    if len(shape) != 4 or shape[0] != n or shape[1] != 1:
        raise ValueError(f"{path}: probability must be [n, 1, H, W] with n = {n}, got {list(shape)}")
    for key in ("mask", "posterior"):
        if key in arrays and arrays[key].shape != shape:
            raise ValueError(f"{path}: {key} has shape {list(arrays[key].shape)}, probability {list(shape)}")
    image = arrays["image"]
    if image.ndim != 4 or image.shape[0] != n or image.shape[2:] != shape[2:]:
        raise ValueError(f"{path}: image must be [n, C, H, W] matching probability {list(shape)}, got "
                         f"{list(image.shape)}")
    return arrays


def read_alpha(run: Any) -> np.ndarray | None:
    """ASLP's final per-image α [N] (float64) from ``sample_state.npz``, or None when the run saved none."""
    from caltrain.utils.io import load_arrays

    path = run.files.sample_state
    if not path.is_file():
        return None
    alpha = load_arrays(path).get("alpha")
    if alpha is None:
        return None
    alpha = np.asarray(alpha, dtype=np.float64).ravel()
    if not np.all(np.isfinite(alpha)):
        raise ValueError(f"{path}: alpha holds non-finite values")
    return alpha


#: The quantile keys of ASLP's per-epoch record (:data:`caltrain.losses.adaptive_stochastic_label_perturbation.
#: QUANTILES`), in order.
_QUANTILE_KEYS = ("alpha_q00", "alpha_q10", "alpha_q25", "alpha_q50", "alpha_q75", "alpha_q90", "alpha_q100")


def alpha_records(run: Any) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
    """``(epochs [E], {key: values [E]})`` of the ``objective`` entries of a run's epoch records that hold α's
    distribution (``alpha_mean`` and the quantiles; NaN where one is missing), or None when none does."""
    rows = [(r["epoch"], r["objective"]) for r in run.epochs
            if isinstance(r.get("objective"), dict) and "alpha_mean" in r["objective"]]
    if not rows:
        return None
    keys = ("alpha_mean", *_QUANTILE_KEYS, "alpha_at_zero")
    values = {k: np.array([float(o[k]) if _num(o.get(k)) else np.nan for _, o in rows]) for k in keys}
    return np.array([float(e) for e, _ in rows]), values


# ------------------------------------------------------------------------------------------------ PNG images
def png_bytes(pixels: np.ndarray, *, palette: np.ndarray | None = None) -> bytes:
    """A PNG file (zlib, filter 0 on every row) of ``pixels``: uint8 ``[H, W]`` grey, ``[H, W, 3]`` RGB, or
    ``[H, W]`` indices into ``palette`` (uint8 [P, 3], P <= 256). PNG specification (W3C, 2003), sections 11.2.

    Example:
        >>> data = png_bytes(np.array([[0, 255]], dtype=np.uint8))
        >>> data[:8] == b"\\x89PNG\\r\\n\\x1a\\n", data[12:16]
        (True, b'IHDR')
    """
    a = np.ascontiguousarray(pixels)
    if a.dtype != np.uint8 or a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3) or 0 in a.shape[:2]:
        raise ValueError(f"pixels: expected uint8 [H, W] or [H, W, 3] with H, W >= 1, got {a.dtype} {list(a.shape)}")
    if palette is not None:
        palette = np.ascontiguousarray(palette, dtype=np.uint8)
        if a.ndim != 2 or palette.ndim != 2 or palette.shape[1] != 3 or not 1 <= palette.shape[0] <= 256:
            raise ValueError("palette: expected uint8 [P, 3] with 1 <= P <= 256, for [H, W] indices")
        if int(a.max()) >= palette.shape[0]:
            raise ValueError(f"pixels: index {int(a.max())} outside the palette of {palette.shape[0]} colours")
    h, w = a.shape[:2]
    colour_type = 3 if palette is not None else (2 if a.ndim == 3 else 0)
    raw = np.concatenate([np.zeros((h, 1), dtype=np.uint8), a.reshape(h, -1)], axis=1).tobytes()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
    if palette is not None:
        out += chunk(b"PLTE", palette.tobytes())
    return out + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def png_data_uri(pixels: np.ndarray, *, palette: np.ndarray | None = None) -> str:
    """``data:image/png;base64,...`` of :func:`png_bytes`."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels, palette=palette)).decode("ascii")


def _colour_map(anchors: Sequence[tuple[int, int, int]], n: int = 256) -> np.ndarray:
    """uint8 [n, 3]: linear interpolation between equally spaced RGB anchors."""
    t = np.linspace(0.0, 1.0, n)
    pos = np.linspace(0.0, 1.0, len(anchors))
    rgb = np.asarray(anchors, dtype=np.float64)
    return np.stack([np.interp(t, pos, rgb[:, c]) for c in range(3)], axis=1).round().astype(np.uint8)


_CONF_MAP = _colour_map(_VIRIDIS)


def _block_mean(a: np.ndarray, factor: int) -> np.ndarray:
    """[H, W, ...] averaged over ``factor`` x ``factor`` blocks (rows and columns beyond a multiple dropped)."""
    if factor <= 1:
        return a.astype(np.float64)
    h, w = (a.shape[0] // factor) * factor, (a.shape[1] // factor) * factor
    a = a[:h, :w].astype(np.float64)
    return a.reshape(h // factor, factor, w // factor, factor, *a.shape[2:]).mean(axis=(1, 3))


def _unit_grey(values: np.ndarray, factor: int) -> np.ndarray:
    """Values in [0, 1] [H, W] -> uint8 grey 0..255 (block means first)."""
    return np.clip(np.round(255 * _block_mean(values, factor)), 0, 255).astype(np.uint8)


def _display_image(image: np.ndarray, factor: int) -> tuple[np.ndarray, str]:
    """One input image [C, H, W] -> uint8 [h, w] or [h, w, 3] for display, and how it was scaled."""
    note = ""
    if image.dtype != np.uint8:
        x = image.astype(np.float64)
        lo, hi = float(np.min(x)), float(np.max(x))
        x = (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)
        note = f", min-max scaled from [{lo:.3g}, {hi:.3g}]"
    else:
        x = image.astype(np.float64) / 255
    if x.shape[0] == 3:
        return _unit_grey(np.moveaxis(x, 0, -1), factor), note
    if x.shape[0] != 1:
        note += f", first of {x.shape[0]} channels"
    return _unit_grey(x[0], factor), note


# ---------------------------------------------------------------------------------------------------- figures
def example_grid(arrays: dict[str, np.ndarray], *, title: str, objective: str, seed: int, slug: str,
                 n_shown: int = N_SHOWN, tile: float = _TILE) -> str:
    """One objective's example maps: for each of the first ``n_shown`` images, side by side, the input, the
    ground-truth mask, the true posterior (when saved), the predicted probability s and the confidence
    max(s, 1 - s); colour bars beneath. Returns an ``<svg class="plot">``."""
    from caltrain.report.charts import MIN_WIDTH
    from caltrain.report.svg import Canvas

    n = min(n_shown, len(arrays["index"]))
    has_post = "posterior" in arrays
    kinds = ["image", "ground truth", *(["posterior"] if has_post else []), "probability s", "confidence"]
    height_px, width_px = arrays["probability"].shape[2:]
    factor = max(1, math.ceil(max(height_px, width_px) / MAX_SIDE))
    aspect = height_px / width_px
    th = tile * aspect
    gap, group_gap, left = 3, 16, 42
    group_w = len(kinds) * (tile + gap) - gap
    width = max(left + n * (group_w + group_gap), MIN_WIDTH, _title_width(title))
    bar_y = 64 + 14 + th + 34
    height = bar_y + 44
    canvas = Canvas(width, height, title=title, slug=slug, objective=objective)
    grey = f"{slug}-grey"
    conf = f"{slug}-conf"
    stops = "".join(f'<stop offset="{i / (len(_VIRIDIS) - 1):.2f}" stop-color="rgb{c}"/>'
                    for i, c in enumerate(_VIRIDIS))
    canvas.defs.append(f'<linearGradient id="{grey}"><stop offset="0" stop-color="#000"/>'
                       f'<stop offset="1" stop-color="#fff"/></linearGradient>'
                       f'<linearGradient id="{conf}">{stops}</linearGradient>')
    canvas.legend([("mask, true posterior, probability s: black 0 → white 1", {"fill": f"url(#{grey})",
                                                                                "opacity": 1, "colour": "#888"}),
                   ("confidence max(s, 1 − s): 0.5 → 1", {"fill": f"url(#{conf})", "opacity": 1,
                                                             "colour": "#888"})],
                  x=12, y=36, width=width - 24)
    top = 64 + 14
    index = arrays["index"]
    parts = []
    for i in range(n):
        x0 = left + i * (group_w + group_gap)
        s = arrays["probability"][i, 0].astype(np.float64)
        y = arrays["mask"][i, 0].astype(np.float64)
        c = np.maximum(s, 1 - s)
        acc = float(np.mean((s >= 0.5) == (y >= 0.5)))
        shown, note = _display_image(arrays["image"][i], factor)
        maps = [(shown, None, f"test image {int(index[i])}{note}"),
                (_unit_grey(y, factor), None, f"ground truth: {100 * float(np.mean(y >= 0.5)):.1f}% foreground")]
        if has_post:
            q = arrays["posterior"][i, 0].astype(np.float64)
            maps.append((_unit_grey(q, factor), None, f"true posterior P(y = 1 | x): mean {float(np.mean(q)):.3f}"))
        maps.append((_unit_grey(s, factor), None, f"{objective}: predicted probability s, mean {float(np.mean(s)):.3f}"
                                                  f", {100 * float(np.mean(s >= 0.5)):.1f}% predicted foreground"))
        cidx = np.clip(np.round(255 * (2 * _block_mean(c, factor) - 1)), 0, 255).astype(np.uint8)
        maps.append((cidx, _CONF_MAP, f"{objective}: confidence max(s, 1 − s), mean {float(np.mean(c)):.3f}; pixel "
                                      f"accuracy {100 * acc:.1f}% on this image"))
        for k, ((pixels, palette, tip), kind) in enumerate(zip(maps, kinds)):
            x = x0 + k * (tile + gap)
            parts.append(f'<text x="{x + tile / 2:.1f}" y="{top - 4:.1f}" text-anchor="middle" font-size="8.5" '
                         f'fill="#444">{html.escape(kind)}</text>')
            parts.append(f'<image x="{x:.1f}" y="{top:.1f}" width="{tile:.1f}" height="{th:.1f}" '
                         'preserveAspectRatio="none" style="image-rendering: pixelated" '
                         f'href="{png_data_uri(pixels, palette=palette)}" data-objective="{html.escape(objective)}" '
                         f'data-tip="{html.escape(tip, quote=True)}"/>')
            parts.append(f'<rect x="{x:.1f}" y="{top:.1f}" width="{tile:.1f}" height="{th:.1f}" fill="none" '
                         'stroke="#bbb" stroke-width="0.6"/>')
        parts.append(f'<text class="xlabel" x="{x0 + group_w / 2:.1f}" y="{top + th + 14:.1f}" text-anchor="middle" '
                     f'font-size="10" fill="#333">test image {int(index[i])} · pixel accuracy {100 * acc:.1f}%</text>')
    cy = top + th / 2
    parts.append(f'<text class="ylabel" x="{left - 14:.1f}" y="{cy:.1f}" text-anchor="middle" font-size="10" '
                 f'fill="#333" transform="rotate(-90 {left - 14:.1f} {cy:.1f})">{html.escape(objective)}, seed '
                 f"{seed}</text>")
    canvas.add("".join(parts))
    for j, (lo, label, fill) in enumerate(((0.0, "mask, posterior, probability s", grey),
                                           (0.5, "confidence max(s, 1 − s)", conf))):
        p = canvas.panel(left + j * 260, bar_y, 200, 9, xlim=(lo, 1.0), ylim=(0, 1), xlabel=label, yticks=False,
                         n_ticks=6)
        p.bars([lo], [1.0 - lo], [1.0], colour=f"url(#{fill})", opacity=1.0, stroke=None)
    return canvas.render()


def alpha_histogram(finals: dict[str, list[tuple[int, np.ndarray]]], *, colours: dict[str, str], title: str,
                    slug: str, bins: int = ALPHA_BINS, columns: int = 4, panel_w: float = 230,
                    panel_h: float = 120) -> str:
    """Small multiples: per ASLP objective, the histogram of the final α_i of every seed's training images
    (counts added over seeds), on shared equal-width bins from 0 to the largest α; dashed line at the mean. Each
    panel has its own count axis (a variant that keeps every α at 0 would flatten the others)."""
    from caltrain.report.charts import MIN_WIDTH
    from caltrain.report.svg import Canvas

    edges = alpha_edges(finals, bins)
    counts = {obj: [(seed, np.histogram(a, bins=edges)[0]) for seed, a in runs] for obj, runs in finals.items()}
    columns = max(1, min(columns, len(finals)))
    lines = math.ceil(len(finals) / columns)
    left, top, gap_x, gap_y = 52, 76, 40, 62
    width = max(left + columns * (panel_w + gap_x), MIN_WIDTH, _title_width(title))
    height = top + lines * (panel_h + gap_y)
    canvas = Canvas(width, height, title=title, slug=slug)
    canvas.legend([("training images per α bin (seeds pooled)", {"fill": "#777", "opacity": 0.8, "colour": "#333"}),
                   ("mean α", {"colour": "#222", "dash": "4 2", "width": 1.2})], x=12, y=36, width=width - 24)
    for i, (obj, per) in enumerate(counts.items()):
        gx, gy = i % columns, i // columns
        alpha = np.concatenate([a for _, a in finals[obj]])
        total = sum(c for _, c in per)
        ymax = float(total.max()) or 1.0
        sub = (f"{obj}: {len(per)} seed{'s' if len(per) > 1 else ''} × {len(alpha) // max(len(per), 1)}, "
               f"{100 * float(np.mean(alpha == 0)):.0f}% at 0")
        p = canvas.panel(left + gx * (panel_w + gap_x), top + gy * (panel_h + gap_y), panel_w, panel_h,
                         xlim=(float(edges[0]), float(edges[-1])), ylim=(0, 1.05 * ymax), title=sub,
                         xlabel="final α_i", ylabel="images" if gx == 0 else None, n_ticks=5)
        tips = [f"{obj}: α in [{edges[b]:.4g}, {edges[b + 1]:.4g}{']' if b == bins - 1 else ')'}: {int(total[b])} "
                "images (" + ", ".join(f"seed {s}: {int(c[b])}" for s, c in per) + ")" for b in range(bins)]
        p.bars(edges[:-1], np.diff(edges), total.astype(np.float64), colour=colours.get(obj, "#777"), tips=tips,
               objective=obj)
        mean = float(alpha.mean())
        p.line([mean, mean], [0, 1.05 * ymax], colour="#222", dash="4 2", width=1.2,
               tip=f"{obj}: mean α {mean:.4g} over {len(alpha)} images")
    return canvas.render()


def alpha_edges(finals: dict[str, list[tuple[int, np.ndarray]]], bins: int = ALPHA_BINS) -> np.ndarray:
    """The α histogram's shared edges [bins + 1]: equal width from 0 to the largest α (1e-3 when every α is 0)."""
    hi = max(float(a.max()) for runs in finals.values() for _, a in runs if a.size) if finals else 0.0
    return np.linspace(0.0, hi if hi > 0 else 1e-3, bins + 1)


def alpha_epochs(curves: dict[str, list[tuple[int, np.ndarray, dict[str, np.ndarray]]]], *,
                 colours: dict[str, str], title: str, slug: str, columns: int = 4, panel_w: float = 230,
                 panel_h: float = 120) -> str:
    """Small multiples: per ASLP objective, α's quantiles over the training images against epochs (averaged
    over seeds at each epoch the seeds share), and each seed's mean α."""
    from caltrain.report.charts import MIN_WIDTH
    from caltrain.report.svg import Canvas, padded

    columns = max(1, min(columns, len(curves)))
    lines = math.ceil(len(curves) / columns)
    left, top, gap_x, gap_y = 52, 76, 30, 62
    width = max(left + columns * (panel_w + gap_x), MIN_WIDTH, _title_width(title))
    height = top + lines * (panel_h + gap_y)
    canvas = Canvas(width, height, title=title, slug=slug)
    canvas.legend([("q0–q100", {"fill": "#555", "opacity": 0.12, "colour": "#aaa"}),
                   ("q10–q90", {"fill": "#555", "opacity": 0.25, "colour": "#999"}),
                   ("q25–q75", {"fill": "#555", "opacity": 0.45, "colour": "#777"}),
                   ("median (quantiles averaged over seeds)", {"colour": "#222", "width": 1.8}),
                   ("mean α, one line per seed", {"colour": "#222", "width": 1, "dash": "3 2"})],
                  x=12, y=36, width=width - 24)
    xs = np.concatenate([e for runs in curves.values() for _, e, _ in runs])
    ys = np.concatenate([v[k] for runs in curves.values() for _, _, v in runs for k in ("alpha_q00", "alpha_q100",
                                                                                       "alpha_mean")])
    ys = ys[np.isfinite(ys)]
    xlim = (float(xs.min()), float(xs.max())) if xs.max() > xs.min() else (float(xs.min()) - 1, float(xs.max()) + 1)
    n_ticks = int(min(5, xlim[1] - xlim[0] + 1))  # whole epochs when there are few
    ylim = padded(0.0, float(ys.max()) if ys.size else 1.0, floor=0.0)
    for i, (obj, runs) in enumerate(curves.items()):
        gx, gy = i % columns, i // columns
        colour = colours.get(obj, "#555")
        common = sorted(set.intersection(*(set(e.tolist()) for _, e, _ in runs)))
        q = {k: np.array([np.nanmean([v[k][list(e).index(ep)] for _, e, v in runs]) for ep in common])
             for k in _QUANTILE_KEYS}
        p = canvas.panel(left + gx * (panel_w + gap_x), top + gy * (panel_h + gap_y), panel_w, panel_h, xlim=xlim,
                         ylim=ylim, title=f"{obj}: {len(runs)} seed{'s' if len(runs) > 1 else ''}", xlabel="epoch",
                         ylabel="α" if gx == 0 else None, n_ticks=n_ticks)
        ep = np.array(common, dtype=np.float64)
        for lo, hi, op in (("alpha_q00", "alpha_q100", 0.12), ("alpha_q10", "alpha_q90", 0.25),
                           ("alpha_q25", "alpha_q75", 0.45)):
            p.band(ep, q[lo], q[hi], colour=colour, opacity=op, objective=obj)
        tip = f"{obj}, median α by epoch (mean over seeds): " + ", ".join(
            f"{int(e) if float(e).is_integer() else e}: {m:.3g}" for e, m in zip(ep, q["alpha_q50"]))
        p.line(ep, q["alpha_q50"], colour=colour, width=1.8, objective=obj, tip=tip)
        for seed, e, v in runs:
            p.line(e, v["alpha_mean"], colour="#222", width=1, dash="3 2", objective=obj,
                   tip=f"{obj} seed {seed}, mean α by epoch: " + ", ".join(
                       f"{int(a) if float(a).is_integer() else a}: {b:.3g}" for a, b in zip(e, v["alpha_mean"])))
    return canvas.render()


def ood_bars(rows: list[tuple[str, list[tuple[int, dict[str, Any], dict[str, Any]]]]], *, ood_name: str,
             colours: dict[str, str], title: str, slug: str, panel_w: float = 300) -> str:
    """Horizontal bars, one row per objective: mean confidence and pooled ECE on the OOD set ``ood_name`` (mean
    over seeds; dots: seeds; hollow diamond: the test split's value)."""
    from caltrain.report.charts import MIN_WIDTH
    from caltrain.report.svg import Canvas, padded

    n = len(rows)
    label_w = 30 + 6.4 * max(len(obj) for obj, _ in rows)
    left, top, row_h, gap = label_w, 62, 22, 40
    height = top + n * row_h + 46
    width = max(left + 2 * (panel_w + gap), MIN_WIDTH, _title_width(title))
    canvas = Canvas(width, height, title=title, slug=slug)
    canvas.legend([("mean over seeds", {"fill": "#888", "opacity": 0.7, "colour": "#333"}),
                   ("one seed", {"colour": "#222", "marker": "o", "line": False}),
                   ("test split (mean over seeds)", {"colour": "#222", "marker": "D", "hollow": True, "line": False})],
                  x=12, y=36, width=width - 24)
    for j, (key, label) in enumerate((("confidence", f"mean confidence on {ood_name} (%)"),
                                      ("ece", f"pooled pixel ECE on {ood_name} (%)"))):
        vals = [100 * float(o[key]) for _, per in rows for _, o, _ in per]
        vals += [100 * float(t[key]) for _, per in rows for _, _, t in per if _num(t.get(key))]
        lo = 50.0 if key == "confidence" else 0.0
        xlim = padded(min(vals + [lo]), max(vals), floor=lo)
        x0 = left + j * (panel_w + gap)
        p = canvas.panel(x0, top, panel_w, n * row_h, xlim=xlim, ylim=(-0.5, n - 0.5), xlabel=label,
                         yticks=False, n_ticks=5)
        for i, (obj, per) in enumerate(rows):
            yc = n - 1 - i
            seeds = np.array([100 * float(o[key]) for _, o, _ in per])
            mean = float(seeds.mean())
            tip = (f"{obj}, {ood_name}: {key} {mean:.2f}% mean over {len(seeds)} seed(s) ("
                   + ", ".join(f"seed {s}: {100 * float(o[key]):.2f}%" for s, o, _ in per) + ")")
            p.bars([xlim[0]], [mean - xlim[0]], [0.6], bottom=[yc - 0.3], colour=colours.get(obj, "#888"),
                   opacity=0.7, tips=[tip], objective=obj)
            for (s, _, _), v in zip(per, seeds):
                p.point(float(v), float(yc), colour="#222", size=2.2, objective=obj, tip=f"{obj} seed {s}: {v:.2f}%")
            test = [100 * float(t[key]) for _, _, t in per if _num(t.get(key))]
            if test:
                tv = float(np.mean(test))
                p.point(tv, float(yc), colour="#222", marker="D", size=3.2, hollow=True, objective=obj,
                        tip=f"{obj}: {key} on the test split {tv:.2f}% (mean over seeds)")
            if j == 0:
                canvas.add(f'<text x="{x0 - 6:.1f}" y="{p.sy(yc) + 3.5:.1f}" text-anchor="end" font-size="10" '
                           f'fill="#222" data-objective="{html.escape(obj)}">{html.escape(obj)}</text>')
    cy = top + n * row_h / 2
    canvas.add(f'<text class="ylabel" x="14" y="{cy:.1f}" text-anchor="middle" font-size="10" fill="#333" '
               f'transform="rotate(-90 14 {cy:.1f})">objective</text>')
    return canvas.render()


# ---------------------------------------------------------------------------------------------------- helpers
def _picked(ctx: DatasetContext) -> list[str]:
    """The objectives shown at first: the reference and the one with the lowest mean test ECE."""
    def mean_ece(obj: str) -> float:
        vals = [(r.summary.get("test") or {}).get("ece") for r in ctx.by_objective[obj]]
        vals = [float(v) for v in vals if _num(v)]
        return float(np.mean(vals)) if vals else math.inf

    picked = [ctx.reference, min(ctx.objectives, key=mean_ece)]
    return [o for o in dict.fromkeys(picked) if o in ctx.objectives]


def _title_width(title: str) -> float:
    """The width a figure needs for its title (13 px semi-bold, about 7.4 px a character, 12 px margins)."""
    return 24 + 7.4 * len(title)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in text)
