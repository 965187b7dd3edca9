"""A user's data as caltrain's loaders: what :func:`caltrain.fit` trains and evaluates on.

Each of ``train``, ``val``, ``test`` may be

- in-memory data: ``(inputs, labels)`` as tensors or NumPy arrays (:class:`TensorInput`). It takes the
  **device-resident path**: the tensors move to the device once (on a GPU, inputs over 1 GiB stay in host
  memory and each batch is moved) and a batch is an index slice of a seeded permutation (:class:`TensorLoader`,
  the design of :func:`caltrain.data.make_loader`, without its uint8 scaling and augmentation: inputs reach the
  model as given; NumPy float64 becomes float32);
- a map-style ``torch.utils.data.Dataset`` yielding ``(x, y)``, or a ``DataLoader`` over one
  (:class:`DatasetInput`). It takes the **generic path**: a ``DataLoader`` (the user's worker processes, pinned
  memory, collate function and transforms) over :class:`IndexedDataset`, which yields ``(x, y, index)``.

Both paths yield ``(x, y, index)`` batches on the device, ``index`` being each sample's position in its split:
caltrain supplies the index itself, so objectives with per-sample state (Socrates, SAT, GenCE's EMA: ``"indices"``
in ``objective.requires``) work with a dataset that yields only ``(x, y)``, and the index travels with its sample
whatever order a sampler draws.

Order: both paths draw epoch ``e``'s order from the same generator, seeded by ``(seed, e)``
(:func:`epoch_order`, the permutation :func:`caltrain.data.make_loader` uses), so the same data gives the same
batches, and the same numbers, on both paths; a resumed run sees the batches of the uninterrupted one. A user
``DataLoader`` is rebuilt over the index-wrapped dataset with its batch size, ``drop_last``, workers, pinned
memory, collate function, worker initialisation and prefetching; its ``shuffle=True`` (a plain ``RandomSampler``)
becomes the seeded order above, ``shuffle=False`` stays in order, and a custom ``sampler`` or ``batch_sampler`` is
kept as it is (``set_epoch(e)`` is called on it when it has one; its own randomness decides whether a resume is
exact; it draws indices of the whole dataset, so :func:`holdout` refuses it: pass ``val``). The loader's ``generator`` (worker seeds) is re-seeded from ``(seed, e)`` each epoch. What cannot be
rebuilt is refused: an ``IterableDataset`` (no index, no length), a ``RandomSampler`` with replacement or
``num_samples``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, IterableDataset, RandomSampler, Sampler
from torch.utils.data import SequentialSampler, Subset

from caltrain.data.loader import MAX_RESIDENT_BYTES
from caltrain.data.seeding import make_generator

__all__ = [
    "DatasetInput", "IndexedDataset", "TensorInput", "TensorLoader", "as_input", "epoch_order", "holdout",
]


def epoch_order(size: int, seed: int, epoch: int, shuffle: bool) -> torch.Tensor:
    """``int64 [size]``: epoch ``epoch``'s sample order (the permutation :func:`caltrain.data.make_loader` draws)."""
    if shuffle:
        return torch.randperm(size, generator=make_generator(seed, epoch, "permutation"))
    return torch.arange(size)


