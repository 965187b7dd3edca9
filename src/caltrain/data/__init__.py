"""Datasets by registry name, deterministic splits, device-resident loaders."""

# Importing the dataset modules registers them.
from caltrain.data import cifar as _cifar  # noqa: F401
from caltrain.data import cifar10c as _cifar10c  # noqa: F401
from caltrain.data import digits as _digits  # noqa: F401
from caltrain.data import medmnist as _medmnist  # noqa: F401
from caltrain.data import saliency_folder as _saliency_folder  # noqa: F401
from caltrain.data import svhn as _svhn  # noqa: F401
from caltrain.data import synthetic as _synthetic  # noqa: F401
from caltrain.data import synthetic_image as _synthetic_image  # noqa: F401
from caltrain.data import synthetic_saliency as _synthetic_saliency  # noqa: F401
from caltrain.data import tinyimagenet as _tinyimagenet  # noqa: F401
from caltrain.data.loader import Loader, make_loader
from caltrain.data.registry import DATASETS, FILE_CHECKS, check_available, create, default_root, names
from caltrain.data.splits import NO_LABEL, DatasetSplits, Split

__all__ = [
    "DATASETS",
    "DatasetSplits",
    "FILE_CHECKS",
    "Loader",
    "NO_LABEL",
    "Split",
    "check_available",
    "create",
    "default_root",
    "make_loader",
    "names",
]


def __getattr__(name: str):
    """``caltrain.data.true_calibration_error`` moved to :mod:`caltrain.metrics` (and changed meaning): say so."""
    if name == "true_calibration_error":
        raise ImportError(
            "caltrain.data.true_calibration_error was removed: the one owner is caltrain.metrics. "
            "caltrain.metrics.true_calibration_error is now the calibration error E|E[q(yhat|x) | conf] - conf|; "
            "the former quantity E|q(yhat|x) - conf| is caltrain.metrics.pointwise_calibration_error"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
