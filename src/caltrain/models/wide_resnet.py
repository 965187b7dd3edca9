"""``wrn28_10`` and ``wrn26_10``: the two wide ResNets the calibration literature trains on CIFAR.

``wrn28_10``: Zagoruyko & Komodakis 2016, "Wide Residual Networks" (arXiv 1605.07146). Pre-activation
basic blocks BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3 added to the shortcut (the identity, or a 1x1
convolution where the shape changes); a 3x3 stem convolution with 16 filters; three stages of
n = (depth - 4) / 6 blocks with 16k, 32k, 64k channels (k = 10); final BN-ReLU, global average pooling and a
linear layer: 36.5M parameters. As in the authors' code, the first block of a stage applies its BN-ReLU to
the input once and feeds the result to both branches. Dropout between the convolutions is 0 by default
(the paper's main CIFAR results use 0.3: ``dropout=0.3``). Initialisation as in the authors' PyTorch code:
convolutions normal with std sqrt(2 / (k^2 * out_channels)), BatchNorm 1 / 0, linear bias 0.

``wrn26_10``: the post-activation variant of Mukhoti et al. 2020, "Calibrating Deep Neural Networks using
Focal Loss" (arXiv 2002.09437, code ``torrvision/focal_calibration``), whose CIFAR tables report
"Wide-ResNet-26-10": a 3x3 stem with 16 filters followed by BN-ReLU, three stages of n = (depth - 2) / 6
post-activation basic blocks (conv-BN-ReLU-conv-BN + shortcut, then ReLU; 1x1 convolution + BN shortcut
where the shape changes) with 160, 320, 640 channels, global average pooling and a linear layer. Same
convolution initialisation as above; linear layer PyTorch default.

Both have n = 4 blocks per stage; the depths differ in whether the shortcut convolutions are counted.

Example:
    >>> import torch
    >>> net = PreActWideResNet(depth=10, widen_factor=1, num_classes=10)
    >>> net(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.models.registry import MODELS, image_shape
from caltrain.models.resnet import BasicBlock
from caltrain.utils.checks import check_number, check_positive_int

__all__ = ["PostActWideResNet", "PreActBlock", "PreActWideResNet", "wrn26_10", "wrn28_10"]


def _init_conv_fan_out(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-dropout-conv3x3 + shortcut (identity, or 1x1 conv of the activated input)."""

    def __init__(self, in_planes: int, planes: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.dropout = dropout
        self.projection = (
            None if in_planes == planes and stride == 1 else nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = F.relu(self.bn1(x))
        out = F.relu(self.bn2(self.conv1(activated)))
        out = F.dropout(out, p=self.dropout, training=self.training)
        out = self.conv2(out)
        return out + (x if self.projection is None else self.projection(activated))


class PreActWideResNet(nn.Module):
    """WRN-depth-k of Zagoruyko & Komodakis (module docstring).

    Args:
        depth: 6n + 4 (28 for n = 4).
        widen_factor: k.
        num_classes: the number of outputs.
        in_channels: input channels.
        dropout: dropout probability between the two convolutions of a block.
    """

    def __init__(
        self, depth: int, widen_factor: int, num_classes: int, in_channels: int = 3, dropout: float = 0.0
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"depth: expected 6n + 4 (16, 22, 28, 40, ...), got {depth}")
        check_positive_int(widen_factor, "widen_factor")
        check_number(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        n = (depth - 4) // 6
        widths = [16 * widen_factor, 32 * widen_factor, 64 * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        blocks: list[nn.Module] = []
        in_planes = 16
        for stage, planes in enumerate(widths):
            for i in range(n):
                blocks.append(PreActBlock(in_planes, planes, 2 if stage > 0 and i == 0 else 1, dropout))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(in_planes)
        self.fc = nn.Linear(in_planes, num_classes)
        _init_conv_fan_out(self)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.conv1(x))
        out = F.relu(self.bn(out))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


class PostActWideResNet(nn.Module):
    """Mukhoti et al.'s Wide-ResNet-depth-k (module docstring).

    Args:
        depth: 6n + 2 (26 for n = 4).
        widen_factor: k.
        num_classes: the number of outputs.
        in_channels: input channels.
    """

    def __init__(self, depth: int, widen_factor: int, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"depth: expected 6n + 2 (20, 26, 32, ...), got {depth}")
        check_positive_int(widen_factor, "widen_factor")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        blocks: list[nn.Module] = []
        in_planes = 16
        for stage, planes in enumerate((16 * widen_factor, 32 * widen_factor, 64 * widen_factor)):
            for i in range(n):
                blocks.append(BasicBlock(in_planes, planes, 2 if stage > 0 and i == 0 else 1))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_planes, num_classes)
        _init_conv_fan_out(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.blocks(out)
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


@MODELS.register("wrn28_10")
def wrn28_10(
    *, num_classes: int, in_channels: int = 3, input_shape: tuple[int, ...] | None = None, dropout: float = 0.0
) -> PreActWideResNet:
    """WRN-28-10 (Zagoruyko & Komodakis 2016), 36.5M parameters."""
    image_shape("wrn28_10", input_shape, default=(32, 32))
    return PreActWideResNet(28, 10, num_classes, in_channels, dropout)


@MODELS.register("wrn26_10")
def wrn26_10(
    *, num_classes: int, in_channels: int = 3, input_shape: tuple[int, ...] | None = None
) -> PostActWideResNet:
    """Wide-ResNet-26-10 of Mukhoti et al. 2020's calibration experiments."""
    image_shape("wrn26_10", input_shape, default=(32, 32))
    return PostActWideResNet(26, 10, num_classes, in_channels)
