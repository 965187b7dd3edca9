"""``resnet18``, ``resnet34``, ``resnet50``: ImageNet ResNets with the CIFAR stem.

He et al. 2016 (arXiv 1512.03385), Table 1 stages: 64, 128, 256, 512 channels with [2, 2, 2, 2] basic
blocks (ResNet-18), [3, 4, 6, 3] basic blocks (ResNet-34) or [3, 4, 6, 3] bottleneck blocks of expansion 4
(ResNet-50); projection shortcuts (1x1 convolution + BatchNorm) where the shape changes. The CIFAR stem
replaces the 7x7 stride-2 convolution and the max-pool by one 3x3 stride-1 convolution with 64 filters, so
32x32 inputs reach the last stage at 4x4; then global average pooling and a linear layer. This is the
network of the widely used ``kuangliu/pytorch-cifar`` code and of the focal-loss calibration code of
Mukhoti et al. 2020 (arXiv 2002.09437) behind the reference numbers in
docs/methods.md#reference-numbers (ResNet-50 on CIFAR-10:
23.5M parameters). PyTorch's default initialisation, as in that code.
Reading: that code pools with a fixed 4x4 window; we pool globally, which is the same on 32x32 inputs and
keeps the network usable on other sizes (e.g. 64x64 Tiny-ImageNet).

Example:
    >>> import torch
    >>> net = ResNet("basic", (2, 2, 2, 2), num_classes=10)
    >>> net(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.models.registry import MODELS, image_shape

__all__ = ["BasicBlock", "Bottleneck", "ResNet", "resnet18", "resnet34", "resnet50"]


def _projection(in_planes: int, out_planes: int, stride: int) -> nn.Module | None:
    if stride == 1 and in_planes == out_planes:
        return None
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, 1, stride=stride, bias=False), nn.BatchNorm2d(out_planes))


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = _projection(in_planes, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class Bottleneck(nn.Module):
    """conv1x1-BN-ReLU-conv3x3(stride)-BN-ReLU-conv1x1(4x)-BN + shortcut, ReLU."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = _projection(in_planes, out_planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.shortcut is None else self.shortcut(x)))


_BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """A four-stage ResNet with the CIFAR stem (module docstring).

    Args:
        block: "basic" or "bottleneck".
        num_blocks: blocks per stage.
        num_classes: the number of outputs.
        in_channels: input channels.
    """

    def __init__(self, block: str, num_blocks: Sequence[int], num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        block_cls = _BLOCKS[block]
        self.conv1 = nn.Conv2d(in_channels, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        stages: list[nn.Module] = []
        in_planes = 64
        for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), num_blocks)):
            blocks = []
            for i in range(n):
                blocks.append(block_cls(in_planes, planes, 2 if stage > 0 and i == 0 else 1))
                in_planes = planes * block_cls.expansion
            stages.append(nn.Sequential(*blocks))
        self.layers = nn.Sequential(*stages)
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def _factory(name: str, block: str, num_blocks: tuple[int, ...]):
    def factory(*, num_classes: int, in_channels: int = 3, input_shape: tuple[int, ...] | None = None) -> ResNet:
        image_shape(name, input_shape, default=(32, 32))
        return ResNet(block, num_blocks, num_classes, in_channels)

    factory.__name__ = name
    factory.__doc__ = f"{name} ({block} blocks {list(num_blocks)}) with the CIFAR stem."
    return factory


resnet18 = MODELS.register("resnet18")(_factory("resnet18", "basic", (2, 2, 2, 2)))
resnet34 = MODELS.register("resnet34")(_factory("resnet34", "basic", (3, 4, 6, 3)))
resnet50 = MODELS.register("resnet50")(_factory("resnet50", "bottleneck", (3, 4, 6, 3)))
