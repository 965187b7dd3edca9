"""Models by registry name: ``names()`` and ``create(name, num_classes=..., in_channels=..., **options)``.

Every model is a factory registered in :data:`MODELS` with the keyword-only signature
``(*, num_classes, in_channels, input_shape, **its options)``; its signature is its option schema, so a
mistyped option fails with the list of valid ones. ``num_classes`` is the number of outputs: the trainer
passes K, or K+1 for objectives with an abstention output, or 1 for binary dense prediction.

Example:
    >>> model = create("resnet20", num_classes=10, seed=0)
    >>> sum(p.numel() for p in model.parameters())
    269722
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from caltrain.utils.checks import check_positive_int
from caltrain.utils.registry import Registry

__all__ = ["MODELS", "create", "image_shape", "names", "num_parameters"]

#: name -> factory ``(*, num_classes, in_channels, input_shape, **options) -> nn.Module``.
MODELS: Registry[Callable[..., nn.Module]] = Registry(
    "model", entry_points="caltrain.models", signature="(*, num_classes, in_channels, input_shape, **options)"
)


def names() -> list[str]:
    """Every registered model name, sorted."""
    return MODELS.names()


def create(
    name: str,
    *,
    num_classes: int,
    in_channels: int = 3,
    input_shape: Sequence[int] | None = None,
    seed: int | None = None,
    **options: Any,
) -> nn.Module:
    """Build model ``name`` with ``num_classes`` outputs.

    Args:
        name: a registry name (see :func:`names`).
        num_classes: the number of outputs (K, K+1 with an abstention output, 1 for a binary logit).
        in_channels: input channels of image models (ignored by ``mlp``, which reads ``input_shape``).
        input_shape: ``(C, H, W)`` or ``(D,)``; needed by ``mlp`` and by ``vgg16_bn`` for inputs that are
            not 32x32; when given with ``C``, it overrides ``in_channels``.
        seed: if given, the initial weights are a pure function of it (the global RNG is left untouched);
            otherwise they come from the global torch RNG as usual.
        **options: the model's own options (``caltrain models --json`` lists them with their defaults).

    Raises:
        UnknownNameError: ``name`` is not registered (the message lists the valid names).
        TypeError: an option the model does not take (the message lists the valid ones).
    """
    MODELS.check_kwargs(name, options, reserved=("num_classes", "in_channels", "input_shape"))
    check_positive_int(num_classes, "num_classes")
    shape = None if input_shape is None else tuple(check_positive_int(s, "input_shape") for s in input_shape)
    if shape is not None and len(shape) == 3:
        in_channels = shape[0]
    check_positive_int(in_channels, "in_channels")
    passed = ("num_classes", "in_channels", "input_shape")
    kwargs = dict(num_classes=num_classes, in_channels=in_channels, input_shape=shape, **options)
    MODELS.check_call(name, kwargs, passed=passed)  # a plugin written for another signature: say what is passed
    if seed is None:
        return MODELS.call(name, passed=passed, returns=nn.Module, **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MODELS.call(name, passed=passed, returns=nn.Module, **kwargs)


def image_shape(name: str, input_shape: tuple[int, ...] | None, default: tuple[int, int]) -> tuple[int, int]:
    """``(H, W)`` of an image model's ``input_shape`` (``default`` when None); raises for feature shapes."""
    if input_shape is None:
        return default
    if len(input_shape) != 3:
        raise ValueError(f"input_shape: model {name!r} takes images (C, H, W), got {tuple(input_shape)}")
    return input_shape[1], input_shape[2]


def num_parameters(model: nn.Module) -> int:
    """The number of parameters (trainable or not) of ``model``."""
    return sum(p.numel() for p in model.parameters())
