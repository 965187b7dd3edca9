"""``unet``: a small U-Net for dense (per-pixel) prediction.

Ronneberger et al. 2015, "U-Net: Convolutional Networks for Biomedical Image Segmentation" (arXiv
1505.04597): an encoder of ``depth`` levels, each two 3x3 convolutions and a 2x2 max-pool, doubling the
channels from ``width``; a bottleneck; a decoder that upsamples by a 2x2 transposed convolution, concatenates
the encoder features of the same level and applies two 3x3 convolutions; a 1x1 convolution to
``num_classes`` output channels (1 for binary segmentation / salient-object detection, K for K classes).
Output: logits ``[N, num_classes, H, W]`` at the input resolution.
Where we differ from the paper: padded convolutions (output size = input size, no cropping of the skip
features) and BatchNorm after every convolution, as most reimplementations do; inputs whose sides are not
multiples of 2^depth are zero-padded on the bottom/right and the output cropped back.
Defaults ``width=16``, ``depth=3`` (0.47M parameters): small enough to train on a CPU.

Example:
    >>> import torch
    >>> net = UNet(in_channels=3, num_classes=1)
    >>> net(torch.randn(2, 3, 30, 30)).shape
    torch.Size([2, 1, 30, 30])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.models.registry import MODELS
from caltrain.utils.checks import check_positive_int

__all__ = ["UNet", "unet"]


def _double_conv(in_planes: int, out_planes: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_planes),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_planes, out_planes, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_planes),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """Encoder-decoder with skip connections (module docstring).

    Args:
        in_channels: input channels.
        num_classes: output channels.
        width: channels of the first level (doubled at every level).
        depth: number of down-sampling steps.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 16, depth: int = 3) -> None:
        super().__init__()
        check_positive_int(width, "width")
        self.depth = check_positive_int(depth, "depth")
        widths = [width * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        previous = in_channels
        for w in widths[:-1]:
            self.down.append(_double_conv(previous, w))
            previous = w
        self.bottleneck = _double_conv(widths[-2], widths[-1])
        self.upsample = nn.ModuleList(nn.ConvTranspose2d(w * 2, w, 2, stride=2) for w in reversed(widths[:-1]))
        self.up = nn.ModuleList(_double_conv(w * 2, w) for w in reversed(widths[:-1]))
        self.head = nn.Conv2d(widths[0], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        multiple = 2**self.depth
        x = F.pad(x, (0, -w % multiple, 0, -h % multiple))
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottleneck(x)
        for upsample, block, skip in zip(self.upsample, self.up, reversed(skips)):
            x = block(torch.cat([skip, upsample(x)], dim=1))
        return self.head(x)[..., :h, :w]


@MODELS.register("unet")
def unet(
    *,
    num_classes: int,
    in_channels: int = 3,
    input_shape: tuple[int, ...] | None = None,
    width: int = 16,
    depth: int = 3,
) -> UNet:
    """A small :class:`UNet`; outputs ``[N, num_classes, H, W]``."""
    if input_shape is not None and len(input_shape) != 3:
        raise ValueError(f"input_shape: model 'unet' takes images (C, H, W), got {tuple(input_shape)}")
    return UNet(in_channels, num_classes, width, depth)
