"""The containers every dataset returns: :class:`Split` (one split as tensors) and :class:`DatasetSplits`.

A split holds all its samples as tensors: images as ``uint8 [N, C, H, W]`` (converted to float, augmented
and normalised batch by batch by the loader, on the device), feature data as ``float32 [N, D]``, labels as
``int64 [N]``. A sample's index is its position in its split; per-sample objectives key their tables by it.

Synthetic data also carries ``true_posterior`` ``[N, K]``: the probability of each *observed* label given
the input under the generating distribution (label noise included), from which the true calibration error
of any model follows (:func:`caltrain.metrics.true_calibration_error`).

Dense binary tasks (salient-object detection, binary segmentation; ``DatasetSplits.task ==
"dense_binary"``) hold one mask per image instead of a label: ``y`` is ``uint8 [N, 1, H, W]`` with values in
{0, 1} (1 = foreground), ``true_posterior`` (synthetic data) is ``float32 [N, 1, H, W]``, the per-pixel
``P(y = 1 | x)``, and the dataset has ``num_classes == 1`` (one logit per pixel). Per-sample side information
(e.g. the annotator uncertainty ``tau`` of ``synthetic_saliency``) lives in :attr:`Split.extra`, a mapping of
tensors whose first dimension is N, kept aligned by :meth:`Split.subset`.

Out-of-distribution sets paired with a dataset are :class:`Split` objects too; their labels are the source
labels where they still mean something (corrupted or shifted copies of the test split) and
:data:`NO_LABEL` (-1) where they do not (noise images, a far cluster, SVHN digits against CIFAR classes).

Example:
    >>> import torch
    >>> s = Split(torch.zeros(4, 3), torch.tensor([0, 1, 1, 0]))
    >>> len(s), s.x.dtype
    (4, torch.float32)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Callable, Mapping

import numpy as np
import torch

from caltrain.data.seeding import make_generator
from caltrain.utils.checks import check_choice, check_finite, check_ndim, check_positive_int, check_same_length

__all__ = [
    "AUGMENT_OPS",
    "DatasetSplits",
    "KINDS",
    "NO_LABEL",
    "TASKS",
    "Split",
    "channel_stats",
    "dataset_from_splits",
    "holdout_splits",
    "random_partition",
    "unlabelled",
]

#: Label of an out-of-distribution sample that has no in-distribution class.
NO_LABEL = -1
#: The kinds of input a dataset can hold.
KINDS = ("image", "features")
#: The tasks a dataset can pose: one label per sample, or one binary label per pixel (a mask).
TASKS = ("classification", "dense_binary")
#: The augmentation operations the loader knows (see :mod:`caltrain.data.augment`).
AUGMENT_OPS = ("crop", "flip", "cutout", "rot90")


@dataclass(frozen=True)
class Split:
    """One split of a dataset, held as tensors (on the CPU until a loader moves it).

    Attributes:
        x: ``uint8 [N, C, H, W]`` images (pixel values 0..255) or ``float32 [N, D]`` features.
        y: ``int64 [N]`` labels in ``[0, K)``; :data:`NO_LABEL` (-1) for OOD samples without a class; or, for a
            dense binary task, ``uint8 [N, 1, H, W]`` masks in {0, 1} of the images' height and width.
        true_posterior: ``float64 [N, K]`` true ``p(observed label | x)`` for synthetic data, else ``None``;
            for masks ``float32 [N, 1, H, W]``, the true ``P(y = 1 | x)`` of every pixel.
        augment: the dataset's standard augmentation, used when a loader is asked for ``augment=True``;
            ``None`` means random crop and flip for images and nothing for features (the CIFAR standard).
        extra: per-sample side information, name -> tensor of first dimension N (e.g. ``"tau"``: the
            annotator uncertainty of each ``synthetic_saliency`` image); empty for most datasets.
    """

    x: torch.Tensor
    y: torch.Tensor
    true_posterior: torch.Tensor | None = None
    augment: tuple[str, ...] | None = None
    extra: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_ndim(self.x, "x", (2, 4), "[N, D] (features) or [N, C, H, W] (images)")
        if self.x.ndim == 4 and self.x.dtype != torch.uint8:
            raise TypeError(f"x: images must be uint8 [N, C, H, W] (0..255), got dtype {self.x.dtype}")
        if self.x.ndim == 2:
            if self.x.dtype != torch.float32:
                raise TypeError(f"x: features must be float32 [N, D], got dtype {self.x.dtype}")
            check_finite(self.x, "x")
        check_ndim(self.y, "y", (1, 4), "[N] (labels) or [N, 1, H, W] (masks)")
        if self.y.ndim == 4:
            if self.y.dtype != torch.uint8:
                raise TypeError(f"y: masks must be uint8 [N, 1, H, W] (values 0 and 1), got dtype {self.y.dtype}")
            if self.x.ndim != 4 or self.y.shape[1] != 1 or self.y.shape[2:] != self.x.shape[2:]:
                raise ValueError(
                    f"y: masks must be [N, 1, H, W] with the images' H and W, got {tuple(self.y.shape)} "
                    f"for images {tuple(self.x.shape)}"
                )
        elif self.y.dtype != torch.int64:
            raise TypeError(f"y: expected int64 labels, got dtype {self.y.dtype}")
        check_same_length(self.x, self.y, "x", "y")
        if self.true_posterior is not None:
            if self.dense:
                if tuple(self.true_posterior.shape) != tuple(self.y.shape):
                    raise ValueError(
                        f"true_posterior: expected the masks' shape {tuple(self.y.shape)}, "
                        f"got {tuple(self.true_posterior.shape)}"
                    )
            else:
                check_ndim(self.true_posterior, "true_posterior", 2, "[N, K]")
            check_same_length(self.x, self.true_posterior, "x", "true_posterior")
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))
        for key, value in self.extra.items():
            if not isinstance(value, torch.Tensor) or value.ndim < 1:
                raise TypeError(f"extra[{key!r}]: expected a tensor with one row per sample, got {value!r}")
            check_same_length(self.x, value, "x", f"extra[{key!r}]")
        if self.augment is not None:
            for op in self.augment:
                check_choice(op, "augment", AUGMENT_OPS)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @property
    def dense(self) -> bool:
        """``True`` when ``y`` holds masks ``[N, 1, H, W]`` (a dense binary task) instead of labels ``[N]``."""
        return self.y.ndim == 4

    @property
    def kind(self) -> str:
        """``"image"`` for ``[N, C, H, W]`` inputs, ``"features"`` for ``[N, D]``."""
        return "image" if self.x.ndim == 4 else "features"

    def subset(self, indices: torch.Tensor) -> "Split":
        """The samples at ``indices`` (``int64 [M]``), in that order; positions are renumbered 0..M-1."""
        posterior = None if self.true_posterior is None else self.true_posterior[indices]
        extra = {k: v[indices] for k, v in self.extra.items()}
        return replace(self, x=self.x[indices], y=self.y[indices], true_posterior=posterior, extra=extra)


@dataclass(frozen=True)
class DatasetSplits:
    """A dataset: train / validation / test splits, its shape, normalisation and paired OOD sets.

    Attributes:
        name: the registry name.
        train, val, test: the splits (``val`` is what post-hoc calibrators and model selection use).
        num_classes: K; 1 for a dense binary task (one logit per pixel).
        input_shape: ``(C, H, W)`` for images, ``(D,)`` for features.
        mean, std: per-channel statistics of the training images on the [0, 1] scale, or per-feature
            statistics of the training features; the loader normalises with them.
        kind: ``"image"`` or ``"features"``.
        options: the resolved options the dataset was built with (saved beside results).
        task: ``"classification"`` (labels ``[N]``, the default) or ``"dense_binary"`` (masks ``[N, 1, H, W]``
            in every split, ``num_classes == 1``, image data): how a trainer tells a dense binary task.
        ood_sources: name -> zero-argument function loading that OOD split (loaded on first use, cached).
    """

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)
    task: str = "classification"
    ood_sources: Mapping[str, Callable[[], Split]] = field(default_factory=dict, repr=False)
    _ood_cache: dict[str, Split] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_choice(self.task, "task", TASKS)
        dense = self.task == "dense_binary"
        if dense:
            if self.num_classes != 1 or self.kind != "image":
                raise ValueError(
                    f"task 'dense_binary': expected num_classes=1 and image data, "
                    f"got num_classes={self.num_classes}, kind={self.kind!r}"
                )
        else:
            check_positive_int(self.num_classes, "num_classes", minimum=2)
        check_choice(self.kind, "kind", KINDS)
        for split_name in ("train", "val", "test"):
            split = getattr(self, split_name)
            if split.dense != dense:
                expected = "masks [N, 1, H, W]" if dense else "labels [N]"
                raise ValueError(f"{split_name}: task {self.task!r} expects {expected}, got y of shape "
                                 f"{tuple(split.y.shape)}")
            if split.kind != self.kind:
                raise ValueError(f"{split_name}: expected {self.kind} data, got {split.kind}")
            if tuple(split.x.shape[1:]) != tuple(self.input_shape):
                raise ValueError(
                    f"{split_name}: expected inputs of shape {tuple(self.input_shape)}, "
                    f"got {tuple(split.x.shape[1:])}"
                )
        channels = self.input_shape[0]
        if len(self.mean) != channels or len(self.std) != channels:
            unit = "channel" if self.kind == "image" else "feature"
            raise ValueError(
                f"mean and std: expected {channels} values (one per {unit}), got {len(self.mean)} and {len(self.std)}"
            )
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        object.__setattr__(self, "ood_sources", MappingProxyType(dict(self.ood_sources)))
        object.__setattr__(self, "_ood_cache", {})

    @property
    def ood_names(self) -> tuple[str, ...]:
        """The names of the OOD sets paired with this dataset (nothing is loaded)."""
        return tuple(self.ood_sources)

    def ood(self, name: str | None = None) -> dict[str, Split]:
        """The OOD sets paired with this dataset (all of them, or only ``name``); may be empty."""
        if name is not None and name not in self.ood_sources:
            valid = ", ".join(self.ood_sources) or "(none)"
            raise ValueError(f"name: unknown OOD set {name!r} for dataset {self.name!r}; valid names: {valid}")
        names = list(self.ood_sources) if name is None else [name]
        for n in names:
            if n not in self._ood_cache:
                self._ood_cache[n] = self.ood_sources[n]()
        return {n: self._ood_cache[n] for n in names}

    def splits(self) -> dict[str, Split]:
        """``{"train": ..., "val": ..., "test": ...}``."""
        return {"train": self.train, "val": self.val, "test": self.test}


def random_partition(n: int, sizes: list[int | None], *, seed: int, key: str = "split") -> list[torch.Tensor]:
    """Split ``range(n)`` into disjoint random index sets of the given sizes (a seeded permutation).

    At most one size may be ``None``: it takes every index the others leave. Indices within a part come in
    the permutation's order, so ``random_partition(n, [a, b], seed=s)[0]`` is the same for every ``b``
    (growing the validation split never changes which samples the first part holds).

    Args:
        n: the number of samples.
        sizes: the size of each part, one of them possibly ``None`` ("the rest").
        seed: the dataset seed; the permutation is a pure function of ``(seed, key)``.
        key: names the purpose, so two partitions of the same seed are independent.

    Returns:
        one ``int64`` index tensor per part.
    """
    fixed = [s for s in sizes if s is not None]
    if len(fixed) < len(sizes) - 1:
        raise ValueError(f"sizes: at most one size may be None (the rest), got {sizes}")
    for s in fixed:
        check_positive_int(s, "split size", minimum=0)
    if sum(fixed) > n:
        raise ValueError(f"split sizes: {sizes} ask for {sum(fixed)} samples but only {n} are available")
    rest = n - sum(fixed)
    resolved = [rest if s is None else s for s in sizes]
    perm = torch.randperm(n, generator=make_generator(seed, key))
    bounds = np.cumsum([0, *resolved])
    return [perm[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def channel_stats(x: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel (images, on the [0, 1] scale) or per-feature mean and standard deviation, in float64.

    A constant channel or feature (standard deviation below 1e-8, e.g. the always-blank border pixels of the
    digits) gets std 1, so normalising it leaves a constant instead of dividing by zero.
    """
    if x.ndim == 4:
        flat = x.permute(1, 0, 2, 3).reshape(x.shape[1], -1)
        scale = 255.0
    else:
        flat = x.T
        scale = 1.0
    n = flat.shape[1]
    total = flat.sum(dim=1, dtype=torch.float64)
    mean = total / n
    centred_sq = torch.zeros_like(mean)
    for start in range(0, n, 1 << 22):  # bounded memory: float64 copies of ~4M values per channel at a time
        chunk = flat[:, start : start + (1 << 22)].to(torch.float64)
        centred_sq += ((chunk - mean[:, None]) ** 2).sum(dim=1)
    std = (centred_sq / n).sqrt()
    std = torch.where(std < 1e-8, torch.ones_like(std), std / scale)
    return tuple((mean / scale).tolist()), tuple(std.tolist())


