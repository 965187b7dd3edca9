"""``mlp``: a multilayer perceptron on flattened inputs (feature data, or images flattened).

    h_0 = flatten(x),   h_l = act(W_l h_{l-1} + b_l) (then dropout),   logits = W_L h_{L-1} + b_L

with ``hidden`` the widths of the hidden layers (default two of 256) and ``act`` one of relu, tanh, gelu.
PyTorch's default initialisation. The CalMO coupling study (Morosini et al., arXiv 2604.20614) uses
``hidden=(200, 200), activation="tanh"``.

Example:
    >>> import torch
    >>> net = MLP(in_features=32, num_classes=10)
    >>> net(torch.randn(4, 32)).shape
    torch.Size([4, 10])
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from caltrain.models.registry import MODELS
from caltrain.utils.checks import check_choice, check_number, check_positive_int

__all__ = ["ACTIVATIONS", "MLP", "mlp"]

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLP(nn.Module):
    """Fully connected layers with an activation (and optional dropout) between them.

    Args:
        in_features: D, the flattened input size.
        num_classes: the number of outputs.
        hidden: hidden layer widths.
        activation: "relu", "tanh" or "gelu".
        dropout: dropout probability after every hidden activation (0 disables it).
    """

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden: Sequence[int] = (256, 256),
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_choice(activation, "activation", ACTIVATIONS)
        check_number(dropout, "dropout", low=0.0, high=1.0, high_inclusive=False)
        widths = [check_positive_int(in_features, "in_features"), *(check_positive_int(h, "hidden") for h in hidden)]
        layers: list[nn.Module] = []
        for a, b in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(a, b), ACTIVATIONS[activation]()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(widths[-1], check_positive_int(num_classes, "num_classes")))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x.flatten(1))


@MODELS.register("mlp")
def mlp(
    *,
    num_classes: int,
    in_channels: int = 3,
    input_shape: tuple[int, ...] | None = None,
    hidden: Sequence[int] = (256, 256),
    activation: str = "relu",
    dropout: float = 0.0,
) -> MLP:
    """An :class:`MLP` over ``prod(input_shape)`` inputs (``input_shape`` is required)."""
    if input_shape is None:
        raise ValueError("input_shape: model 'mlp' needs the input shape, e.g. (D,) or (C, H, W); got None")
    return MLP(math.prod(input_shape), num_classes, hidden, activation, dropout)
