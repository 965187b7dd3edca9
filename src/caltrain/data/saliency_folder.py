"""``saliency_folder``: salient-object / binary-segmentation datasets in the DUTS-style folder layout.

A split lives in one folder holding an image folder and a mask folder whose files have matching names::

    ROOT/DUTS-TR/DUTS-TR-Image/ILSVRC2012_test_00000004.jpg
    ROOT/DUTS-TR/DUTS-TR-Mask/ILSVRC2012_test_00000004.png
    ROOT/DUTS-TE/DUTS-TE-Image/*.jpg   +   ROOT/DUTS-TE/DUTS-TE-Mask/*.png

``train_dir`` and ``test_dir`` name the two folders under ``root`` (default DUTS-TR and DUTS-TE); the
subfolders are ``image_subdir`` and ``mask_subdir``, where ``{name}`` stands for the folder's own name (the
DUTS convention ``{name}-Image`` / ``{name}-Mask``); ``image_ext`` and ``mask_ext`` the extensions. The other
benchmarks only differ in these names, e.g. (the layouts of the common distributions; check yours):

- ECSSD: ``test_dir="ECSSD", image_subdir="images", mask_subdir="ground_truth_mask"``;
- HKU-IS, DUT-OMRON, PASCAL-S, SOD as distributed with the SOD toolkits: ``image_subdir="Imgs"``,
  ``mask_subdir="GT"`` (or ``"Image"`` / ``"Mask"``, ``"imgs"`` / ``"gt"``).

Loading: the file lists are sorted by name (so sample positions, and the per-sample keys objectives use,
are deterministic); every image whose stem has no mask, or mask without an image, is an error naming the
file. Images are read as RGB and masks as 8-bit grey with Pillow (an optional dependency: ``pip install
pillow``), resized to ``size x size`` with ``torch.nn.functional.interpolate`` (bilinear with antialiasing
for images, nearest for masks) and masks binarised as ``value >= 128`` (i.e. value / 255 > 0.5; pysodmetrics
uses ``> 128``, which differs only on pixels of value exactly 128). The validation split is ``val_size``
images held out from the training folder by a seeded permutation; the test split is ``test_dir``.
The task is ``"dense_binary"`` (``num_classes == 1``); standard augmentation ``crop`` and ``flip``.

Example:
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> try:
    ...     saliency_folder(root=root)
    ... except FileNotFoundError as err:
    ...     print(str(err)[:41])
    dataset 'saliency_folder': missing folder
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from caltrain.data.files import WHERE
from caltrain.data.registry import DATASETS, FILE_CHECKS
from caltrain.data.splits import Split, dataset_from_splits, random_partition
from caltrain.utils.checks import check_positive_int

__all__ = ["find_pairs", "load_pairs", "saliency_folder"]

_NAME = "saliency_folder"
_HOW = ("download DUTS (http://saliencydetection.net/duts/) and extract DUTS-TR and DUTS-TE there, or set "
        "train_dir / test_dir / image_subdir / mask_subdir / image_ext / mask_ext for another layout")


def _folders(root: Path, split_dir: str, image_subdir: str, mask_subdir: str) -> tuple[Path, Path]:
    base = Path(root).expanduser() / split_dir
    name = Path(split_dir).name
    return base / image_subdir.format(name=name), base / mask_subdir.format(name=name)


def _missing(paths: list[Path], root: Path) -> FileNotFoundError:
    listed = ", ".join(str(p.expanduser().resolve()) for p in paths)
    return FileNotFoundError(
        f"dataset {_NAME!r}: missing folder(s) {listed} (data folder searched: {Path(root).expanduser().resolve()})."
        f" To use it, {_HOW}; {WHERE}"
    )


def find_pairs(
    image_dir: Path, mask_dir: Path, image_ext: str, mask_ext: str
) -> list[tuple[Path, Path]]:
    """Sorted ``(image, mask)`` pairs matched by file stem; raises ``FileNotFoundError`` naming an unmatched file."""
    images = {p.stem: p for p in Path(image_dir).iterdir() if p.is_file() and p.suffix.lower() == image_ext.lower()}
    masks = {p.stem: p for p in Path(mask_dir).iterdir() if p.is_file() and p.suffix.lower() == mask_ext.lower()}
    for stem in sorted(images):
        if stem not in masks:
            raise FileNotFoundError(
                f"dataset {_NAME!r}: image {images[stem]} has no mask {Path(mask_dir) / (stem + mask_ext)}"
            )
    for stem in sorted(masks):
        if stem not in images:
            raise FileNotFoundError(
                f"dataset {_NAME!r}: mask {masks[stem]} has no image {Path(image_dir) / (stem + image_ext)}"
            )
    if not images:
        raise FileNotFoundError(f"dataset {_NAME!r}: no *{image_ext} images in {Path(image_dir).resolve()}")
    return [(images[s], masks[s]) for s in sorted(images)]


def load_pairs(pairs: list[tuple[Path, Path]], size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(uint8 [N, 3, size, size] images, uint8 [N, 1, size, size] masks in {0, 1})`` of ``pairs``."""
    try:
        import numpy as np
        from PIL import Image
    except ImportError as err:  # pragma: no cover - Pillow is optional
        raise ImportError(f"dataset {_NAME!r} reads images with Pillow: pip install pillow") from err
    xs = torch.empty(len(pairs), 3, size, size, dtype=torch.uint8)
    ys = torch.empty(len(pairs), 1, size, size, dtype=torch.uint8)
    for i, (image_path, mask_path) in enumerate(pairs):
        with Image.open(image_path) as im:
            image = torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.uint8).copy())
        with Image.open(mask_path) as im:
            mask = torch.from_numpy(np.asarray(im.convert("L"), dtype=np.uint8).copy())
        if image.shape[:2] != mask.shape:
            raise ValueError(
                f"dataset {_NAME!r}: image {image_path} is {tuple(image.shape[:2])} but its mask {mask_path} is "
                f"{tuple(mask.shape)} (height, width)"
            )
        image = image.permute(2, 0, 1)[None].float()
        if image.shape[-2:] != (size, size):
            image = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        xs[i] = image[0].round().clamp(0, 255).to(torch.uint8)
        mask = mask[None, None]
        if mask.shape[-2:] != (size, size):
            mask = F.interpolate(mask, size=(size, size), mode="nearest")
        ys[i] = (mask[0] >= 128).to(torch.uint8)
    return xs, ys


