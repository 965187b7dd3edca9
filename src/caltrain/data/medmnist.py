"""``medmnist``: any 2-D multi-class subset of MedMNIST v2 (Yang et al. 2023, arXiv 2110.14795), from its .npz.

Files (under ``root/medmnist``): ``<subset>.npz`` as distributed by MedMNIST (``python -m medmnist download``
or https://zenodo.org/records/10519652), or ``<subset>_<size>.npz`` for the larger MedMNIST+ sizes
(``size=64, 128, 224``). Each holds ``train_images``, ``val_images``, ``test_images`` (``uint8
[N, H, W]`` greyscale or ``[N, H, W, 3]`` colour) and ``*_labels`` (``[N, 1]``). Not downloaded
automatically.

Subsets and classes: pathmnist 9, dermamnist 7, octmnist 4, pneumoniamnist 2, retinamnist 5 (ordinal
grades, treated as classes), breastmnist 2, bloodmnist 8, tissuemnist 8, organamnist 11, organcmnist 11,
organsmnist 11. ChestMNIST is multi-label (14 binary labels per image) and is not offered: every caltrain
objective and metric is multi-class.

Splits: the official train / val / test splits (the benchmark's; ``seed`` does not change them).
Standard augmentation: none (the MedMNIST baselines train without).

Example (without the files, the error says where to put them):
    >>> MEDMNIST_SUBSETS["pathmnist"], MEDMNIST_SUBSETS["organamnist"]
    (9, 11)
    >>> from pathlib import Path
    >>> medmnist(root=Path("/nonexistent"), subset="bloodmnist")
    Traceback (most recent call last):
    FileNotFoundError: dataset 'medmnist': missing /nonexistent/medmnist/bloodmnist.npz (data folder searched: /nonexistent)...
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from caltrain.data.files import require
from caltrain.data.ood import select_ood
from caltrain.data.registry import DATASETS, FILE_CHECKS
from caltrain.data.splits import DatasetSplits, Split, dataset_from_splits
from caltrain.utils.checks import check_choice

__all__ = ["MEDMNIST_SUBSETS", "load_medmnist", "medmnist"]

#: 2-D multi-class subsets -> number of classes.
MEDMNIST_SUBSETS = {
    "pathmnist": 9,
    "dermamnist": 7,
    "octmnist": 4,
    "pneumoniamnist": 2,
    "retinamnist": 5,
    "breastmnist": 2,
    "bloodmnist": 8,
    "tissuemnist": 8,
    "organamnist": 11,
    "organcmnist": 11,
    "organsmnist": 11,
}
_SIZES = (28, 64, 128, 224)


@FILE_CHECKS.register("medmnist")
def _medmnist_file(*, root: Path, subset: str, size: int) -> Path:
    """The path of ``subset``'s .npz at ``size`` (both checked); ``FileNotFoundError`` if absent."""
    if subset == "chestmnist":
        raise ValueError("subset: 'chestmnist' is multi-label (14 labels per image); caltrain handles multi-class sets")
    check_choice(subset, "subset", MEDMNIST_SUBSETS)
    check_choice(size, "size", _SIZES)
    path = root / "medmnist" / (f"{subset}.npz" if size == 28 else f"{subset}_{size}.npz")
    require(
        [path],
        dataset="medmnist",
        root=root,
        how=f"Get {path.name} with `python -m medmnist download` or from https://zenodo.org/records/10519652 "
        f"and put it into {path.parent.expanduser().resolve()}",
    )
    return path


def load_medmnist(root: Path, subset: str, size: int = 28) -> dict[str, Split]:
    """``{"train", "val", "test"}`` splits of ``subset`` (images ``uint8 [N, C, H, W]``)."""
    path = _medmnist_file(root=root, subset=subset, size=size)
    splits = {}
    with np.load(path) as arrays:
        for part in ("train", "val", "test"):
            images = arrays[f"{part}_images"]
            labels = arrays[f"{part}_labels"]
            if labels.ndim == 2 and labels.shape[1] != 1:
                raise ValueError(f"{path}: expected one label per image, got labels of shape {labels.shape}")
            x = images[:, None] if images.ndim == 3 else images.transpose(0, 3, 1, 2)
            splits[part] = Split(
                torch.from_numpy(np.ascontiguousarray(x, dtype=np.uint8)),
                torch.from_numpy(labels.reshape(-1).astype(np.int64)),
                augment=(),
            )
    return splits


@DATASETS.register("medmnist")
def medmnist(
    *, root: Path, seed: int = 0,
    subset: str = "pathmnist",
    size: int = 28,
    ood: str | Sequence[str] | None = None,
) -> DatasetSplits:
    """A MedMNIST subset (module docstring) with its official splits."""
    splits = load_medmnist(root, subset, size)
    return dataset_from_splits(
        "medmnist", (splits["train"], splits["val"], splits["test"]), num_classes=MEDMNIST_SUBSETS[subset],
        ood_sources=select_ood({}, ood, default=()),
    )  # fmt: skip
