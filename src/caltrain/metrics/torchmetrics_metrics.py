"""caltrain's metrics as ``torchmetrics.Metric`` subclasses, for Lightning and ``MetricCollection`` loops.

Needs the optional ``torchmetrics`` package (``pip install torchmetrics`` or ``pip install
'caltrain[torchmetrics]'``); ``import caltrain.metrics`` never imports it. Every class takes ``update(probs,
labels)`` with the inputs of caltrain's functions (``[N, K]`` or dense ``[N, K, *spatial]`` probabilities, or
logits with ``from_logits=True``, never guessed from value ranges; ``ignore_index`` drops dense entries) and
``compute()`` returns the float64 value of the matching function on every sample seen:

- :class:`ExpectedCalibrationError` = :func:`~caltrain.metrics.expected_calibration_error` (equal-width bins):
  3 float64 ``[n_bins]`` sums;
- :class:`ClasswiseCalibrationError` = :func:`~caltrain.metrics.classwise_calibration_error`: 3 ``[K, n_bins]`` sums;
- :class:`NegativeLogLikelihood`, :class:`BrierScore` = :func:`~caltrain.metrics.negative_log_likelihood`,
  :func:`~caltrain.metrics.brier_score`: 2 scalar sums;
- :class:`AdaptiveCalibrationError` = :func:`~caltrain.metrics.adaptive_calibration_error` (equal-mass bins),
  :class:`AURC` / :class:`EAURC` = :func:`~caltrain.metrics.aurc` / :func:`~caltrain.metrics.eaurc` of the
  top-label confidence: O(N) ``cat`` states.

The binned states are the float64 per-bin sums ``(n_b, S_b, A_b)`` of :mod:`caltrain.metrics.binning`, computed
by caltrain's own statistics functions and reduced with ``dist_reduce_fx="sum"``: batch splits and processes
pool exactly, and a process that saw no batch contributes zeros. Equal-mass bins (AdaECE) and AURC need every
sample, so those classes keep the top-label confidence and correctness of every sample (two float64 ``[N]``
``cat`` states, 16 bytes a sample) and are a separate class, so that :class:`ExpectedCalibrationError` stays O(B).
States stay float64 under ``.half()`` / ``.float()`` (torchmetrics only converts them through ``set_dtype``).
As in torchmetrics, states are not in ``state_dict()`` unless ``metric.persistent(True)``.

Example:
    >>> import torch
    >>> from torchmetrics import MetricCollection
    >>> metrics = MetricCollection({"ece": ExpectedCalibrationError(n_bins=10), "nll": NegativeLogLikelihood()})
    >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]], dtype=torch.float64)
    >>> metrics.update(p[:2], torch.tensor([0, 1])); metrics.update(p[2:], torch.tensor([1]))
    >>> {k: round(float(v), 6) for k, v in metrics.compute().items()}
    {'ece': 0.333333, 'nll': 0.459442}
"""

from __future__ import annotations

from typing import Any

import torch

try:
    from torchmetrics import Metric
    from torchmetrics.utilities import dim_zero_cat
    from torchmetrics.utilities.distributed import gather_all_tensors
except ImportError as exc:  # pragma: no cover - exercised by a test with torchmetrics hidden
    raise ImportError(
        "caltrain.metrics.torchmetrics_metrics needs torchmetrics: pip install torchmetrics "
        "(or pip install 'caltrain[torchmetrics]')"
    ) from exc

from caltrain.metrics.binning import BinStats, binned_statistics, uniform_edges
from caltrain.metrics.classwise import classwise_bin_statistics
from caltrain.metrics.ece import NORMS, calibration_error_from_stats, top_label, top_label_statistics
from caltrain.metrics.proper_scores import brier_per_sample, nll_per_sample
from caltrain.metrics.selective import aurc, eaurc
from caltrain.metrics.validation import prepare
from caltrain.utils.checks import check_choice, check_positive_int

__all__ = [
    "AURC",
    "AdaptiveCalibrationError",
    "BrierScore",
    "ClasswiseCalibrationError",
    "EAURC",
    "ExpectedCalibrationError",
    "NegativeLogLikelihood",
]

