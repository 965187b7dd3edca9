"""Real network outputs for the post-hoc tests: netcal's CIFAR records (tests/data/real_outputs/README.md).

The data file is not in the repository (third-party data is kept in ``shared/``); it is looked for at
``$CALTRAIN_REAL_OUTPUTS`` (a folder), ``tests/data/real_outputs/``, ``shared/real_outputs/`` in the checkout
and ``../shared/real_outputs/`` beside it, in that order. :func:`records` is ``None`` when none holds it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

FILENAME = "netcal_cifar_records.npz"
#: Record names (netcal's file stems): network and data set.
CIFAR100 = ("densenet-bc-100-cifar-100", "wideresnet-16-4-cifar-100", "lenet-5-cifar-100")
CIFAR10 = ("wideresnet-16-4-cifar-10", "lenet-5-cifar-10")


def data_file() -> Path | None:
    """The records file, or None."""
    root = Path(__file__).resolve().parents[2]
    folders = [Path(os.environ["CALTRAIN_REAL_OUTPUTS"])] if os.environ.get("CALTRAIN_REAL_OUTPUTS") else []
    folders += [root / "tests" / "data" / "real_outputs", root / "shared" / "real_outputs",
                root.parent / "shared" / "real_outputs"]
    for folder in folders:
        if (folder / FILENAME).is_file():
            return folder / FILENAME
    return None


@functools.lru_cache(maxsize=None)
def _load_all(path: str) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def record(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits [10000, K] float64, labels [10000] int64)`` of one record (the file must exist)."""
    path = data_file()
    assert path is not None
    arrays = _load_all(str(path))
    return (torch.from_numpy(arrays[f"{name}.logits"].astype(np.float64)),
            torch.from_numpy(arrays[f"{name}.labels"].astype(np.int64)))


def halves(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of ``range(n)`` into a fitting half and a test half."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[: n // 2], perm[n // 2:]