def unlabelled(x: torch.Tensor) -> Split:
    """``x`` as an OOD split: every label :data:`NO_LABEL`, the default augmentation."""
    return Split(x, torch.full((x.shape[0],), NO_LABEL, dtype=torch.int64))


def holdout_splits(
    x: torch.Tensor,
    y: torch.Tensor,
    test: tuple[torch.Tensor, torch.Tensor],
    *,
    seed: int,
    val_size: int | None,
    train_size: int | None,
    augment: tuple[str, ...],
) -> tuple[Split, Split, Split]:
    """``(train, val, test)``: a seeded ``val_size`` / ``train_size`` partition of ``(x, y)`` (validation
    first, :func:`random_partition`) and the official ``test = (x_test, y_test)``, all with ``augment``."""
    val_idx, train_idx = random_partition(len(y), [val_size, train_size], seed=seed)
    return (
        Split(x[train_idx], y[train_idx], augment=augment),
        Split(x[val_idx], y[val_idx], augment=augment),
        Split(*test, augment=augment),
    )


def dataset_from_splits(
    name: str,
    splits: tuple[Split, Split, Split],
    *,
    num_classes: int,
    ood_sources: Mapping[str, Callable[[], Split]],
    task: str = "classification",
) -> DatasetSplits:
    """The :class:`DatasetSplits` of ``(train, val, test)``: shape and kind from the training inputs,
    ``mean`` / ``std`` their :func:`channel_stats`, the (already selected) ``ood_sources`` and ``task``.

    Example:
        >>> x = torch.zeros(6, 1, 2, 2, dtype=torch.uint8)
        >>> y = torch.tensor([0, 1, 0, 1, 0, 1])
        >>> ds = dataset_from_splits("toy", holdout_splits(x, y, (x[:2], y[:2]), seed=0, val_size=2,
        ...                          train_size=None, augment=()), num_classes=2, ood_sources={})
        >>> len(ds.train), len(ds.val), ds.input_shape, ds.kind, ds.mean
        (4, 2, (1, 2, 2), 'image', (0.0,))
    """
    train, val, test = splits
    mean, std = channel_stats(train.x)
    return DatasetSplits(
        name=name,
        train=train,
        val=val,
        test=test,
        num_classes=num_classes,
        input_shape=tuple(train.x.shape[1:]),
        mean=mean,
        std=std,
        kind=train.kind,
        task=task,
        ood_sources=ood_sources,
    )
