"""``cifar10``, ``cifar100``: the CIFAR sets from the official python-pickle archives (Krizhevsky 2009).

Files (under ``root``): ``cifar-10-batches-py/data_batch_1..5`` and ``test_batch``, or
``cifar-100-python/train`` and ``test`` - what extracting the official ``cifar-10-python.tar.gz`` /
``cifar-100-python.tar.gz`` gives. With ``download=True`` (default) and a connection, a missing archive is
downloaded from https://www.cs.toronto.edu/~kriz/ and checked against its official MD5.

Each batch is a pickled dict: ``data`` ``uint8 [N, 3072]`` (the red, green, blue 32x32 planes, row-major)
and ``labels`` (CIFAR-10) or ``fine_labels`` (CIFAR-100, 100 classes).

Splits (defaults from the calibration papers, e.g. Guo et al. 2017 and Mukhoti et al. 2020): a seeded
random ``val_size`` = 5000 images of the 50k training set for validation, the other 45k for training
(``train_size`` can take fewer), the official 10k test set for testing. Standard augmentation: random crop
(4 pixels of zero padding) and horizontal flip.

OOD pairings (``ood`` option; default none, since they need other files): ``svhn`` (the SVHN test split,
label -1; its files under ``root/svhn``), ``cifar10c-<corruption>-<severity>`` (CIFAR-10-C, labels kept;
under ``root/CIFAR-10-C``, CIFAR-10 only) - e.g. ``ood=["svhn", "cifar10c-gaussian_noise-5"]`` or
``ood="all"``.

Example (needs the files)::

    ds = caltrain.data.create("cifar10", root="~/data")     # 45000 / 5000 / 10000

Example (the file layout; without the files, the error says where to put them):
    >>> CIFAR100.folder, CIFAR100.num_classes, CIFAR100.label_key
    ('cifar-100-python', 100, 'fine_labels')
    >>> from pathlib import Path
    >>> cifar10(root=Path("/nonexistent"), download=False)
    Traceback (most recent call last):
    FileNotFoundError: dataset 'cifar10': missing /nonexistent/cifar-10-batches-py/data_batch_1, ...
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from caltrain.data.files import download, require, safe_unpickle
from caltrain.data.ood import select_ood
from caltrain.data.registry import DATASETS, FILE_CHECKS
from caltrain.data.splits import DatasetSplits, Split, dataset_from_splits, holdout_splits

__all__ = [
    "CIFAR10", "CIFAR100", "CifarFiles", "check_cifar_files", "cifar10", "cifar100", "cifar_dataset", "cifar_splits",
    "load_cifar",
]


@dataclass(frozen=True)
class CifarFiles:
    """Where one CIFAR variant lives and how to get it."""

    name: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: str
    num_classes: int
    url: str
    md5: str

    @property
    def archive(self) -> str:
        return self.url.rsplit("/", 1)[1]


CIFAR10 = CifarFiles(
    "cifar10",
    "cifar-10-batches-py",
    tuple(f"data_batch_{i}" for i in range(1, 6)),
    ("test_batch",),
    "labels",
    10,
    "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    "c58f30108f718f92721af3b95e74349a",
)
CIFAR100 = CifarFiles(
    "cifar100",
    "cifar-100-python",
    ("train",),
    ("test",),
    "fine_labels",
    100,
    "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    "eb9058c3a382ffc7106e4002c42a8d85",
)


def _entry(batch: dict, key: str):
    """``batch[key]`` whether the pickle's keys are bytes (the official files) or str."""
    return batch[key.encode()] if key.encode() in batch else batch[key]


def load_cifar(
    root: Path, files: CifarFiles, part: str, *, download_missing: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """``uint8 [N, 3, 32, 32]`` images and ``int64 [N]`` labels of ``part`` ("train" or "test")."""
    folder = root / files.folder
    check_cifar_files(root, files, download_missing=download_missing)
    xs, ys = [], []
    for name in files.train if part == "train" else files.test:
        batch = safe_unpickle(folder / name)
        xs.append(np.asarray(_entry(batch, "data"), dtype=np.uint8).reshape(-1, 3, 32, 32))
        ys.append(np.asarray(_entry(batch, files.label_key), dtype=np.int64))
    return torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys))


