"""``tinyimagenet``: Tiny-ImageNet (200 classes, 64x64), from the official folder layout.

Files (under ``root``): ``tiny-imagenet-200/`` as extracted from the official
http://cs231n.stanford.edu/tiny-imagenet-200.zip: ``wnids.txt`` (the 200 class ids),
``train/<wnid>/images/*.JPEG`` (500 per class) and ``val/images/*.JPEG`` with ``val/val_annotations.txt``
(file name, class id, box). Decoding the 110,000 JPEGs needs Pillow (``pip install pillow``); it takes a
minute, so the decoded uint8 arrays are cached once in ``tiny-imagenet-200/caltrain-uint8.npz`` (about
1.3 GB, written atomically) and read from there afterwards. Greyscale images are converted to RGB.

Classes are numbered in sorted order of their ids (the order of ``ImageFolder`` on ``train/``).
Splits: a seeded random ``val_size`` = 10,000 of the 100,000 training images for validation, the rest for
training, the official 10,000-image validation set as the test split (its test set has no labels).
Standard augmentation: random crop (8 pixels of zero padding, H/8) and horizontal flip.
On a GPU the 90k training images (1.1 GB) exceed the loader's resident budget, so ``make_loader`` serves
them through a ``DataLoader`` with worker processes and pinned memory.

Example (without the files, the error says where to put them):
    >>> tinyimagenet(root=Path("/nonexistent"))
    Traceback (most recent call last):
    FileNotFoundError: dataset 'tinyimagenet': missing /nonexistent/tiny-imagenet-200/wnids.txt, ...
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from caltrain.data.files import require
from caltrain.data.ood import select_ood
from caltrain.data.registry import DATASETS, FILE_CHECKS
from caltrain.data.splits import DatasetSplits, dataset_from_splits, holdout_splits
from caltrain.utils.io import atomic_write_bytes

__all__ = ["decode_tinyimagenet", "load_tinyimagenet", "tinyimagenet"]

_FOLDER = "tiny-imagenet-200"
_CACHE = "caltrain-uint8.npz"
_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"


def _decode(paths: list[Path]) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError("tinyimagenet: decoding the JPEG files needs Pillow: pip install pillow") from err
    out = np.empty((len(paths), 3, 64, 64), dtype=np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as img:
            out[i] = np.asarray(img.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
    return out


def decode_tinyimagenet(folder: Path) -> dict[str, np.ndarray]:
    """Decode the official layout into ``train_x, train_y, test_x, test_y`` (uint8 NCHW, int64)."""
    wnids = sorted((folder / "wnids.txt").read_text().split())
    index = {w: i for i, w in enumerate(wnids)}
    train_paths, train_y = [], []
    for wnid in wnids:
        files = sorted((folder / "train" / wnid / "images").glob("*.JPEG"))
        train_paths += files
        train_y += [index[wnid]] * len(files)
    test_paths, test_y = [], []
    for line in (folder / "val" / "val_annotations.txt").read_text().splitlines():
        if line.strip():
            name, wnid = line.split("\t")[:2]
            test_paths.append(folder / "val" / "images" / name)
            test_y.append(index[wnid])
    return {
        "train_x": _decode(train_paths),
        "train_y": np.asarray(train_y, dtype=np.int64),
        "test_x": _decode(test_paths),
        "test_y": np.asarray(test_y, dtype=np.int64),
    }


def load_tinyimagenet(root: Path) -> dict[str, np.ndarray]:
    """The decoded arrays, from the cache if present (else decoded and cached)."""
    folder = root / _FOLDER
    cache = folder / _CACHE
    if cache.exists():
        with np.load(cache) as stored:
            return {k: stored[k] for k in stored.files}
    _tinyimagenet_files(root=root)
    arrays = decode_tinyimagenet(folder)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(cache, buffer.getvalue())
    return arrays


@FILE_CHECKS.register("tinyimagenet")
def _tinyimagenet_files(*, root: Path) -> None:
    """``FileNotFoundError`` unless the decoded cache or the official layout is under ``root``."""
    folder = root / _FOLDER
    if (folder / _CACHE).exists():
        return
    require(
        [folder / "wnids.txt", folder / "train", folder / "val" / "val_annotations.txt"],
        dataset="tinyimagenet",
        how=f"Download {_URL} and extract it into {root.expanduser().resolve()}",
        root=root,
    )


@DATASETS.register("tinyimagenet")
def tinyimagenet(
    *,
    root: Path,
    seed: int = 0,
    val_size: int = 10_000,
    train_size: int | None = None,
    ood: str | Sequence[str] | None = None,
) -> DatasetSplits:
    """Tiny-ImageNet (module docstring): 90000 / 10000 / 10000 by default."""
    arrays = load_tinyimagenet(root)
    x, y = torch.from_numpy(arrays["train_x"]), torch.from_numpy(arrays["train_y"])
    test = torch.from_numpy(arrays["test_x"]), torch.from_numpy(arrays["test_y"])
    splits = holdout_splits(x, y, test, seed=seed, val_size=val_size, train_size=train_size, augment=("crop", "flip"))
    return dataset_from_splits("tinyimagenet", splits, num_classes=200, ood_sources=select_ood({}, ood, default=()))