_F64 = torch.float64


class _CaltrainMetric(Metric):
    """Base: caltrain's input preparation; subclasses add float64 states and implement ``_add`` / ``compute``.

    Args:
        from_logits: inputs are logits (a float64 softmax is applied).
        ignore_index: label value of entries to leave out (dense inputs).
        validate_args: check values on every update (``False`` in hot loops: shape checks only).
        **kwargs: ``torchmetrics.Metric`` options (``sync_on_compute``, ``process_group``, ``compute_on_cpu``...).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    plot_lower_bound = 0.0

    def __init__(
        self,
        *,
        from_logits: bool = False,
        ignore_index: int | None = None,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.from_logits = bool(from_logits)
        self.ignore_index = ignore_index
        self.validate_args = bool(validate_args)

    def _num_classes(self) -> int | None:
        return None

    def update(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        """Add one batch: ``probs [B, K(, *spatial)]`` and ``labels [B(, *spatial)]``."""
        p, y = prepare(
            probs,
            labels,
            from_logits=self.from_logits,
            ignore_index=self.ignore_index,
            validate_args=self.validate_args,
            num_classes=self._num_classes(),
        )
        self._add(p, y)

    def _add(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        raise NotImplementedError

    def _check_seen(self, n: torch.Tensor) -> None:
        if float(n) == 0:
            raise ValueError(f"{type(self).__name__}: no samples seen; call update() before compute()")


def _sum_state(metric: Metric, name: str, shape: tuple[int, ...] = ()) -> None:
    metric.add_state(name, default=torch.zeros(shape, dtype=_F64), dist_reduce_fx="sum")


class _BinnedMetric(_CaltrainMetric):
    """Per-bin float64 sums ``count``, ``conf_sum``, ``acc_sum`` shaped ``[*lead, n_bins]``."""

    def __init__(self, n_bins: int, norm: str, lead: tuple[int, ...], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_bins = check_positive_int(n_bins, "n_bins")
        self.norm = check_choice(norm, "norm", NORMS)
        for name in ("count", "conf_sum", "acc_sum"):
            _sum_state(self, name, (*lead, self.n_bins))

    def _accumulate(self, stats: BinStats) -> None:
        self.count += stats.count
        self.conf_sum += stats.conf_sum
        self.acc_sum += stats.acc_sum

    def _stats(self) -> BinStats:
        self._check_seen(self.count.sum())
        edges = uniform_edges(self.n_bins, device=self.count.device)
        return BinStats(self.count, self.conf_sum, self.acc_sum, edges)


class ExpectedCalibrationError(_BinnedMetric):
    """Top-label ECE / RMSCE / MCE (``norm`` l1 / l2 / max) on ``n_bins`` equal-width bins ``(lo, hi]``.

    Equals :func:`caltrain.metrics.expected_calibration_error` (``binning="uniform"``) on every sample seen;
    O(``n_bins``) float64 state. For equal-mass bins (AdaECE) use :class:`AdaptiveCalibrationError`.
    """

    def __init__(self, n_bins: int = 15, norm: str = "l1", **kwargs: Any) -> None:
        super().__init__(n_bins, norm, (), **kwargs)

    def _add(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        self._accumulate(top_label_statistics(probs, labels, self.n_bins))

    def compute(self) -> torch.Tensor:
        return calibration_error_from_stats(self._stats(), self.norm)


class ClasswiseCalibrationError(_BinnedMetric):
    """Classwise ECE (Kull et al. 2019) on ``n_bins`` equal-width bins per class; ``[num_classes, n_bins]`` state.

    Equals :func:`caltrain.metrics.classwise_calibration_error`. ``num_classes`` fixes the state shape upfront
    (as torchmetrics' multiclass metrics do), so processes can sum their states before any batch.
    """

    def __init__(self, num_classes: int, n_bins: int = 15, norm: str = "l1", **kwargs: Any) -> None:
        self.num_classes = check_positive_int(num_classes, "num_classes")
        super().__init__(n_bins, norm, (self.num_classes,), **kwargs)

    def _num_classes(self) -> int | None:
        return self.num_classes

    def _add(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        if probs.shape[1] != self.num_classes:
            raise ValueError(
                f"probs: expected {self.num_classes} classes (num_classes) on dim 1, got {probs.shape[1]}"
            )
        self._accumulate(classwise_bin_statistics(probs, labels, self.n_bins))

    def compute(self) -> torch.Tensor:
        return calibration_error_from_stats(self._stats(), self.norm).mean()


class _MeanOf(_CaltrainMetric):
    """Mean of a float64 per-sample value: states ``total`` and ``n``."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        _sum_state(self, "total")
        _sum_state(self, "n")

    def _per_sample(self, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _add(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        values = self._per_sample(probs, labels)
        self.total += values.sum()
        self.n += values.numel()

    def compute(self) -> torch.Tensor:
        self._check_seen(self.n)
        return self.total / self.n


class NegativeLogLikelihood(_MeanOf):
    """Mean ``-log p_y`` (float64; :func:`caltrain.metrics.negative_log_likelihood`, same clamp)."""

    _per_sample = staticmethod(nll_per_sample)  # the streaming class's per-sample term (one owner)


class BrierScore(_MeanOf):
    """Mean multiclass Brier score, sum over classes in [0, 2] (:func:`caltrain.metrics.brier_score`)."""

    _per_sample = staticmethod(brier_per_sample)


class _TopLabelSamples(_CaltrainMetric):
    """Keeps every sample's top-label confidence and correctness: float64 ``cat`` states, O(N) memory."""

    _CAT_STATES = ("confidence", "correct")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name in self._CAT_STATES:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def _add(self, probs: torch.Tensor, labels: torch.Tensor) -> None:
        conf, correct = top_label(probs, labels)
        self.confidence.append(conf.to(_F64))
        self.correct.append(correct.to(_F64))

    def _samples(self) -> tuple[torch.Tensor, torch.Tensor]:
        # a list of batches, or one tensor once the processes' states are gathered
        seen = not isinstance(self.confidence, list) or len(self.confidence) > 0
        conf = dim_zero_cat(self.confidence) if seen else torch.empty(0, dtype=_F64)
        self._check_seen(torch.tensor(conf.numel()))
        return conf, dim_zero_cat(self.correct).bool()

    def _sync_dist(self, dist_sync_fn: Any = gather_all_tensors, process_group: Any = None) -> None:
        # A process without a batch would otherwise send torchmetrics' empty placeholder in the default dtype
        # (float32), which does not gather with the other processes' float64 tensors.
        for name in self._CAT_STATES:
            if isinstance(getattr(self, name), list) and not getattr(self, name):
                setattr(self, name, [torch.empty(0, dtype=_F64, device=self.device)])
        super()._sync_dist(dist_sync_fn, process_group)


class AdaptiveCalibrationError(_TopLabelSamples):
    """AdaECE: top-label calibration error on ``n_bins`` equal-mass bins (Mukhoti et al. 2020).

    Equals :func:`caltrain.metrics.adaptive_calibration_error` (ties shared as there). Equal-mass bins need
    every sample: the state is O(N) (two float64 values a sample), gathered across processes in ``compute()``.
    """

    def __init__(self, n_bins: int = 15, norm: str = "l1", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.n_bins = check_positive_int(n_bins, "n_bins")
        self.norm = check_choice(norm, "norm", NORMS)

    def compute(self) -> torch.Tensor:
        conf, correct = self._samples()
        return calibration_error_from_stats(binned_statistics(conf, correct, self.n_bins, "quantile"), self.norm)


class AURC(_TopLabelSamples):
    """Area under the risk-coverage curve of the top-label confidence (:func:`caltrain.metrics.aurc`); O(N) state."""

    def compute(self) -> torch.Tensor:
        return aurc(*self._samples(), validate_args=False)


class EAURC(_TopLabelSamples):
    """Excess AURC of the top-label confidence (:func:`caltrain.metrics.eaurc`); O(N) state."""

    def compute(self) -> torch.Tensor:
        return eaurc(*self._samples(), validate_args=False)
