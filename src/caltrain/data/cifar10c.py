"""``cifar10c``: CIFAR-10 trained as usual, tested on CIFAR-10-C (Hendrycks & Dietterich 2019, arXiv 1903.12261).

Files (under ``root/CIFAR-10-C``, what extracting the official ``CIFAR-10-C.tar`` from
https://zenodo.org/records/2535967 gives): ``<corruption>.npy``, ``uint8 [50000, 32, 32, 3]``, the 10,000
CIFAR-10 test images under that corruption at severity 1, then 2, ..., 5 (we read a fifth of the rows per
severity, whatever the length); and ``labels.npy`` ``[50000]``.
Only the slice of the requested severity is read (memory-mapped). Not downloaded automatically (2.9 GB).

The dataset: train and validation splits of CIFAR-10 (as ``cifar10``, same options), test split the
CIFAR-10-C images of ``corruption`` at ``severity`` (dataset shift: accuracy and calibration under
corruption). CIFAR-10's OOD pairings also offer every ``cifar10c-<corruption>-<severity>``.

Example (without the files, the error says where to put them):
    >>> len(CIFAR10C_CORRUPTIONS), sorted(cifar10c_sources(Path("/data")))[:2]
    (19, ['cifar10c-brightness-1', 'cifar10c-brightness-2'])
    >>> load_cifar10c(Path("/nonexistent"), "fog", 3)
    Traceback (most recent call last):
    FileNotFoundError: dataset 'cifar10c': missing /nonexistent/CIFAR-10-C/fog.npy, ...
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from caltrain.data.cifar import CIFAR10, check_cifar_files, cifar_splits
from caltrain.data.files import require
from caltrain.data.ood import select_ood
from caltrain.data.registry import DATASETS, FILE_CHECKS
from caltrain.data.splits import DatasetSplits, Split, dataset_from_splits
from caltrain.utils.checks import check_choice

__all__ = ["CIFAR10C_CORRUPTIONS", "cifar10c", "cifar10c_sources", "load_cifar10c"]

#: The 19 corruptions of the official release (15 benchmark + 4 extra).
CIFAR10C_CORRUPTIONS = (
    "brightness", "contrast", "defocus_blur", "elastic_transform", "fog", "frost", "gaussian_blur",
    "gaussian_noise", "glass_blur", "impulse_noise", "jpeg_compression", "motion_blur", "pixelate",
    "saturate", "shot_noise", "snow", "spatter", "speckle_noise", "zoom_blur",
)  # fmt: skip
_URL = "https://zenodo.org/records/2535967"


def load_cifar10c(root: Path, corruption: str, severity: int) -> Split:
    """The 10,000 CIFAR-10-C test images of ``corruption`` at ``severity`` (1..5), labels kept."""
    images, labels = _cifar10c_files(root, corruption, severity)
    all_x, all_y = np.load(images, mmap_mode="r"), np.load(labels, mmap_mode="r")
    per_severity = len(all_x) // 5
    rows = slice((severity - 1) * per_severity, severity * per_severity)
    x, y = all_x[rows], all_y[rows]
    x = torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2)), dtype=np.uint8))
    return Split(x, torch.from_numpy(np.array(y, dtype=np.int64)))


def _cifar10c_files(root: Path, corruption: str, severity: int) -> tuple[Path, Path]:
    """The images and labels files of ``corruption`` (checked, with ``severity``); ``FileNotFoundError`` if absent."""
    check_choice(corruption, "corruption", CIFAR10C_CORRUPTIONS)
    check_choice(severity, "severity", (1, 2, 3, 4, 5))
    folder = root / "CIFAR-10-C"
    images, labels = folder / f"{corruption}.npy", folder / "labels.npy"
    require(
        [images, labels],
        dataset="cifar10c",
        how=f"Download CIFAR-10-C.tar from {_URL} and extract it into {root.expanduser().resolve()}",
        root=root,
    )
    return images, labels


@FILE_CHECKS.register("cifar10c")
def _cifar10c_check(*, root: Path, corruption: str, severity: int, download: bool) -> None:
    _cifar10c_files(root, corruption, severity)
    check_cifar_files(root, CIFAR10, download_missing=download)


def cifar10c_sources(root: Path) -> dict:
    """Lazy OOD sources ``cifar10c-<corruption>-<severity>`` for every corruption and severity."""
    return {
        f"cifar10c-{c}-{s}": partial(load_cifar10c, root, c, s) for c in CIFAR10C_CORRUPTIONS for s in range(1, 6)
    }


@DATASETS.register("cifar10c")
def cifar10c(
    *, root: Path, seed: int = 0,
    corruption: str = "gaussian_noise",
    severity: int = 5,
    val_size: int = 5000,
    train_size: int | None = None,
    download: bool = True,
    ood: str | Sequence[str] | None = None,
) -> DatasetSplits:
    """CIFAR-10 train / val, CIFAR-10-C test at ``corruption`` and ``severity`` (module docstring)."""
    test = load_cifar10c(root, corruption, severity)  # first, so a missing file fails before CIFAR-10 loads
    train, val, _ = cifar_splits(
        root, CIFAR10, seed=seed, val_size=val_size, train_size=train_size, download_missing=download
    )
    splits = train, val, Split(test.x, test.y, augment=train.augment)
    return dataset_from_splits(
        "cifar10c", splits, num_classes=10, ood_sources=select_ood(cifar10c_sources(root), ood, default=())
    )
