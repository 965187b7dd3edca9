"""``digits`` and ``digits_flat``: scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes).

Real images that need no download (the UCI "Optical Recognition of Handwritten Digits" test set, Alpaydin &
Kaynak 1998, as shipped with scikit-learn). Pixels are counts 0..16; we store them as ``uint8`` images on
the 0..255 scale, ``round(v * 255 / 16)``, so every image dataset goes through the same loader.

- ``digits``: images ``uint8 [N, 1, 8, 8]``; standard augmentation: none (a crop or a flip changes a digit).
- ``digits_flat``: the same pixels as features ``float32 [N, 64]`` on the [0, 1] scale.

Splits are a seeded random partition of the 1797 images: ``train_size`` (default 1000), ``test_size``
(default 500) and a validation split of the rest (297).

Label noise (default ``label_noise=0.1``): the clean digits are too easy to show miscalibration (a small
CNN reaches 99% test accuracy and is, if anything, under-confident), so by default every label, in every
split, passes through the same symmetric noise channel (:mod:`caltrain.data.label_noise`: replaced with
probability 0.1 by a uniform class, so about 9% of labels are wrong). Validation and test then measure
calibration against the label distribution the model is trained on; a network trained with plain
cross-entropy memorises the noisy training labels (100% training accuracy) and is over-confident on the
test split (docs/data.md has the figures). ``label_noise=0`` gives the clean digits.

OOD pairings (``ood`` option; default all): ``uniform_noise`` (pixels uniform on 0..255, label -1) and the
test split under the CIFAR-10-C corruptions ``gaussian_noise``, ``gaussian_blur``, ``contrast`` at
severities 1..5 (``"gaussian_blur-3"``, labels kept); ``digits_flat`` gets the same sets flattened.

Example:
    >>> ds = digits(root=None, seed=0)
    >>> ds.train.x.shape, ds.train.x.dtype, len(ds.val)
    (torch.Size([1000, 1, 8, 8]), torch.uint8, 297)
"""

from __future__ import annotations

import inspect
from dataclasses import replace
from functools import lru_cache, partial
from typing import Any, Sequence

import numpy as np
import torch

from caltrain.data.label_noise import symmetric_label_noise
from caltrain.data.ood import corruption_sources, select_ood, uniform_noise_split
from caltrain.data.registry import DATASETS
from caltrain.data.seeding import make_generator
from caltrain.data.splits import DatasetSplits, Split, dataset_from_splits, random_partition

__all__ = ["digits", "digits_flat", "load_digits_uint8"]


@lru_cache(maxsize=1)
def load_digits_uint8() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits as ``uint8 [1797, 1, 8, 8]`` images (0..255) and ``int64`` labels.

    Cached (benchmark suites create the dataset once per run); the splits index copies of these tensors.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    return torch.from_numpy(images[:, None]), torch.from_numpy(bunch.target.astype(np.int64))


def _image_splits(
    seed: int, train_size: int, val_size: int | None, test_size: int, label_noise: float
) -> tuple[Split, Split, Split]:
    x, y = load_digits_uint8()
    y = symmetric_label_noise(y, 10, label_noise, make_generator(seed, "digits", "label_noise"))
    parts = random_partition(len(y), [test_size, train_size, val_size], seed=seed)
    test, train, val = (Split(x[i], y[i], augment=()) for i in parts)
    return train, val, test


def _image_ood_sources(test: Split, seed: int) -> dict:
    return {
        "uniform_noise": partial(uniform_noise_split, len(test), tuple(test.x.shape[1:]), seed=seed),
        **corruption_sources(test, seed=seed),
    }


@DATASETS.register("digits")
def digits(
    *,
    root: object = None,
    seed: int = 0,
    train_size: int = 1000,
    val_size: int | None = None,
    test_size: int = 500,
    label_noise: float = 0.1,
    ood: str | Sequence[str] | None = None,
) -> DatasetSplits:
    """The digits as 1x8x8 images (module docstring); ``val_size=None`` takes the rest; ``root`` is unused."""
    splits = _image_splits(seed, train_size, val_size, test_size, label_noise)
    sources = _image_ood_sources(splits[2], seed)
    selected = select_ood(sources, ood, default=tuple(sources))
    return dataset_from_splits("digits", splits, num_classes=10, ood_sources=selected)


def flatten_split(split: Split) -> Split:
    """An image split as ``float32 [N, C*H*W]`` features on the [0, 1] scale (labels kept)."""
    x = split.x.reshape(len(split), -1).to(torch.float32) / 255.0
    return replace(split, x=x, augment=())


def _flattened(source) -> Split:
    return flatten_split(source())


def digits_flat(**options: Any) -> DatasetSplits:
    """The digits as 64 features on the [0, 1] scale (module docstring); options as :func:`digits`."""
    images = digits(**options)
    splits = tuple(flatten_split(s) for s in (images.train, images.val, images.test))
    sources = {name: partial(_flattened, source) for name, source in images.ood_sources.items()}
    return dataset_from_splits("digits_flat", splits, num_classes=10, ood_sources=sources)


digits_flat.__signature__ = inspect.signature(digits)  # type: ignore[attr-defined]  # one option schema for both
DATASETS.register("digits_flat")(digits_flat)
