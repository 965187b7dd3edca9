"""caltrain: train neural-network classifiers whose confidence can be trusted.

Subpackages: :mod:`caltrain.metrics` (calibration metrics), :mod:`caltrain.losses` (training objectives),
:mod:`caltrain.posthoc` (post-hoc calibrators), :mod:`caltrain.data` (datasets and loaders),
:mod:`caltrain.models` (models), :mod:`caltrain.train` (the trainer), :mod:`caltrain.analysis`
(margins and curvature), :mod:`caltrain.report` (plots and reports).
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("caltrain")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

from caltrain import analysis, data, losses, metrics, models, posthoc, report, train  # noqa: E402

# --- metrics (public names re-exported here) ---
from caltrain.metrics import (  # noqa: E402
    adaptive_calibration_error,
    aurc,
    bootstrap,
    brier_score,
    classwise_calibration_error,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_curve,
    summarize,
    true_calibration_error,
)

# --- posthoc ---
from caltrain.posthoc import AdaptiveTemperatureScaling, TemperatureScaling  # noqa: E402

# --- data and models ---
from caltrain.data import DatasetSplits, Split, make_loader  # noqa: E402

# --- trainer and reports ---
from caltrain.report import write_report  # noqa: E402
from caltrain.train import TrainConfig, build_config, load_suite, run_suite, train as train_model  # noqa: E402

__all__ = [
    "__version__",
    # metrics
    "adaptive_calibration_error", "aurc", "bootstrap", "brier_score", "classwise_calibration_error",
    "expected_calibration_error", "negative_log_likelihood", "reliability_curve", "summarize",
    "true_calibration_error",
    # post-hoc
    "AdaptiveTemperatureScaling", "TemperatureScaling",
    # data
    "DatasetSplits", "Split", "make_loader",
    # trainer and reports
    "TrainConfig", "build_config", "fit", "load_suite", "run_suite", "train_model", "write_report",
    # subpackages
    "analysis",
    "data",
    "losses",
    "metrics",
    "models",
    "posthoc",
    "report",
    "train",
]


def __getattr__(name: str):
    """``caltrain.fit`` is imported on first use (:mod:`caltrain.train.fit`), keeping ``import caltrain`` as it was."""
    if name == "fit":
        from caltrain.train.fit import fit

        return fit
    raise AttributeError(f"module 'caltrain' has no attribute {name!r}")