# ----------------------------------------------------------------------------------------- in-memory data
def _as_tensor(value: Any, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    if isinstance(value, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(value))
        return t.float() if t.dtype == torch.float64 else t
    raise TypeError(f"{what}: expected a tensor or a NumPy array, got {type(value).__name__}")


@dataclass
class TensorInput:
    """In-memory ``(x, y)``: ``x [N, ...]`` as the model takes it, ``y`` int64 ``[N]`` class indices or float32
    ``[N, 1, H, W]`` masks in {0, 1} (a dense binary task)."""

    x: torch.Tensor
    y: torch.Tensor
    name: str

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def subset(self, index: torch.Tensor, name: str) -> "TensorInput":
        return TensorInput(self.x[index], self.y[index], name)

    def labels(self) -> torch.Tensor | None:
        """The class indices (None for masks: a dense task has no classes to count)."""
        return None if self.y.ndim > 1 else self.y

    def first(self) -> torch.Tensor:
        """One input, batched (``[1, ...]``): what the dry forward pass runs."""
        return self.x[:1]

    def first_target(self) -> torch.Tensor:
        """The first sample's target, batched (``[1]`` or a mask ``[1, 1, H, W]``)."""
        return self.y[:1]

    def describe(self) -> str:
        return f"tensors x {list(self.x.shape)} {str(self.x.dtype).removeprefix('torch.')}, y {list(self.y.shape)}"

    def path(self) -> str:
        return "device-resident"


class TensorLoader:
    """Device-resident ``(x, y, index)`` batches of in-memory tensors (an epoch: one permutation, index slices).

    Call :meth:`set_epoch` before each pass; the order is :func:`epoch_order` of ``(seed, epoch)``.
    """

    def __init__(self, data: TensorInput, *, batch_size: int, shuffle: bool, seed: int, device: torch.device,
                 drop_last: bool = False) -> None:
        # as caltrain.data.make_loader: inputs over 1 GiB stay in host memory on a GPU (each batch is moved)
        resident = device.type == "cpu" or data.x.numel() * data.x.element_size() <= MAX_RESIDENT_BYTES
        self.x = data.x.to(device) if resident else (data.x.pin_memory() if device.type == "cuda" else data.x)
        self.resident = resident
        self.y = data.y.to(device)
        self.size = len(data)
        self.batch_size, self.shuffle, self.seed, self.device = batch_size, shuffle, seed, device
        self.drop_last = drop_last
        self.epoch = 0

    def __len__(self) -> int:
        return self.size // self.batch_size if self.drop_last else math.ceil(self.size / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        order = epoch_order(self.size, self.seed, self.epoch, self.shuffle)
        order_device = order.to(self.device)
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            index = order_device[start : start + self.batch_size]
            if self.resident:
                x = self.x.index_select(0, index)
            else:
                x = self.x.index_select(0, order[start : start + self.batch_size]).to(self.device, non_blocking=True)
            yield x, self.y[index], index


# ------------------------------------------------------------------------------------------ generic path
def _pair(item: Any, i: int) -> tuple[Any, Any]:
    if isinstance(item, (tuple, list)) and len(item) == 2:
        return item[0], item[1]
    if isinstance(item, dict) and {"x", "y"} <= set(item):
        return item["x"], item["y"]
    kind = f"a {len(item)}-tuple" if isinstance(item, (tuple, list)) else type(item).__name__
    raise TypeError(f"dataset[{i}]: expected an (input, label) pair, got {kind}")


class IndexedDataset(Dataset):
    """``(x, y, index)`` from a dataset yielding ``(x, y)``: the index is the sample's position in the split."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, Any, int]:
        x, y = _pair(self.dataset[i], i)
        return x, y, int(i)


class _IndexCollate:
    """The user's collate function on the ``(x, y)`` pairs, with the indices as a third, int64 tensor."""

    def __init__(self, collate: Any) -> None:
        self.collate = collate

    def __call__(self, batch: list[tuple[Any, Any, int]]) -> tuple[Any, Any, torch.Tensor]:
        x, y = self.collate([(x, y) for x, y, _ in batch])
        return x, y, torch.tensor([i for _, _, i in batch], dtype=torch.int64)


class _EpochSampler(Sampler):
    """:func:`epoch_order` of the current epoch, as sample indices."""

    def __init__(self, size: int, seed: int, shuffle: bool) -> None:
        self.size, self.seed, self.shuffle, self.epoch = size, seed, shuffle, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(epoch_order(self.size, self.seed, self.epoch, self.shuffle).tolist())

    def __len__(self) -> int:
        return self.size


#: The DataLoader settings a rebuilt loader keeps.
_KEPT = ("num_workers", "pin_memory", "timeout", "worker_init_fn", "multiprocessing_context", "persistent_workers")


@dataclass
class DatasetInput:
    """A map-style dataset yielding ``(x, y)``, with the settings of the user's ``DataLoader`` when one was given."""

    dataset: Dataset
    name: str
    loader: DataLoader | None = None
    settings: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def batch_size(self) -> int | None:
        return None if self.loader is None else self.loader.batch_size

    def subset(self, index: torch.Tensor, name: str) -> "DatasetInput":
        return DatasetInput(Subset(self.dataset, index.tolist()), name, self.loader, self.settings)

    def labels(self) -> torch.Tensor | None:
        """The labels when the dataset lists them (``targets`` or ``labels``, as torchvision sets do), else None."""
        ds, index = self.dataset, None
        while isinstance(ds, Subset):
            index = list(ds.indices) if index is None else [ds.indices[i] for i in index]
            ds = ds.dataset
        for attr in ("targets", "labels"):
            values = getattr(ds, attr, None)
            if values is None or isinstance(values, str):
                continue
            try:
                labels = torch.as_tensor(np.asarray(values)).long().flatten()
            except (TypeError, ValueError):
                continue
            if labels.shape[0] == len(ds):
                return labels if index is None else labels[torch.as_tensor(index, dtype=torch.int64)]
        return None

    def first(self) -> torch.Tensor:
        x, _ = self._first_pair()
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{self.name}: the collated inputs must be a tensor, got {type(x).__name__}")
        return x

    def first_target(self) -> torch.Tensor:
        """The first sample's target, collated and checked as the loader will (``[1]`` or ``[1, 1, H, W]``)."""
        return _targets(self._first_pair()[1], 1)

    def _first_pair(self) -> tuple[Any, Any]:
        collate = self.loader.collate_fn if self.loader is not None else torch.utils.data.default_collate
        return collate([_pair(self.dataset[0], 0)])

    def describe(self) -> str:
        kind = type(self.dataset).__name__
        return f"{kind} ({len(self)} samples{', from a DataLoader' if self.loader is not None else ''})"

    def path(self) -> str:
        return "DataLoader"

    def make_loader(self, *, batch_size: int, shuffle: bool, seed: int, device: torch.device,
                    train: bool) -> "DatasetLoader":
        """The rebuilt loader over :class:`IndexedDataset` (module docstring)."""
        src = self.loader
        kw: dict[str, Any] = {k: getattr(src, k) for k in _KEPT} if src is not None else {}
        if src is not None and src.num_workers > 0:
            kw["prefetch_factor"] = src.prefetch_factor
        collate = _IndexCollate(src.collate_fn if src is not None else torch.utils.data.default_collate)
        generator = torch.Generator()
        sampler: Any = _EpochSampler(len(self), seed, shuffle)
        drop_last = bool(src.drop_last) if (src is not None and train) else False
        custom = self.settings.get("sampler") if train else None
        if custom is not None and isinstance(custom, BatchSampler):
            loader = DataLoader(IndexedDataset(self.dataset), batch_sampler=custom, collate_fn=collate,
                                generator=generator, **kw)
            return DatasetLoader(loader, generator, custom, seed, device)
        if custom is not None:
            sampler = custom
        loader = DataLoader(IndexedDataset(self.dataset), batch_size=batch_size, sampler=sampler,
                            drop_last=drop_last, collate_fn=collate, generator=generator, **kw)
        return DatasetLoader(loader, generator, sampler, seed, device)


class DatasetLoader:
    """The generic path's ``(x, y, index)`` batches, moved to the device (``set_epoch`` before each pass)."""

    def __init__(self, loader: DataLoader, generator: torch.Generator, sampler: Any, seed: int,
                 device: torch.device) -> None:
        self.loader, self.generator, self.sampler, self.seed, self.device = loader, generator, sampler, seed, device
        self.set_epoch(0)

    def __len__(self) -> int:
        return len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        self.generator.manual_seed(int(make_generator(self.seed, int(epoch), "workers").initial_seed()))
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(int(epoch))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        blocking = not self.loader.pin_memory
        for x, y, index in self.loader:
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"the collated inputs must be a tensor, got {type(x).__name__}")
            yield (x.to(self.device, non_blocking=not blocking), _targets(y, len(index)).to(self.device),
                   index.to(self.device))


