"""Datasets by registry name, deterministic splits, device-resident loaders."""

# Importing the dataset modules registers them.
from caltrain.data import digits as _digits  # noqa: F401
from caltrain.data import synthetic as _synthetic  # noqa: F401
from caltrain.data import synthetic_image as _synthetic_image  # noqa: F401
from caltrain.data.loader import Loader, make_loader
from caltrain.data.registry import DATASETS, create, default_root, names
from caltrain.data.splits import NO_LABEL, DatasetSplits, Split

__all__ = [
    "DATASETS",
    "DatasetSplits",
    "Loader",
    "NO_LABEL",
    "Split",
    "create",
    "default_root",
    "make_loader",
    "names",
]
