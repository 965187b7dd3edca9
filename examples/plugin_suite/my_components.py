"""A dataset and a model of your own, named in a suite like caltrain's (see docs/suites.md).

    caltrain bench examples/plugin_suite/suite.yaml --import examples/plugin_suite/my_components.py --out DIR

A dataset factory is called as ``(*, root, seed, **options)`` and returns ``DatasetSplits``; a model factory as
``(*, num_classes, in_channels, input_shape, **options)`` and returns an ``nn.Module`` (``num_classes`` is the
number of outputs the objective needs).
"""

from __future__ import annotations

import torch
from torch import nn

from caltrain.data import DATASETS
from caltrain.data.splits import DatasetSplits, Split, channel_stats
from caltrain.models import MODELS


@DATASETS.register("two_moons")
def two_moons(*, root=None, seed: int = 0, noise: float = 0.2, size: int = 300) -> DatasetSplits:
    """Two interleaved half circles in 2-D, with Gaussian noise; ``root`` is unused (nothing is read)."""
    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        y = torch.randint(0, 2, (n,), generator=g)
        angle = torch.rand(n, generator=g) * torch.pi
        x = torch.stack([torch.cos(angle) + y * 1.0, torch.sin(angle) * (1 - 2 * y) + y * 0.5], dim=1)
        x = x + noise * torch.randn(n, 2, generator=g)
        return Split(x.float(), y.long())

    train, val, test = split(size), split(size // 2), split(size // 2)
    mean, std = channel_stats(train.x)
    return DatasetSplits(name="two_moons", train=train, val=val, test=test, num_classes=2, input_shape=(2,),
                         mean=mean, std=std, kind="features")


@MODELS.register("tiny_mlp")
def tiny_mlp(*, num_classes: int, in_channels: int = 3, input_shape=None, hidden: int = 16) -> nn.Module:
    """One hidden layer; ``in_channels`` is unused (features read ``input_shape``)."""
    return nn.Sequential(nn.Linear(input_shape[0], hidden), nn.ReLU(), nn.Linear(hidden, num_classes))
