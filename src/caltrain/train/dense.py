"""The dense binary task in the trainer: one logit per pixel, every metric pooled over the pixels of a split.

A dataset with ``task == "dense_binary"`` (:class:`caltrain.data.splits.DatasetSplits`; masks ``[N, 1, H, W]``)
trained with an objective whose ``tasks`` include ``"dense_binary"`` (``bce``, ``sc_bce`` and its presets, ``aslp``,
``focal``) runs in the same loop, run directory, resume, NaN guard and end of run as a classifier; only the
evaluation differs, and it lives here (:class:`DenseEvaluator`, the dense counterpart of
:class:`caltrain.train.evaluation.Evaluator`, chosen by :func:`caltrain.train.evaluation.make_evaluator`).

Evaluation streams every split batch by batch and never holds a split's logit maps (a DUTS-TE sized split,
5019 images of 384x384, would need 3 GB):

- every epoch, on each evaluated split: :class:`caltrain.metrics.DenseCalibration` (pooled pixel ECE, OE, UE,
  accuracy, mean confidence, NLL, Brier; O(n_bins) memory) of ``s = sigmoid(z)`` (float64) against the mask, and
  the sums :meth:`~caltrain.losses.base.Objective.validation_statistics` returns when the objective asks for them
  (``needs_validation_statistics``: ASLP's pooled validation pixel accuracy), summed over batches and ranks;
- where the dataset knows the per-pixel posterior (``synthetic_saliency``): the true calibration error ``true_ece``,
  the pointwise error ``pointwise_ce`` and their difference ``grouping_loss``
  (:func:`caltrain.metrics.dense_true_calibration_error`, its default equal-mass estimator, the one classification
  uses). The estimator needs every (probability, posterior) pair, so those two float32 values per pixel are kept
  for that split only: synthetic splits are small by construction;
- at the end of the run (selected model): also the SOD metrics (:class:`caltrain.metrics.SODMetrics`: MAE,
  F-measure, S-measure, E-measure, per image as the SOD literature averages them), the post-hoc calibrators of
  ``eval.posthoc`` and the OOD sets.

Post-hoc calibration of a dense model: each calibrator sees one binary prediction per pixel as the two-column
logits ``(0, z)`` (so ``ts`` is binary temperature scaling, ``sigmoid(z / T)``; ``platt`` and ``beta`` take ``z``),
fitted on a seeded subsample of the validation pixels: every pixel is kept with probability
``min(1, eval.posthoc_pixels / pixels in the split)`` (``eval.posthoc_pixels``, default 10^6; 0 keeps all), drawn
from a generator seeded by the run's seed. Each fitted calibrator is then scored on **every** test pixel in the
same single streaming pass as the uncalibrated model, with the same metrics (pooled pixel metrics, true
calibration error, SOD metrics: a monotone map changes MAE and the thresholded F- and E-measures too).

OOD (``eval.ood``): the paired sets of a dense dataset have empty masks (``synthetic_saliency``: texture-only
images); ``summary["ood"][name]`` is the pooled pixel metrics on that set, of which ``confidence`` (mean
``max(s, 1 - s)``) and ``ece`` are the ones to read (a calibrated model is not confident about objects that are not
there; accuracy is the fraction of pixels predicted background).

Files (see :mod:`caltrain.train.run_dir`): no ``logits_*.npz`` (too large for a dense split); instead
``examples_test.npz`` (the first :data:`N_EXAMPLES` test images as uint8, their masks, the selected model's
foreground probabilities, and the true posterior where known) and ``reliability_test.json`` (the pooled bin
statistics of the test split, before and after each calibrator), which the report draws.

Distributed evaluation: each rank streams its shard and the metric states are summed over ranks; the samples a
shard repeats to make the shards equal (the padding of :func:`caltrain.data.make_loader`, as
``DistributedSampler`` pads) are left out, so every pixel counts once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from caltrain.train.distributed import sum_over_ranks
from caltrain.train.evaluation import Evaluator, FinalResult, SplitScore

__all__ = ["DenseEvaluator", "DenseTrainMetrics", "N_EXAMPLES", "binary_logits"]

#: Test images whose prediction maps ``examples_test.npz`` keeps for the report.
N_EXAMPLES = 8


def binary_logits(z: torch.Tensor) -> torch.Tensor:
    """``[P, 2]`` float64 two-class logits ``(0, z)`` of ``P`` per-pixel logits ``z`` (any shape, flattened): the
    input a :mod:`caltrain.posthoc` calibrator takes for one binary prediction per pixel (softmax gives
    ``(1 - sigmoid(z), sigmoid(z))``)."""
    flat = z.reshape(-1).to(torch.float64)
    return torch.stack([torch.zeros_like(flat), flat], dim=1)


def _as_masks(y: torch.Tensor) -> torch.Tensor:
    """Masks ``[B, 1, H, W]`` from ``[B, 1, H, W]`` or ``[B, H, W]``."""
    return y.unsqueeze(1) if y.ndim == 3 else y


@dataclass
class _Stream:
    """What one streaming pass over a split collects (see :meth:`DenseEvaluator._stream`)."""

    calibration: Any
    finite: bool = True
    statistics: dict[str, torch.Tensor] | None = None
    sod: Any = None
    calibrated: dict[str, "_Stream"] = field(default_factory=dict)
    conf_posterior: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    subsample: list[tuple[torch.Tensor, torch.Tensor]] = field(default_factory=list)
    examples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=list)


class DenseTrainMetrics:
    """Running pooled pixel metrics of the training batches (the logits the steps computed, on augmented images).

    The true posterior is not used: it describes the un-augmented images.
    """

    def __init__(self, n_bins: int) -> None:
        from caltrain.metrics import DenseCalibration

        self.metric = DenseCalibration(n_bins=n_bins, validate_args=False)

    def update(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> None:
        self.metric.update(torch.sigmoid(logits.double()), _as_masks(labels))

    def compute(self) -> dict[str, float]:
        return self.metric.compute()


class DenseEvaluator(Evaluator):
    """:class:`~caltrain.train.evaluation.Evaluator` of a dense binary model (module docstring).

    Extra args:
        posthoc_pixels: the validation pixels the calibrators are fitted on (0: all).
        seed: seeds the pixel subsample.
    """

    task = "dense_binary"

    def __init__(self, *, posthoc_pixels: int = 1_000_000, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.posthoc_pixels = posthoc_pixels
        self.seed = seed

    # ------------------------------------------------------------------ per epoch
    def train_metrics(self) -> DenseTrainMetrics:
        return DenseTrainMetrics(self.n_bins)

    def score(self, split: str, *, statistics: Callable[..., dict[str, torch.Tensor]] | None = None) -> SplitScore:
        stream = self._stream(self.loaders[split], len(getattr(self.data, split)),
                              posterior=getattr(self.data, split).true_posterior, statistics=statistics)
        if not stream.finite:
            return SplitScore({}, finite=False)
        return SplitScore(self._metrics_of(stream), statistics=stream.statistics)

    def evaluate(self, splits: tuple[str, ...]) -> dict[str, dict[str, float]]:
        return {s: self.score(s).metrics for s in splits}

    # ------------------------------------------------------------------ end of run
    def final(self, *, posthoc_names: tuple[str, ...], ood: bool, convention: str | None) -> FinalResult:
        from caltrain import posthoc

        val = self._stream(self.loaders["val"], len(self.data.val), posterior=self.data.val.true_posterior,
                           sod=True, subsample=self._keep_probability(len(self.data.val)) if posthoc_names else None)
        if not val.finite:
            raise ValueError("the selected model's logits are not finite on the validation split")
        fit_on = self._pixels(val.subsample) if posthoc_names else (binary_logits(torch.zeros(1)), torch.zeros(1))
        calibrated = posthoc.compare(fit_on, None, posthoc_names, n_bins=self.n_bins)
        test = self._stream(self.loaders["test"], len(self.data.test), posterior=self.data.test.true_posterior,
                            sod=True, calibrators=calibrated.calibrators, examples=N_EXAMPLES)
        if not test.finite:
            raise ValueError("the selected model's logits are not finite on the test split")
        calibrated.metrics = {name: self._metrics_of(sub) for name, sub in test.calibrated.items()}
        summary: dict[str, Any] = {
            "val": self._metrics_of(val),
            "test": self._metrics_of(test),
            "posthoc": calibrated.metrics,
            "posthoc_params": calibrated.params,
            "posthoc_pixels": int(sum(y.numel() for _, y in val.subsample)),
        }
        if ood and self.data.ood_names:
            summary["ood"] = {}
            for name, split in self.data.ood().items():
                stream = self._stream(self.make_loader(split), len(split), posterior=None)
                summary["ood"][name] = stream.calibration.compute() if stream.finite else {}
        examples = self._examples(test.examples)
        reliability = {"uncalibrated": _bins(test.calibration),
                       **{name: _bins(sub.calibration) for name, sub in test.calibrated.items()}}

        def save(run: Any) -> None:
            from caltrain.utils.io import atomic_write_json, save_npz

            save_npz(run.examples("test"), **examples)
            atomic_write_json(run.reliability("test"), {"n_bins": self.n_bins, **reliability})
            calibrated.save(run)

        return FinalResult(summary, save)

    # ------------------------------------------------------------------ the streaming pass
    @torch.no_grad()
    def _stream(self, loader: Any, n: int, *, posterior: torch.Tensor | None,
                statistics: Callable[..., dict[str, torch.Tensor]] | None = None, sod: bool = False,
                calibrators: dict[str, Any] | None = None, subsample: float | None = None,
                examples: int = 0) -> _Stream:
        """One pass over ``loader`` (``n`` samples) collecting what the caller asks for (module docstring)."""
        from caltrain import metrics

        self.model.eval()
        def accumulators() -> _Stream:
            return _Stream(metrics.DenseCalibration(n_bins=self.n_bins, validate_args=False),
                           sod=metrics.SODMetrics(validate_args=False) if sod else None)

        out = accumulators()
        out.calibrated = {name: accumulators() for name in (calibrators or {})}
        generator = torch.Generator().manual_seed(self.seed + 104729 * self.dist.rank) if subsample else None
        seen = 0
        for x, y, idx in loader:
            keep = self._unpadded(seen, idx.shape[0], n)
            seen += idx.shape[0]
            with self.autocast():
                z = self.forward_model(self.prepare(x)).float()
            if keep is not None:
                z, y, idx = z[keep], y[keep], idx[keep]
                if idx.numel() == 0:  # a batch of padding only (the last one of a shard)
                    continue
            if not bool(torch.isfinite(z).all()):
                out.finite = False
                return out
            y = _as_masks(y)
            s = torch.sigmoid(z.double())
            q = None if posterior is None else posterior.index_select(0, idx.cpu()).float()
            _accumulate(out, s, y, q)
            for name, calibrator in (calibrators or {}).items():
                p = calibrator.predict_proba(binary_logits(z))[:, 1].reshape(s.shape)
                _accumulate(out.calibrated[name], p, y, q)
            if statistics is not None:
                for key, value in statistics(z, y).items():
                    value = value.to(torch.float64)
                    out.statistics = out.statistics or {}
                    out.statistics[key] = out.statistics[key] + value if key in out.statistics else value
            if generator is not None:
                pick = torch.rand(z.numel(), generator=generator).to(z.device) < subsample
                out.subsample.append((z.reshape(-1)[pick].cpu(), y.reshape(-1)[pick].cpu()))
            if examples and len(out.examples) < examples:
                take = min(examples - len(out.examples), idx.shape[0])
                for i in range(take):  # at most N_EXAMPLES rows, once per run
                    out.examples.append((idx[i].cpu(), x[i].float().cpu(), y[i].cpu(), s[i].float().cpu()))
        if out.statistics is not None and self.dist.enabled:
            for key, value in out.statistics.items():
                out.statistics[key], _ = sum_over_ranks(value, 0, self.dist)
        return out

    def _unpadded(self, start: int, size: int, n: int) -> torch.Tensor | None:
        """Which of the next ``size`` samples of this rank's shard are real (not the padding that evens the shards):
        the ``k``-th sample of rank ``r`` is position ``r + k * world_size`` of the padded order. None: all."""
        if not self.dist.enabled:
            return None
        positions = self.dist.rank + (start + torch.arange(size)) * self.dist.world_size
        keep = positions < n
        return None if bool(keep.all()) else keep.to(self.device)

    def _keep_probability(self, n_images: int) -> float:
        """The probability each validation pixel joins the calibrators' fitting subsample."""
        height, width = (int(v) for v in self.data.input_shape[-2:])
        pixels = n_images * height * width
        if self.posthoc_pixels <= 0 or pixels <= self.posthoc_pixels:
            return 1.0
        return self.posthoc_pixels / pixels

    def _pixels(self, parts: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The subsampled validation pixels as the calibrators' ``(logits [P, 2], labels [P])``, from every rank."""
        from caltrain.train.distributed import gather_rows

        z = torch.cat([p[0] for p in parts]).to(self.device)
        y = torch.cat([p[1] for p in parts]).to(self.device)
        z, y = gather_rows((z, y), self.dist)
        if z.numel() == 0:
            raise ValueError("eval.posthoc_pixels: no validation pixel was drawn to fit the calibrators")
        return binary_logits(z), (y >= 0.5).long()

    def _metrics_of(self, stream: _Stream) -> dict[str, float]:
        """The split's summary: pooled pixel metrics, the true calibration error, the SOD metrics."""
        from caltrain import metrics

        out = dict(stream.calibration.compute())
        if stream.conf_posterior:
            s = torch.cat([c for c, _ in stream.conf_posterior])
            q = torch.cat([p for _, p in stream.conf_posterior])
            true = metrics.dense_true_calibration_error(s, q, validate_args=False)
            out.update({k: v for k, v in true.items() if k != "n"})
        if stream.sod is not None:
            out.update(stream.sod.compute())
        return out

    def _examples(self, rows: list[tuple[torch.Tensor, ...]]) -> dict[str, Any]:
        """``examples_test.npz``'s arrays: ``index`` [n], ``image`` (the dataset's uint8 images [n, C, H, W] where it
        holds them, else the inputs as the model saw them, float32), ``mask`` (uint8 [n, 1, H, W]), ``probability``
        (float32 [n, 1, H, W], the selected model's foreground probability), ``posterior`` (where known)."""
        if not rows:
            return {"index": torch.zeros(0, dtype=torch.long)}
        index = torch.stack([r[0] for r in rows])
        split = self.data.test
        images = getattr(split, "x", None)
        out = {
            "index": index,
            "image": images[index] if isinstance(images, torch.Tensor) else torch.stack([r[1] for r in rows]),
            "mask": torch.stack([r[2] for r in rows]).round().to(torch.uint8),
            "probability": torch.stack([r[3] for r in rows]),
        }
        if split.true_posterior is not None:
            out["posterior"] = split.true_posterior[index].float()
        return out


def _accumulate(stream: _Stream, s: torch.Tensor, y: torch.Tensor, q: torch.Tensor | None) -> None:
    """Add one batch of foreground probabilities ``s`` (masks ``y``, true posterior ``q`` or None) to ``stream``."""
    stream.calibration.update(s, y)
    if stream.sod is not None:
        stream.sod.update(s, y)
    if q is not None:
        stream.conf_posterior.append((s.float().cpu(), q))


def _bins(metric: Any) -> dict[str, list[float]]:
    """A streamed metric's pooled bin statistics (count, summed confidence, summed accuracy) as plain lists."""
    state = metric.state()
    return {key: state[key].tolist() for key in ("count", "conf_sum", "acc_sum")}