def _targets(y: Any, n: int) -> torch.Tensor:
    """A collated batch of targets: masks (3-D or 4-D, :func:`_masks`) or class indices (:func:`_class_indices`)."""
    y = torch.as_tensor(y)
    return _masks(y, "labels") if y.ndim >= 3 else _class_indices(y, n)


def _masks(y: torch.Tensor, name: str) -> torch.Tensor:
    """Masks ``[N, H, W]`` or ``[N, 1, H, W]`` with values in {0, 1} (bool, integer or float) as float32
    ``[N, 1, H, W]``; soft or multi-class masks are refused (the dense metrics score binary outcomes)."""
    if y.ndim not in (3, 4) or (y.ndim == 4 and y.shape[1] != 1):
        raise TypeError(f"{name}: expected binary masks [N, H, W] or [N, 1, H, W], got shape {list(y.shape)}")
    if y.is_complex() or not bool(((y == 0) | (y == 1)).all()):
        raise TypeError(f"{name}: expected mask values in {{0, 1}}; binarise soft or 8-bit masks first "
                        "(e.g. mask >= 0.5, or png > 128 as the SOD convention does)")
    return (y.unsqueeze(1) if y.ndim == 3 else y).to(torch.float32)


def _class_indices(y: Any, n: int) -> torch.Tensor:
    """A collated batch of labels as int64 ``[n]``: class indices (``[n]`` or ``[n, 1]``), whole numbers; one-hot or
    soft labels and fractional values are refused (``.long()`` would truncate them silently)."""
    y = torch.as_tensor(y)
    if (y.ndim > 1 and not (y.ndim == 2 and y.shape[1] == 1)) or y.numel() != n:
        raise TypeError(f"labels: expected one class index per sample (a batch of {n}: [{n}]), got shape "
                        f"{list(y.shape)}; one-hot or soft labels are not supported: yield the class index")
    if y.dtype == torch.bool or y.is_complex() or (y.is_floating_point() and not torch.equal(y, y.round())):
        raise TypeError(f"labels: expected integer class indices, got {y.dtype} values"
                        + (f" such as {y[y != y.round()][0].item()}" if y.is_floating_point() else ""))
    return y.long().flatten()


