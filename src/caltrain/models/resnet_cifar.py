"""``resnet20``, ``resnet32``, ``resnet56``, ``resnet110``: the CIFAR ResNets of He et al. 2016.

"Deep Residual Learning for Image Recognition" (arXiv 1512.03385), Sec. 4.2: a 3x3 convolution with 16
filters, then three stages of n basic blocks (two 3x3 convolutions each) with 16, 32 and 64 filters on
32x32, 16x16 and 8x8 maps (the first block of stages 2 and 3 has stride 2), global average pooling and a
linear layer: 6n + 2 layers, n = 3, 5, 9, 18 for depths 20, 32, 56, 110.

Shortcuts: **option A** by default, as the paper uses on CIFAR: the identity, and where the shape changes
the input subsampled with stride 2 and zero-padded with the missing channels (parameter-free), which gives
the paper's parameter counts (0.27M, 0.46M, 0.85M, 1.7M; exactly 269,722 ... 1,727,962 for 10 classes).
``shortcut="B"`` uses a 1x1 convolution with BatchNorm where the shape changes (the projection shortcut of
the paper's ImageNet models; 2,752 more parameters, e.g. 272,474 for ResNet-20).
Reading: the paper does not say where the zero channels go; we pad half on each side, as the widely used
reimplementation by Y. Idelbayev does (the choice is a fixed channel permutation, equivalent for training).
Convolution and linear weights are initialised He-normal (fan in), biases zero ("as in [13]" in the paper).

Note that Mukhoti et al. 2020 (focal-loss calibration code) call a different network "ResNet-110": an
ImageNet-style bottleneck ResNet with [3, 4, 26, 3] blocks; this is He et al.'s CIFAR ResNet-110.

Example:
    >>> import torch
    >>> net = CifarResNet(depth=20, num_classes=10)
    >>> net(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.models.registry import MODELS, image_shape
from caltrain.utils.checks import check_choice

__all__ = ["CifarBasicBlock", "CifarResNet", "resnet20", "resnet32", "resnet56", "resnet110"]


class CifarBasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the shortcut, then ReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int, shortcut: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad_channels = 0
        self.projection: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            if shortcut == "A":
                self.pad_channels = planes - in_planes
            else:
                self.projection = nn.Sequential(
                    nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes)
                )
        self.stride = stride

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.projection is not None:
            return self.projection(x)
        if self.pad_channels or self.stride != 1:
            half = self.pad_channels // 2
            return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, half, self.pad_channels - half))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """The 6n+2-layer CIFAR ResNet (module docstring).

    Args:
        depth: 6n + 2 (20, 32, 44, 56, 110, ...).
        num_classes: the number of outputs.
        in_channels: input channels.
        shortcut: "A" (zero-padding identity, default) or "B" (1x1 projection).
    """

    def __init__(self, depth: int, num_classes: int, in_channels: int = 3, shortcut: str = "A") -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth: expected 6n + 2 (20, 32, 44, 56, 110, ...), got {depth}")
        check_choice(shortcut, "shortcut", ("A", "B"))
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks: list[nn.Module] = []
        in_planes = 16
        for stage, planes in enumerate((16, 32, 64)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(CifarBasicBlock(in_planes, planes, stride, shortcut))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, num_classes)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.blocks(out)
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def _factory(depth: int):
    def factory(
        *, num_classes: int, in_channels: int = 3, input_shape: tuple[int, ...] | None = None, shortcut: str = "A"
    ) -> CifarResNet:
        image_shape(f"resnet{depth}", input_shape, default=(32, 32))
        return CifarResNet(depth, num_classes, in_channels, shortcut)

    factory.__name__ = f"resnet{depth}"
    factory.__doc__ = f"He et al.'s CIFAR ResNet-{depth} (n = {(depth - 2) // 6}); option A shortcuts by default."
    return factory


resnet20 = MODELS.register("resnet20")(_factory(20))
resnet32 = MODELS.register("resnet32")(_factory(32))
resnet56 = MODELS.register("resnet56")(_factory(56))
resnet110 = MODELS.register("resnet110")(_factory(110))
