"""``vgg16_bn``: the VGG-16 of the selective-classification papers (Deep Gamblers, Self-Adaptive Training).

Simonyan & Zisserman's configuration D (arXiv 1409.1556) as adapted to CIFAR-sized inputs in the code of
Deep Gamblers (Liu et al. 2019, arXiv 1907.00208; code ``Z-T-WANG/NIPS2019DeepGamblers``), reused by
Self-Adaptive Training's selective-classification experiments (Huang et al. 2020, arXiv 2002.10319) and by
the Socrates Loss paper's VGG16-BN:

- 13 convolutions 3x3 (with bias), each followed by ReLU and then BatchNorm (this order, which the authors
  chose "to match the model of the baseline"), with channel dropout (``Dropout2d``) after the convolutions
  that are not followed by a max-pool: 0.3 after the first, 0.4 after the others, and 0.5 after the last
  max-pool; channels 64, 64 | 128, 128 | 256 x 3 | 512 x 3 | 512 x 3, a 2x2 max-pool closing each group;
- classifier: Linear(512 * (H/32) * (W/32), 512) - ReLU - BatchNorm1d - Dropout(0.5) - Linear(512, outputs);
  the authors' code covers 32x32 (512 inputs) and 64x64 (2048) inputs; we compute the size from
  ``input_shape`` (default 32x32).

Initialisation as in that code: convolutions normal with std sqrt(2 / (9 * out_channels)) and zero bias,
BatchNorm 1 / 0, linear layers normal with std 0.01 and zero bias.
Where we differ: the authors' classifier applies ``Dropout2d`` to the flat [N, 512] features, which PyTorch
now deprecates for 2-D inputs and which, for them, drops single elements; we use ``Dropout`` (the same
computation, without the deprecation warning).

Example:
    >>> import torch
    >>> net = SelectiveVGG16(num_classes=11).eval()
    >>> net(torch.randn(2, 3, 32, 32)).shape
    torch.Size([2, 11])
"""

from __future__ import annotations

import math

import torch
from torch import nn

from caltrain.models.registry import MODELS, image_shape

__all__ = ["SelectiveVGG16", "VGG16_CONFIG", "vgg16_bn"]

#: Channels (int), 2x2 max-pool ("M") and Dropout2d probabilities (float), in order.
VGG16_CONFIG: tuple[int | float | str, ...] = (
    64, 0.3, 64, "M",
    128, 0.4, 128, "M",
    256, 0.4, 256, 0.4, 256, "M",
    512, 0.4, 512, 0.4, 512, "M",
    512, 0.4, 512, 0.4, 512, "M", 0.5,
)  # fmt: skip


class SelectiveVGG16(nn.Module):
    """VGG-16 with BatchNorm and dropout (module docstring).

    Args:
        num_classes: the number of outputs (K + 1 for an abstention output).
        in_channels: input channels.
        input_size: ``(H, W)``, multiples of 32.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, input_size: tuple[int, int] = (32, 32)) -> None:
        super().__init__()
        h, w = input_size
        if h % 32 or w % 32:
            raise ValueError(f"input_shape: vgg16_bn needs height and width that are multiples of 32, got {input_size}")
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG16_CONFIG:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            elif isinstance(item, float):
                layers.append(nn.Dropout2d(item))
            else:
                width = int(item)
                layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(inplace=True), nn.BatchNorm2d(width)]
                channels = width
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(
            nn.Linear(512 * (h // 32) * (w // 32), 512),
            nn.ReLU(inplace=True),
            nn.BatchNorm1d(512),
            nn.Dropout(0.5),
            nn.Linear(512, num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels)))
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


@MODELS.register("vgg16_bn")
def vgg16_bn(*, num_classes: int, in_channels: int = 3, input_shape: tuple[int, ...] | None = None) -> SelectiveVGG16:
    """The selective-classification VGG16-BN (Deep Gamblers / SAT code); 32x32 inputs unless ``input_shape``."""
    return SelectiveVGG16(num_classes, in_channels, image_shape("vgg16_bn", input_shape, default=(32, 32)))