@FILE_CHECKS.register(_NAME)
def _saliency_files(
    *,
    root: Path,
    train_dir: str = "DUTS-TR",
    test_dir: str = "DUTS-TE",
    image_subdir: str = "{name}-Image",
    mask_subdir: str = "{name}-Mask",
) -> None:
    """``FileNotFoundError`` unless the image and mask folders of both splits are under ``root``."""
    wanted = [*_folders(root, train_dir, image_subdir, mask_subdir), *_folders(root, test_dir, image_subdir, mask_subdir)]
    missing = [p for p in wanted if not p.is_dir()]
    if missing:
        raise _missing(missing, root)


@DATASETS.register(_NAME)
def saliency_folder(
    *,
    root: Path,
    seed: int = 0,
    train_dir: str = "DUTS-TR",
    test_dir: str = "DUTS-TE",
    image_subdir: str = "{name}-Image",
    mask_subdir: str = "{name}-Mask",
    image_ext: str = ".jpg",
    mask_ext: str = ".png",
    size: int = 224,
    val_size: int = 500,
):
    """Image / mask folders of the module docstring, resized to ``size``; ``val_size`` held out of training."""
    side = check_positive_int(size, "size", minimum=8)
    check_positive_int(val_size, "val_size", minimum=1)
    _saliency_files(root=Path(root), train_dir=train_dir, test_dir=test_dir, image_subdir=image_subdir,
                    mask_subdir=mask_subdir)
    train_pairs = find_pairs(*_folders(root, train_dir, image_subdir, mask_subdir), image_ext, mask_ext)
    test_pairs = find_pairs(*_folders(root, test_dir, image_subdir, mask_subdir), image_ext, mask_ext)
    if val_size >= len(train_pairs):
        raise ValueError(f"val_size: {val_size} leaves no training image out of {len(train_pairs)} in {train_dir}")
    x, y = load_pairs(train_pairs, side)
    val_idx, train_idx = (i.sort().values for i in random_partition(len(x), [val_size, None], seed=seed))
    augment = ("crop", "flip")
    train = Split(x[train_idx], y[train_idx], augment=augment)
    val = Split(x[val_idx], y[val_idx], augment=augment)
    test = Split(*load_pairs(test_pairs, side), augment=augment)
    return dataset_from_splits(_NAME, (train, val, test), num_classes=1, ood_sources={}, task="dense_binary")
