"""``resnet_fpn``: a ResNet-18/34 encoder with a small FPN-style decoder for dense (per-pixel) prediction.

Encoder: :class:`caltrain.models.resnet.ResNet` (basic blocks, [2, 2, 2, 2] or [3, 4, 6, 3]) without its
pooling and linear layer; its four stages give features at strides s, 2s, 4s and 8s, where s is 1 with the
CIFAR stem (``stem="cifar"``, a 3x3 stride-1 convolution, for small inputs such as 32x32) and 4 with the
ImageNet stem (``stem="imagenet"``: 7x7 stride-2 convolution, BatchNorm, ReLU, 3x3 stride-2 max-pool, for
inputs of 224x224 and more).
Decoder (Lin et al. 2017, "Feature Pyramid Networks for Object Detection", arXiv 1612.03144, the top-down
pathway of its Sec. 3): a 1x1 lateral convolution of every stage to ``width`` channels; from the coarsest
level down, the running map is upsampled (nearest, as in the paper) to the next level's size and added to
its lateral; a 3x3 convolution + BatchNorm + ReLU smooths the finest sum; a 1x1 convolution gives
``num_classes`` logits, bilinearly upsampled to the input size when the stem downsampled.
Output: ``[N, num_classes, H, W]`` logits at the input resolution (``num_classes=1``: one binary logit per
pixel). Reading: a semantic-segmentation FPN head (Kirillov et al. 2019's panoptic FPN) merges every level;
merging the top-down sum at the finest level only is the smaller variant, enough for binary masks.

Example:
    >>> import torch
    >>> net = resnet_fpn(num_classes=1, depth=18)
    >>> net(torch.randn(2, 3, 30, 30)).shape
    torch.Size([2, 1, 30, 30])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from caltrain.models.registry import MODELS
from caltrain.models.resnet import ResNet
from caltrain.utils.checks import check_choice, check_positive_int

__all__ = ["ResNetFPN", "resnet_fpn"]

_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class ResNetFPN(nn.Module):
    """ResNet encoder + FPN top-down decoder (module docstring).

    Args:
        num_classes: output channels (1 for a binary mask).
        in_channels: input channels.
        depth: 18 or 34.
        width: channels of the decoder.
        stem: ``"cifar"`` (stride 1) or ``"imagenet"`` (stride 4).
    """

    def __init__(
        self, num_classes: int, in_channels: int = 3, depth: int = 18, width: int = 64, stem: str = "cifar"
    ) -> None:
        super().__init__()
        check_choice(depth, "depth", tuple(_DEPTHS))
        check_choice(stem, "stem", ("cifar", "imagenet"))
        check_positive_int(width, "width")
        encoder = ResNet("basic", _DEPTHS[depth], num_classes=1, in_channels=in_channels)
        del encoder.fc
        if stem == "imagenet":
            encoder.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.stem = stem
        self.encoder = encoder
        self.lateral = nn.ModuleList(nn.Conv2d(c, width, 1) for c in (64, 128, 256, 512))
        self.smooth = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        enc = self.encoder
        out = F.relu(enc.bn1(enc.conv1(x)))
        if self.stem == "imagenet":
            out = F.max_pool2d(out, 3, stride=2, padding=1)
        features = []
        for stage in enc.layers:
            out = stage(out)
            features.append(out)
        top = self.lateral[3](features[3])
        for level in (2, 1, 0):
            lateral = self.lateral[level](features[level])
            top = lateral + F.interpolate(top, size=lateral.shape[-2:], mode="nearest")
        logits = self.head(self.smooth(top))
        if logits.shape[-2:] != size:
            logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        return logits


@MODELS.register("resnet_fpn")
def resnet_fpn(
    *,
    num_classes: int,
    in_channels: int = 3,
    input_shape: tuple[int, ...] | None = None,
    depth: int = 18,
    width: int = 64,
    stem: str = "cifar",
) -> ResNetFPN:
    """A :class:`ResNetFPN`; outputs ``[N, num_classes, H, W]`` at the input resolution."""
    if input_shape is not None and len(input_shape) != 3:
        raise ValueError(f"input_shape: model 'resnet_fpn' takes images (C, H, W), got {tuple(input_shape)}")
    return ResNetFPN(num_classes, in_channels, depth, width, stem)
