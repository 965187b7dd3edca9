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

# --- losses ---

# --- posthoc ---

# --- data and models ---
from caltrain.data import DatasetSplits, Split, make_loader, true_calibration_error  # noqa: E402,F401

# --- trainer ---

__all__ = [
    "__version__",
    "analysis",
    "data",
    "losses",
    "metrics",
    "models",
    "posthoc",
    "report",
    "train",
]
