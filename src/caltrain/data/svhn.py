"""``svhn``: Street View House Numbers, cropped digits (Netzer et al. 2011), from the official .mat files.

Files (under ``root/svhn``): ``train_32x32.mat`` and ``test_32x32.mat`` (and ``extra_32x32.mat`` with
``extra=True``) from http://ufldl.stanford.edu/housenumbers/, downloaded when ``download=True`` (default)
and online, checked against their official MD5. Each holds ``X`` ``uint8 [32, 32, 3, N]`` and ``y``
``[N, 1]`` with labels 1..10, where 10 means the digit 0; we map 10 -> 0 so that label = digit.
Reading them needs SciPy (``scipy.io.loadmat``).

Splits: a seeded random ``val_size`` = 5000 of the 73,257 training images for validation (a reading: the
selective-classification papers train on all of them and hold out 10% in the Socrates code), the rest for
training, the official 26,032 test images for testing. Standard augmentation: random crop only (a
mirrored digit is another image).

OOD pairing (``ood`` option; default none): ``cifar10`` (the CIFAR-10 test set, label -1; its files under
``root/cifar-10-batches-py``).

Example (without the files, the error says where to put them):
    >>> svhn(root=Path("/nonexistent"), download=False)
    Traceback (most recent call last):
    FileNotFoundError: dataset 'svhn': missing /nonexistent/svhn/train_32x32.mat...
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from caltrain.data.files import download, require
from caltrain.data.ood import select_ood
from caltrain.data.registry import DATASETS, FILE_CHECKS
from caltrain.data.splits import DatasetSplits, Split, dataset_from_splits, holdout_splits, unlabelled

__all__ = ["load_svhn", "svhn", "svhn_as_ood"]

_URL = "http://ufldl.stanford.edu/housenumbers/{part}_32x32.mat"
_MD5 = {
    "train": "e26dedcc434d2e4c54c9b2d4a06d8373",
    "test": "eb5a983be6a315427106f1b164d9cef3",
    "extra": "a93ce644f1a588dc4d68dda5feec44a7",
}


def load_svhn(root: Path, part: str, *, download_missing: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """``uint8 [N, 3, 32, 32]`` images and ``int64 [N]`` digit labels (0..9) of ``part``."""
    path = _svhn_file(root, part, download_missing=download_missing)
    from scipy.io import loadmat

    mat = loadmat(path)
    x = np.ascontiguousarray(np.transpose(mat["X"], (3, 2, 0, 1)), dtype=np.uint8)
    y = mat["y"].astype(np.int64).reshape(-1) % 10
    return torch.from_numpy(x), torch.from_numpy(y)


def _svhn_file(root: Path, part: str, *, download_missing: bool) -> Path:
    """The path of ``part``'s .mat file, downloaded first if missing and allowed; ``FileNotFoundError`` if absent."""
    path = root / "svhn" / f"{part}_32x32.mat"
    url = _URL.format(part=part)
    if download_missing and not path.exists():
        try:
            download(url, path, md5=_MD5[part])
        except FileNotFoundError:
            pass  # offline: the error below says where to put the file
    require([path], dataset="svhn", how=f"Download {url} into {path.parent.expanduser().resolve()}", root=root)
    return path


@FILE_CHECKS.register("svhn")
def _svhn_files(*, root: Path, extra: bool, download: bool) -> None:
    for part in ("train", "test", *(("extra",) if extra else ())):
        _svhn_file(root, part, download_missing=download)


def svhn_as_ood(root: Path, *, download_missing: bool) -> Split:
    """The SVHN test split as an OOD set (labels :data:`NO_LABEL`)."""
    return unlabelled(load_svhn(root, "test", download_missing=download_missing)[0])


def _cifar10_ood(root: Path, download_missing: bool) -> Split:
    from caltrain.data.cifar import CIFAR10, load_cifar

    return unlabelled(load_cifar(root, CIFAR10, "test", download_missing=download_missing)[0])


@DATASETS.register("svhn")
def svhn(
    *,
    root: Path,
    seed: int = 0,
    val_size: int = 5000,
    train_size: int | None = None,
    extra: bool = False,
    download: bool = True,
    ood: str | Sequence[str] | None = None,
) -> DatasetSplits:
    """SVHN (module docstring); ``extra=True`` adds the 531,131 extra images to the training pool."""
    x, y = load_svhn(root, "train", download_missing=download)
    if extra:
        x_extra, y_extra = load_svhn(root, "extra", download_missing=download)
        x, y = torch.cat([x, x_extra]), torch.cat([y, y_extra])
    test = load_svhn(root, "test", download_missing=download)
    splits = holdout_splits(x, y, test, seed=seed, val_size=val_size, train_size=train_size, augment=("crop",))
    sources = {"cifar10": partial(_cifar10_ood, root, download)}
    return dataset_from_splits("svhn", splits, num_classes=10, ood_sources=select_ood(sources, ood, default=()))