def check_cifar_files(root: Path, files: CifarFiles, *, download_missing: bool) -> None:
    """Download the archive if files are missing and ``download_missing``; ``FileNotFoundError`` if still missing."""
    folder = root / files.folder
    paths = [folder / name for name in (*files.train, *files.test)]
    if download_missing and not all(p.exists() for p in paths):
        try:
            download(files.url, root / files.archive, md5=files.md5, extract_to=root)
        except FileNotFoundError:
            pass  # offline: the error below says where to put the files
    require(
        paths,
        dataset=files.name,
        how=f"Download {files.url} and extract it into {root.expanduser().resolve()}",
        root=root,
    )


@FILE_CHECKS.register("cifar10")
def _cifar10_files(*, root: Path, download: bool) -> None:
    check_cifar_files(root, CIFAR10, download_missing=download)


@FILE_CHECKS.register("cifar100")
def _cifar100_files(*, root: Path, download: bool) -> None:
    check_cifar_files(root, CIFAR100, download_missing=download)


def cifar_splits(
    root: Path, files: CifarFiles, *, seed: int, val_size: int, train_size: int | None, download_missing: bool
) -> tuple[Split, Split, Split]:
    """Seeded train / val split of the training set, and the official test set."""
    x, y = load_cifar(root, files, "train", download_missing=download_missing)
    test = load_cifar(root, files, "test", download_missing=download_missing)
    return holdout_splits(x, y, test, seed=seed, val_size=val_size, train_size=train_size, augment=("crop", "flip"))


def cifar_dataset(
    files: CifarFiles,
    *,
    root: Path,
    seed: int,
    val_size: int,
    train_size: int | None,
    download_missing: bool,
    ood_sources: dict,
    ood: str | Sequence[str] | None,
) -> DatasetSplits:
    """The :class:`DatasetSplits` of one CIFAR variant, with the OOD sets selected from ``ood_sources``."""
    splits = cifar_splits(
        root, files, seed=seed, val_size=val_size, train_size=train_size, download_missing=download_missing
    )
    return dataset_from_splits(
        files.name, splits, num_classes=files.num_classes, ood_sources=select_ood(ood_sources, ood, default=())
    )


def _svhn_ood(root: Path, download_missing: bool) -> Split:
    from caltrain.data.svhn import svhn_as_ood

    return svhn_as_ood(root, download_missing=download_missing)


def _cifar10_ood_sources(root: Path, download: bool) -> dict:
    from caltrain.data.cifar10c import cifar10c_sources

    return {"svhn": partial(_svhn_ood, root, download), **cifar10c_sources(root)}


def _cifar100_ood_sources(root: Path, download: bool) -> dict:
    return {"svhn": partial(_svhn_ood, root, download)}


@DATASETS.register("cifar10")
def cifar10(
    *,
    root: Path,
    seed: int = 0,
    val_size: int = 5000,
    train_size: int | None = None,
    download: bool = True,
    ood: str | Sequence[str] | None = None,
) -> DatasetSplits:
    """CIFAR-10 (module docstring): 45000 / 5000 / 10000 by default."""
    options = dict(root=root, seed=seed, val_size=val_size, train_size=train_size, download=download, ood=ood)
    return _cifar(CIFAR10, _cifar10_ood_sources, options)


def cifar100(**options: Any) -> DatasetSplits:
    """CIFAR-100 (module docstring): 45000 / 5000 / 10000 by default, 100 fine classes; options as :func:`cifar10`."""
    bound = inspect.signature(cifar10).bind(**options)
    bound.apply_defaults()
    return _cifar(CIFAR100, _cifar100_ood_sources, dict(bound.arguments))


cifar100.__signature__ = inspect.signature(cifar10)  # type: ignore[attr-defined]  # one option schema for both
DATASETS.register("cifar100")(cifar100)


def _cifar(files: CifarFiles, ood_sources: Callable[[Path, bool], dict], options: dict[str, Any]) -> DatasetSplits:
    """:func:`cifar_dataset` with the options of :func:`cifar10` and the OOD sources ``ood_sources(root, download)``."""
    download = options.pop("download")
    return cifar_dataset(
        files, download_missing=download, ood_sources=ood_sources(options["root"], download), **options
    )
