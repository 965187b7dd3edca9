"""Device-resident loaders: batches are index slices of a seeded permutation, augmented on the device.

:func:`make_loader` returns a :class:`Loader`, an iterable of ``(x, y, index)`` batches:

- ``x``: ``float32 [B, ...]`` on ``device``: images converted from uint8, scaled to [0, 1], augmented
  (crop / flip / cutout, :mod:`caltrain.data.augment`) and normalised with ``(mean, std)``; feature rows
  normalised (features are never augmented);
- ``y``: ``int64 [B]`` labels, or for a dense task (a split whose ``y`` holds masks) ``float32 [B, 1, H, W]``
  masks in {0, 1}, moved by the same crop / flip / rot90 as their images;
- ``index``: ``int64 [B]``, each sample's position in the split (the key of
  per-sample objective state).

Small datasets live on the device as uint8 (CIFAR-10's 45k training images are 138 MB): an epoch is one
``randperm`` and ``len(loader)`` slices of it; no worker processes, no per-sample Python (the design of
Keller Jordan's airbench, https://github.com/KellerJordan/cifar10-airbench). Larger ones (more than
``max_resident_bytes``, 1 GiB, on a GPU: Tiny-ImageNet) stay in host memory and a standard
``DataLoader`` (worker processes, pinned memory) gathers the same index slices; augmentation still runs on
the device, so both paths give identical batches.

Randomness is a pure function of ``(seed, epoch, rank)``: the permutation of epoch e comes from a generator
seeded by ``(seed, e)`` (shared by all ranks, which take interleaved shards of it, as
``DistributedSampler`` does, the last shard padded with the first samples), the augmentation parameters
from ``(seed, e, rank)``. Call :meth:`Loader.set_epoch` before each epoch (as with ``DistributedSampler``);
a run resumed at epoch e then sees exactly the batches of the uninterrupted run. All random numbers are
drawn on the CPU, so the batches are also the same on every device.

Example:
    >>> import torch
    >>> from caltrain.data.splits import Split
    >>> split = Split(torch.randint(0, 256, (10, 3, 8, 8), dtype=torch.uint8), torch.arange(10) % 2)
    >>> loader = make_loader(split, batch_size=4, shuffle=True, augment=True, seed=0)
    >>> loader.set_epoch(0)
    >>> [tuple(x.shape) for x, y, i in loader]
    [(4, 3, 8, 8), (4, 3, 8, 8), (2, 3, 8, 8)]
"""

from __future__ import annotations

import math
import os
from typing import Iterator, Sequence

import torch

from caltrain.data.augment import AugmentOp, cutout, draw_params, geometric, parse_augment
from caltrain.data.seeding import make_generator
from caltrain.data.splits import Split
from caltrain.utils.checks import check_positive_int

__all__ = ["Loader", "make_loader"]

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]

#: Image splits larger than this stay in host memory when the device is a GPU (DataLoader path).
MAX_RESIDENT_BYTES = 1 << 30


def resolve_augment(split: Split, augment: bool | str | Sequence[str] | None) -> tuple[AugmentOp, ...]:
    """The operations ``augment`` asks for on ``split`` (``True``: the split's standard augmentation)."""
    if augment is None or augment is False:
        return ()
    if split.kind == "features":
        if augment is True:
            return ()
        raise ValueError(f"augment: feature data takes no augmentation, got {augment!r}")
    height = int(split.x.shape[-2])
    if augment is True:
        return parse_augment(("crop", "flip") if split.augment is None else split.augment, height)
    return parse_augment(augment, height)


