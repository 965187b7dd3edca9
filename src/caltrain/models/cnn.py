"""``cnn``: a small convolutional network for the embedded image sets (digits 1x8x8, synthetic_image 3x32x32).

Stage i (i = 0..S-1) is conv3x3 -> BatchNorm -> ReLU with ``widths[i]`` channels; a 2x2 max-pool sits
between stages; then global average pooling and a linear layer:

    x -> [conv(w_0, stride=stem_stride) BN ReLU] -> pool -> [conv(w_1) BN ReLU] -> pool -> ... -> GAP -> linear

Defaults ``widths=(32, 64, 128)``, ``stem_stride=1``: on the 8x8 digits the spatial size goes 8 -> 4 -> 2
before pooling. For 32x32 inputs ``stem_stride=2`` quarters the cost of the first stage (what the
benchmark defaults use on CPU). BatchNorm makes a network trained with plain cross-entropy markedly
over-confident once it fits its training set (Guo et al. 2017, arXiv 1706.04599, Sec. 3), which is the
behaviour the embedded sets are meant to show. PyTorch's default initialisation.

Example:
    >>> import torch
    >>> net = SmallCNN(in_channels=1, num_classes=10)
    >>> net(torch.randn(2, 1, 8, 8)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from caltrain.models.registry import MODELS, image_shape
from caltrain.utils.checks import check_positive_int

__all__ = ["SmallCNN", "cnn"]


class SmallCNN(nn.Module):
    """conv-BN-ReLU stages separated by 2x2 max-pooling, global average pooling, a linear classifier.

    Args:
        in_channels: C.
        num_classes: the number of outputs.
        widths: channels of each stage.
        stem_stride: stride of the first convolution.
    """

    def __init__(
        self, in_channels: int, num_classes: int, widths: Sequence[int] = (32, 64, 128), stem_stride: int = 1
    ) -> None:
        super().__init__()
        widths = [check_positive_int(w, "widths") for w in widths]
        if not widths:
            raise ValueError("widths: expected at least one stage, got none")
        stages: list[nn.Module] = []
        previous = in_channels
        for i, width in enumerate(widths):
            if i > 0:
                stages.append(nn.MaxPool2d(2))
            stride = check_positive_int(stem_stride, "stem_stride") if i == 0 else 1
            stages += [
                nn.Conv2d(previous, width, 3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
        self.features = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))


@MODELS.register("cnn")
def cnn(
    *,
    num_classes: int,
    in_channels: int = 3,
    input_shape: tuple[int, ...] | None = None,
    widths: Sequence[int] = (32, 64, 128),
    stem_stride: int = 1,
) -> SmallCNN:
    """A :class:`SmallCNN`; each max-pool halves the size, so inputs need ``2^(len(widths)-1)`` pixels."""
    h, w = image_shape("cnn", input_shape, default=(32, 32))
    smallest = (min(h, w) + stem_stride - 1) // stem_stride >> (len(widths) - 1)
    if smallest < 1:
        raise ValueError(
            f"input_shape: {input_shape} is too small for {len(widths)} stages with stem_stride={stem_stride}"
        )
    return SmallCNN(in_channels, num_classes, widths, stem_stride)
