"""Calibration metrics: exact, streaming, float64-accumulated. Metrics take probabilities (or ``from_logits=True``).

Functional API (tensors on any device, or NumPy arrays; float64 scalar tensors out):

- binned calibration: :func:`expected_calibration_error` (``norm`` l1/l2/max = ECE/RMSCE/MCE, ``binning``
  uniform/quantile = ECE/AdaECE), :func:`adaptive_calibration_error`, :func:`classwise_calibration_error`,
  :func:`binary_calibration_error`, :func:`debiased_calibration_error`, :func:`reliability_curve`;
- bin-free: :func:`smooth_calibration_error` (smooth ECE), :func:`mmce`;
- known posterior (synthetic data): :func:`true_calibration_error` (``E |E[q(yhat | x) | conf] - conf|``),
  :func:`pointwise_calibration_error`, :func:`true_calibration_decomposition` (with the grouping loss), dense
  :func:`dense_true_calibration_error` / streaming :class:`DenseTrueCalibration`;
- dense binary (pixel maps, pooled over a dataset): :func:`dense_calibration_error` (ECE, OE, UE, accuracy, NLL,
  Brier), streaming :class:`DenseCalibration`; SOD metrics :func:`sod_metrics` / :class:`SODMetrics`;
- proper scores: :func:`negative_log_likelihood`, :func:`brier_score`, :func:`accuracy`, :func:`top_k_accuracy`;
- selective prediction: :func:`aurc`, :func:`eaurc`, :func:`risk_at_coverage`, :func:`risk_coverage_curve`;
- OOD detection: :func:`ood_score`, :func:`auroc`, :func:`aupr`, :func:`fpr_at_tpr`, :func:`ood_detection`;
- abstention models: :data:`ABSTENTION_CONVENTIONS`, :func:`apply_abstention`;
- everything at once: :func:`summarize`; uncertainty: :func:`bootstrap`.

Streaming classes (``update``/``compute``/``reset``, exact pooling of dense inputs, ``all_reduce`` across
processes): :class:`CalibrationError`, :class:`ClasswiseCalibrationError`, :class:`NegativeLogLikelihood`,
:class:`BrierScore`, :class:`Accuracy`, :class:`StreamingSummary`; as ``torchmetrics.Metric`` classes (optional
``torchmetrics`` extra, imported only there): :mod:`caltrain.metrics.torchmetrics_metrics`.

Conventions, math and papers: the docstring of each module and docs/metrics.md.
"""

from caltrain.abstention import ABSTENTION_CONVENTIONS, apply_abstention
from caltrain.metrics.binning import BINNINGS, BinStats, bin_statistics, binned_statistics
from caltrain.metrics.bootstrap import BOOTSTRAP_METRICS, bootstrap
from caltrain.metrics.classwise import classwise_bin_statistics, classwise_calibration_error
from caltrain.metrics.dense import DENSE_KEYS, DenseCalibration, dense_calibration_error
from caltrain.metrics.ece import (
    NORMS,
    adaptive_calibration_error,
    binary_calibration_error,
    calibration_error_from_stats,
    debiased_calibration_error,
    expected_calibration_error,
)
from caltrain.metrics.kernel import mmce
from caltrain.metrics.ood import OOD_SCORES, aupr, auroc, fpr_at_tpr, ood_detection, ood_score
from caltrain.metrics.proper_scores import accuracy, brier_score, negative_log_likelihood, top_k_accuracy
from caltrain.metrics.reliability import ReliabilityCurve, reliability_curve
from caltrain.metrics.selective import COVERAGES, aurc, eaurc, risk_at_coverage, risk_coverage_curve
from caltrain.metrics.sod import SOD_KEYS, SODMetrics, sod_metrics
from caltrain.metrics.smooth_ece import smooth_calibration_error
from caltrain.metrics.streaming import (
    Accuracy,
    BrierScore,
    CalibrationError,
    ClasswiseCalibrationError,
    NegativeLogLikelihood,
    StreamingMetric,
    StreamingSummary,
)
from caltrain.metrics.summary import SUMMARY_KEYS, summarize
from caltrain.metrics.true_calibration import (
    DENSE_TRUE_KEYS,
    TRUE_CALIBRATION_KEYS,
    DenseTrueCalibration,
    dense_true_calibration_error,
    pointwise_calibration_error,
    true_calibration_decomposition,
    true_calibration_error,
)

__all__ = [
    "ABSTENTION_CONVENTIONS",
    "Accuracy",
    "BINNINGS",
    "BOOTSTRAP_METRICS",
    "BinStats",
    "BrierScore",
    "COVERAGES",
    "DENSE_KEYS",
    "DENSE_TRUE_KEYS",
    "DenseCalibration",
    "DenseTrueCalibration",
    "CalibrationError",
    "ClasswiseCalibrationError",
    "NORMS",
    "NegativeLogLikelihood",
    "OOD_SCORES",
    "ReliabilityCurve",
    "SOD_KEYS",
    "SODMetrics",
    "SUMMARY_KEYS",
    "TRUE_CALIBRATION_KEYS",
    "StreamingMetric",
    "StreamingSummary",
    "accuracy",
    "adaptive_calibration_error",
    "apply_abstention",
    "aupr",
    "auroc",
    "aurc",
    "bin_statistics",
    "binary_calibration_error",
    "binned_statistics",
    "bootstrap",
    "brier_score",
    "calibration_error_from_stats",
    "classwise_bin_statistics",
    "classwise_calibration_error",
    "debiased_calibration_error",
    "dense_calibration_error",
    "dense_true_calibration_error",
    "eaurc",
    "expected_calibration_error",
    "fpr_at_tpr",
    "mmce",
    "negative_log_likelihood",
    "ood_detection",
    "ood_score",
    "pointwise_calibration_error",
    "reliability_curve",
    "risk_at_coverage",
    "risk_coverage_curve",
    "smooth_calibration_error",
    "sod_metrics",
    "summarize",
    "top_k_accuracy",
    "true_calibration_decomposition",
    "true_calibration_error",
]
