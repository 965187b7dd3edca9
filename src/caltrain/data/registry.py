"""Datasets by registry name: ``names()`` and ``create(name, root=..., seed=..., **options)``.

Every dataset is a factory registered in :data:`DATASETS` with the keyword-only signature
``(*, root, seed, **its options)``; its signature is its option schema, so a mistyped option fails with the
list of valid ones. :func:`create` adds the options every classification set shares:

- ``imbalance_factor``: a long-tailed variant (exponential profile, :mod:`caltrain.data.long_tail`) of the
  training split, and of the validation split unless ``balanced_val=True``; the test split stays balanced.
  Reading: the papers (Cui et al. 2019, Cao et al. 2019) have no validation split; ours is held out from the
  training data, so by default it follows the training distribution, as a held-out set from a real
  long-tailed training set would.
- ``ood``: which paired out-of-distribution sets to attach (each dataset documents its own and its
  default); naming them explicitly loads them at once, so a missing file fails before training starts.

Files of the real datasets are looked for under ``root`` (default: ``$CALTRAIN_DATA_DIR``, else ``./data``;
``--set data.root=DIR`` on the command line). :func:`check_available` tells, without loading anything, whether
they are there: each real dataset's module registers a cheap check in :data:`FILE_CHECKS`.

Example:
    >>> ds = create("synthetic", seed=0, train_size=200, val_size=50, test_size=100)
    >>> ds.kind, ds.num_classes, len(ds.train), len(ds.val), len(ds.test)
    ('features', 10, 200, 50, 100)
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from caltrain.data.long_tail import long_tailed_split
from caltrain.data.seeding import derive_seed
from caltrain.data.splits import DatasetSplits, channel_stats
from caltrain.utils.checks import check_number
from caltrain.utils.registry import Registry

__all__ = ["DATASETS", "FILE_CHECKS", "check_available", "create", "default_root", "names"]

#: name -> factory ``(*, root: Path, seed: int, **options) -> DatasetSplits``.
DATASETS: Registry[Callable[..., DatasetSplits]] = Registry(
    "dataset", entry_points="caltrain.datasets", signature="(*, root, seed, **options)"
)

#: name -> check ``(*, root: Path, **file options) -> None`` of a real dataset: raises ``FileNotFoundError`` (via
#: :func:`caltrain.data.files.require`) when files the dataset would read are missing, after the download the
#: dataset itself would try. Its keyword parameters are the dataset options that choose files (e.g. ``subset``);
#: they receive the dataset's defaults unless given. Embedded datasets register none.
FILE_CHECKS: Registry[Callable[..., None]] = Registry("dataset file check")

def default_root() -> Path:
    """Where dataset files are looked for when no ``root`` is given: ``$CALTRAIN_DATA_DIR`` or ``./data``."""
    return Path(os.environ.get("CALTRAIN_DATA_DIR", "data")).expanduser()


def check_available(name: str, root: str | os.PathLike | None = None, **options: Any) -> None:
    """Raise ``FileNotFoundError`` unless the files dataset ``name`` reads with ``options`` are under ``root``.

    Cheap: file existence only (plus the download that a dataset with ``download=True`` would try anyway), so a
    suite or ``caltrain train`` can call it once before any run starts. Embedded datasets are always available.

    Args:
        name: a registry name (see :func:`names`).
        root: the data directory, as for :func:`create` (default :func:`default_root`).
        **options: the dataset's options, as for :func:`create`; those that do not choose files are ignored.

    Raises:
        UnknownNameError: ``name`` is not registered.
        FileNotFoundError: one message naming the dataset, the missing files under the folder searched, how to
            get them and how to point caltrain at another folder.
    """
    DATASETS.get(name)
    if name not in FILE_CHECKS:
        return
    accepted = FILE_CHECKS.parameters(name)
    given = {**DATASETS.defaults(name), **options}
    kwargs = {k: v for k, v in given.items() if k in accepted and k != "root"}
    FILE_CHECKS.get(name)(root=Path(root).expanduser() if root is not None else default_root(), **kwargs)


def names() -> list[str]:
    """Every registered dataset name, sorted."""
    return DATASETS.names()


def create(
    name: str,
    *,
    root: str | os.PathLike | None = None,
    seed: int = 0,
    imbalance_factor: float | None = None,
    balanced_val: bool = False,
    **options: Any,
) -> DatasetSplits:
    """Build dataset ``name`` with deterministic, seeded train / validation / test splits.

    Args:
        name: a registry name (see :func:`names`).
        root: the directory holding the real datasets' files (default :func:`default_root`).
        seed: the splits (and synthetic samples) are a pure function of ``seed`` and the options.
        imbalance_factor: if given (e.g. 10, 50, 100), the long-tailed variant with that ratio between the
            largest and the smallest class of the training split.
        balanced_val: with ``imbalance_factor``, keep the validation split balanced (default: long-tailed
            like the training split).
        **options: the dataset's own options (``caltrain data --json`` lists them with their defaults).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the valid names).
        TypeError: an option the dataset does not take (the message lists the valid ones).
        FileNotFoundError: a real dataset's files are missing (the message says where to put them).
    """
    DATASETS.check_kwargs(name, options, reserved=("root", "seed"))
    ds = DATASETS.call(name, passed=("root", "seed"), returns=DatasetSplits,
                       root=Path(root).expanduser() if root is not None else default_root(), seed=seed, **options)
    defaults = {k: v for k, v in DATASETS.defaults(name).items() if k not in ("root", "seed")}
    resolved = {"name": name, "root": str(root) if root is not None else None, "seed": seed, **defaults, **options}
    if imbalance_factor is not None:
        if ds.task != "classification":
            raise ValueError(f"imbalance_factor: dataset {name!r} poses a {ds.task} task; long-tailed variants "
                             "are defined for classification only")
        rho = check_number(imbalance_factor, "imbalance_factor", low=1.0)
        train = long_tailed_split(ds.train, ds.num_classes, rho, seed=seed, name="train")
        val = ds.val
        if not balanced_val:
            val = long_tailed_split(ds.val, ds.num_classes, rho, seed=derive_seed(seed, "val"), name="validation")
        mean, std = channel_stats(train.x)
        ds = replace(ds, train=train, val=val, mean=mean, std=std)
        resolved.update(imbalance_factor=rho, balanced_val=balanced_val)
    ds = replace(ds, options={**ds.options, **resolved})
    if options.get("ood") is not None:
        ds.ood()  # load what was asked for now, so a missing file fails before any training
    return ds
