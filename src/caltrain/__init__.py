"""caltrain: train neural-network classifiers whose confidence can be trusted.

Subpackages: :mod:`caltrain.metrics` (calibration metrics), :mod:`caltrain.losses` (training objectives),
:mod:`caltrain.posthoc` (post-hoc calibrators), :mod:`caltrain.data` (datasets and loaders),
:mod:`caltrain.models` (models), :mod:`caltrain.train` (the trainer), :mod:`caltrain.analysis`
(margins and curvature), :mod:`caltrain.report` (plots and reports).

Everything here is imported on first use (PEP 562 module ``__getattr__``): ``import caltrain`` imports neither
torch nor a subpackage, so ``caltrain --help`` starts in a fraction of a second, and ``caltrain.metrics``,
``caltrain.fit`` or ``from caltrain import TemperatureScaling`` import what they name when they are first
touched. ``__version__`` is read from the installed distribution's metadata on first use.
"""

from __future__ import annotations

import importlib

#: The subpackages, imported on first attribute access (``caltrain.metrics``).
_SUBPACKAGES = ("analysis", "data", "losses", "metrics", "models", "posthoc", "report", "train")

#: Top-level names -> (module, attribute in it), imported on first access.
_NAMES: dict[str, tuple[str, str]] = {
    # metrics
    **{name: ("caltrain.metrics", name) for name in (
        "adaptive_calibration_error", "aurc", "bootstrap", "brier_score", "classwise_calibration_error",
        "expected_calibration_error", "negative_log_likelihood", "reliability_curve", "summarize",
        "true_calibration_error")},
    # post-hoc
    "AdaptiveTemperatureScaling": ("caltrain.posthoc", "AdaptiveTemperatureScaling"),
    "TemperatureScaling": ("caltrain.posthoc", "TemperatureScaling"),
    # data
    "DatasetSplits": ("caltrain.data", "DatasetSplits"),
    "Split": ("caltrain.data", "Split"),
    "make_loader": ("caltrain.data", "make_loader"),
    # trainer and reports
    "TrainConfig": ("caltrain.train", "TrainConfig"),
    "build_config": ("caltrain.train", "build_config"),
    "fit": ("caltrain.train.fit", "fit"),
    "load_suite": ("caltrain.train", "load_suite"),
    "run_suite": ("caltrain.train", "run_suite"),
    "train_model": ("caltrain.train", "train"),
    "write_report": ("caltrain.report", "write_report"),
}

__all__ = ["__version__", *_NAMES, *_SUBPACKAGES]


def _read_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("caltrain")
    except PackageNotFoundError:  # running from a source tree without installation
        return "0.1.0"


def __getattr__(name: str) -> object:
    """Import a subpackage, a re-exported name or ``__version__`` on first access, and keep it here."""
    if name in _SUBPACKAGES:
        value: object = importlib.import_module(f"caltrain.{name}")
    elif name in _NAMES:
        module, attribute = _NAMES[name]
        value = getattr(importlib.import_module(module), attribute)
    elif name == "__version__":
        value = _read_version()
    else:
        raise AttributeError(f"module 'caltrain' has no attribute {name!r}")
    globals()[name] = value  # later accesses skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