class _BatchIndices(torch.utils.data.Sampler):
    """Yields the current epoch's batches of indices (set by the loader before each pass)."""

    def __init__(self) -> None:
        self.batches: list[torch.Tensor] = []

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class _Gather(torch.utils.data.Dataset):
    """``dataset[indices]`` is the whole batch ``x[indices]`` (the DataLoader path gathers in workers), with
    the masks ``y[indices]`` too when ``y`` is given (dense tasks keep masks beside their images)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        self.x = x
        self.y = y

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, indices: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.y is None:
            return self.x[indices]
        return self.x[indices], self.y[indices]


class Loader:
    """Iterable of ``(x, y, index)`` batches of one split (see the module docstring and :func:`make_loader`)."""

    def __init__(
        self,
        split: Split,
        *,
        batch_size: int,
        shuffle: bool,
        augment: bool | str | Sequence[str] | None,
        device: str | torch.device,
        seed: int,
        normalization: tuple[Sequence[float], Sequence[float]] | None,
        drop_last: bool,
        rank: int,
        world_size: int,
        resident: bool | None,
        num_workers: int | None,
    ) -> None:
        if not isinstance(split, Split):
            raise TypeError(f"split: expected a caltrain.data.Split, got {type(split).__name__}")
        self.batch_size = check_positive_int(batch_size, "batch_size")
        self.world_size = check_positive_int(world_size, "world_size")
        self.rank = check_positive_int(rank, "rank", minimum=0)
        if self.rank >= self.world_size:
            raise ValueError(f"rank: expected an integer in [0, {self.world_size - 1}], got {rank}")
        self.seed = check_positive_int(seed, "seed", minimum=0)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.device = torch.device(device)
        self.ops = resolve_augment(split, augment)
        self._op_params = {op.name: op.param for op in self.ops}
        self.size = len(split)
        self.num_samples = math.ceil(self.size / self.world_size)
        if self.size == 0:
            raise ValueError("split: expected at least one sample, got an empty split")
        if len(self) == 0:
            raise ValueError(
                f"batch_size: {batch_size} with drop_last=True leaves no batch from {self.num_samples} samples"
            )
        self.epoch = 0
        self.is_image = split.kind == "image"
        self.dense = split.dense
        self._scale, self._shift = self._affine(split, normalization)
        if resident is None:
            resident = self.device.type == "cpu" or split.x.numel() * split.x.element_size() <= MAX_RESIDENT_BYTES
        self.resident = bool(resident)
        self.y = split.y.to(self.device) if self.resident or not self.dense else split.y
        x = split.x if self.is_image else split.x * self._scale.cpu() + self._shift.cpu()
        if self.resident:
            self.x = x.to(self.device)
            self._dataloader = None
        else:
            self.x = x
            self._sampler = _BatchIndices()
            workers = min(4, os.cpu_count() or 1) if num_workers is None else int(num_workers)
            self._dataloader = torch.utils.data.DataLoader(
                _Gather(x, self.y if self.dense else None),
                sampler=self._sampler,
                batch_size=None,
                num_workers=workers,
                pin_memory=self.device.type == "cuda",
                persistent_workers=workers > 0,
            )

    def _affine(
        self, split: Split, normalization: tuple[Sequence[float], Sequence[float]] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``scale, shift`` such that ``x * scale + shift`` is the normalised input (uint8 images: /255 first)."""
        channels = int(split.x.shape[1])
        if normalization is None:
            mean, std = torch.zeros(channels), torch.ones(channels)
        else:
            mean, std = (torch.as_tensor(v, dtype=torch.float64).flatten() for v in normalization)
            if mean.numel() != channels or std.numel() != channels:
                raise ValueError(
                    f"normalization: expected {channels} means and standard deviations, "
                    f"got {mean.numel()} and {std.numel()}"
                )
            if not bool((std > 0).all()):
                raise ValueError(f"normalization: standard deviations must be positive, got {std.tolist()}")
        pixel = 255.0 if split.kind == "image" else 1.0
        scale = 1.0 / (pixel * std.double())
        shift = -mean.double() / std.double()
        view = (1, channels, 1, 1) if split.kind == "image" else (1, channels)
        return scale.float().view(view).to(self.device), shift.float().view(view).to(self.device)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return math.ceil(self.num_samples / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Select epoch ``epoch``'s permutation and augmentation (a pure function of seed, epoch, rank)."""
        self.epoch = check_positive_int(epoch, "epoch", minimum=0)

    def epoch_order(self) -> torch.Tensor:
        """``int64 [num_samples]`` (CPU): this rank's sample positions for the current epoch, in batch order."""
        if self.shuffle:
            order = torch.randperm(self.size, generator=make_generator(self.seed, self.epoch, "permutation"))
        else:
            order = torch.arange(self.size)
        total = self.num_samples * self.world_size
        if total > self.size:  # pad as DistributedSampler does, so every rank gets the same number of samples
            order = torch.cat([order, order[: total - self.size]])
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[Batch]:
        order = self.epoch_order()
        count = len(self) * self.batch_size if self.drop_last else len(order)
        order = order[:count]
        height, width = (int(s) for s in self.x.shape[-2:]) if self.is_image else (0, 0)
        generator = make_generator(self.seed, self.epoch, self.rank, "augment")
        params = draw_params(count, self.ops, height, width, generator)
        params = {k: v.to(self.device) for k, v in params.items()}
        order_device = order.to(self.device)
        starts = range(0, count, self.batch_size)
        if self._dataloader is None:
            images = (self.x.index_select(0, order_device[s : s + self.batch_size]) for s in starts)
        else:
            self._sampler.batches = [order[s : s + self.batch_size] for s in starts]
            images = (self._to_device(batch) for batch in self._dataloader)
        for start, x in zip(starts, images):
            index = order_device[start : start + self.batch_size]
            batch_params = {k: v[start : start + self.batch_size] for k, v in params.items()}
            if not self.dense:
                yield self._transform(x, batch_params), self.y[index], index
                continue
            x, mask = x if isinstance(x, tuple) else (x, self.y.index_select(0, index))
            mask = geometric(mask, batch_params, self._op_params).to(torch.float32)
            yield self._transform(x, batch_params), mask, index

    def _to_device(self, batch: torch.Tensor | tuple[torch.Tensor, ...]) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """Move a gathered batch (images, or images and masks) to the device."""
        if isinstance(batch, (tuple, list)):  # (images, masks); the DataLoader's collation may make a list
            return tuple(b.to(self.device, non_blocking=True) for b in batch)
        return batch.to(self.device, non_blocking=True)

    def _transform(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        """uint8 images -> crop/flip/rot90 -> float, normalised -> cutout; features pass through (pre-normalised)."""
        if not self.is_image:
            return x
        ops = self._op_params
        x = geometric(x, params, ops)
        x = torch.addcmul(self._shift, x.to(torch.float32), self._scale)
        if "cutout" in ops:
            x = cutout(x, params["cy"], params["cx"], size=ops["cutout"])
        return x


def make_loader(
    split: Split,
    *,
    batch_size: int,
    shuffle: bool,
    augment: bool | str | Sequence[str] | None = False,
    device: str | torch.device = "cpu",
    seed: int = 0,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    drop_last: bool = False,
    rank: int = 0,
    world_size: int = 1,
    resident: bool | None = None,
    num_workers: int | None = None,
) -> Loader:
    """A :class:`Loader` over ``split`` (module docstring).

    Args:
        split: the split to iterate.
        batch_size: samples per batch (per rank).
        shuffle: a new seeded permutation every epoch; ``False`` keeps the split's order.
        augment: ``False`` (none), ``True`` (the split's standard augmentation: random crop and flip for images
            unless the dataset says otherwise; none for features), or operation names (``"crop,flip"``,
            ``["crop:4", "flip", "cutout:16"]``; images only).
        device: where batches are produced.
        seed: with the epoch and the rank, determines the permutation and the augmentation.
        normalization: ``(mean, std)`` per channel (images, on the [0, 1] scale) or per feature; ``None``:
            images only scaled to [0, 1], features as they are. Usually ``(dataset.mean, dataset.std)``.
        drop_last: drop the last incomplete batch.
        rank, world_size: this process's shard for data-parallel training.
        resident: keep the split on the device (``None``: yes on the CPU or when it fits in 1 GiB).
        num_workers: worker processes of the non-resident path (default ``min(4, cpu_count)``).
    """
    return Loader(
        split,
        batch_size=batch_size,
        shuffle=shuffle,
        augment=augment,
        device=device,
        seed=seed,
        normalization=normalization,
        drop_last=drop_last,
        rank=rank,
        world_size=world_size,
        resident=resident,
        num_workers=num_workers,
    )
