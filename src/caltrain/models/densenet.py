"""``densenet121``: DenseNet-BC-121 for CIFAR-sized inputs.

Huang et al. 2017, "Densely Connected Convolutional Networks" (arXiv 1608.06993): dense blocks of 6, 12, 24
and 16 bottleneck layers (BN-ReLU-conv1x1 to 4k channels, BN-ReLU-conv3x3 to k channels, the output
concatenated to the input) with growth rate k = 32, transitions BN-ReLU-conv1x1 (compression 0.5) and 2x2
average pooling between blocks, final BN-ReLU, global average pooling and a linear layer. The CIFAR stem is
one 3x3 convolution with 2k channels (no 7x7 convolution, no max-pool), as in ``kuangliu/pytorch-cifar``
and the focal-loss calibration code of Mukhoti et al. 2020 (arXiv 2002.09437), whose CIFAR tables report
DenseNet-121: 6.96M parameters for 10 classes. The new features come first in each concatenation, as in
that code. PyTorch's default initialisation, as in that code.
Reading: that code pools with a fixed 4x4 window; we pool globally (the same on 32x32 inputs).

Example:
    >>> import torch
    >>> net = DenseNet((2, 2, 2, 2), growth_rate=8, num_classes=10)
    >>> net(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.models.registry import MODELS, image_shape

__all__ = ["DenseLayer", "DenseNet", "Transition", "densenet121"]


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1(4k)-BN-ReLU-conv3x3(k); returns ``cat([new, x])``."""

    def __init__(self, in_planes: int, growth_rate: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4 * growth_rate, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(4 * growth_rate)
        self.conv2 = nn.Conv2d(4 * growth_rate, growth_rate, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Module):
    """BN-ReLU-conv1x1 then 2x2 average pooling."""

    def __init__(self, in_planes: int, out_planes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(self.conv(F.relu(self.bn(x))), 2)


class DenseNet(nn.Module):
    """DenseNet-BC with the CIFAR stem (module docstring).

    Args:
        block_sizes: layers per dense block.
        growth_rate: k.
        num_classes: the number of outputs.
        in_channels: input channels.
        compression: the fraction of channels a transition keeps.
    """

    def __init__(
        self,
        block_sizes: Sequence[int],
        growth_rate: int,
        num_classes: int,
        in_channels: int = 3,
        compression: float = 0.5,
    ) -> None:
        super().__init__()
        planes = 2 * growth_rate
        self.conv1 = nn.Conv2d(in_channels, planes, 3, padding=1, bias=False)
        stages: list[nn.Module] = []
        for i, size in enumerate(block_sizes):
            for _ in range(size):
                stages.append(DenseLayer(planes, growth_rate))
                planes += growth_rate
            if i < len(block_sizes) - 1:
                out_planes = int(math.floor(planes * compression))
                stages.append(Transition(planes, out_planes))
                planes = out_planes
        self.features = nn.Sequential(*stages)
        self.bn = nn.BatchNorm2d(planes)
        self.fc = nn.Linear(planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.features(self.conv1(x))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


@MODELS.register("densenet121")
def densenet121(*, num_classes: int, in_channels: int = 3, input_shape: tuple[int, ...] | None = None) -> DenseNet:
    """DenseNet-BC-121 (k = 32, blocks 6-12-24-16) with the CIFAR stem."""
    image_shape("densenet121", input_shape, default=(32, 32))
    return DenseNet((6, 12, 24, 16), 32, num_classes, in_channels)