# ------------------------------------------------------------------------------------------------ entry
def _from_loader(loader: DataLoader, name: str) -> DatasetInput:
    if isinstance(loader.dataset, IterableDataset):
        raise TypeError(f"{name}: a DataLoader over an IterableDataset cannot be indexed (caltrain keys per-sample "
                        "state and evaluation order by position); pass a map-style Dataset (with __len__ and "
                        "__getitem__)")
    settings: dict[str, Any] = {}
    batch_sampler = loader.batch_sampler
    if batch_sampler is not None and type(batch_sampler) is not BatchSampler:
        settings["sampler"] = batch_sampler  # a custom batch sampler: kept as it is
    else:
        sampler = loader.sampler
        if isinstance(sampler, RandomSampler):
            if sampler.replacement or sampler._num_samples is not None:
                raise ValueError(f"{name}: a RandomSampler with replacement or num_samples cannot be rebuilt with a "
                                 "seeded order; pass shuffle=True, or your own sampler (kept as it is)")
        elif not isinstance(sampler, SequentialSampler):
            settings["sampler"] = sampler  # a custom sampler: kept as it is
        if loader.batch_size is None:
            raise ValueError(f"{name}: a DataLoader with batch_size=None (no batching) cannot be trained on; "
                             "give it a batch size")
    settings["shuffle"] = isinstance(loader.sampler, RandomSampler)
    if len(loader.dataset) == 0:
        raise ValueError(f"{name}: the DataLoader's dataset is empty")
    return DatasetInput(loader.dataset, name, loader, settings)


def as_input(value: Any, name: str) -> TensorInput | DatasetInput:
    """``value`` (a Dataset, a DataLoader, or ``(inputs, labels)`` tensors / arrays) as an input of :func:`fit`."""
    if isinstance(value, DataLoader):
        return _from_loader(value, name)
    if isinstance(value, IterableDataset):
        raise TypeError(f"{name}: an IterableDataset cannot be indexed (caltrain keys per-sample state and "
                        "evaluation order by position); pass a map-style Dataset (with __len__ and __getitem__)")
    if isinstance(value, Dataset):
        if len(value) == 0:
            raise ValueError(f"{name}: the dataset is empty")
        return DatasetInput(value, name)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        x, y = _as_tensor(value[0], f"{name}[0] (inputs)"), _as_tensor(value[1], f"{name}[1] (labels)")
        if y.ndim in (3, 4):  # masks: a dense binary task
            y = _masks(y, f"{name}[1] (labels)")
        elif y.ndim != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(f"{name}: labels must be integers of shape [N] (or binary masks [N, 1, H, W]), got "
                            f"{y.dtype} {list(y.shape)}")
        if x.ndim < 2:
            raise ValueError(f"{name}: inputs must be batched as [N, ...] (at least 2-D; one feature per sample: "
                             f"x[:, None]), got shape {list(x.shape)}")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"{name}: inputs [N, ...] and labels [N, ...] must have the same N, got {list(x.shape)} "
                             f"and {list(y.shape)}")
        if y.shape[0] == 0:
            raise ValueError(f"{name}: no samples")
        return TensorInput(x, y if y.ndim > 1 else y.long(), name)
    raise TypeError(f"{name}: expected a torch Dataset yielding (x, y), a DataLoader, or (inputs, labels) tensors "
                    f"or NumPy arrays, got {type(value).__name__}")


def holdout(data: TensorInput | DatasetInput, fraction: float, seed: int) -> tuple[Any, Any, torch.Tensor]:
    """``(train, val, val_index)``: a seeded ``fraction`` of ``data`` held out as validation.

    The permutation is a pure function of ``(seed, "fit-val")``; validation takes its first
    ``max(1, round(fraction * N))`` positions, sorted (so validation keeps the data's order).
    """
    if isinstance(data, DatasetInput) and data.settings.get("sampler") is not None:
        raise ValueError(f"{data.name}: the DataLoader's custom sampler draws indices of the whole dataset, so a "
                         "validation split cannot be held out of it; pass val= (the sampler is then kept as it is)")
    n = len(data)
    n_val = max(1, int(round(fraction * n)))
    if n_val >= n:
        raise ValueError(f"val_fraction={fraction}: holding out {n_val} of {n} training samples leaves none to train "
                         "on; pass val= or a smaller val_fraction")
    perm = torch.randperm(n, generator=make_generator(seed, "fit-val"))
    val_index, train_index = perm[:n_val].sort().values, perm[n_val:].sort().values
    return data.subset(train_index, "train"), data.subset(val_index, "val"), val_index
