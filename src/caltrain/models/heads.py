"""Heads for your own models: :func:`with_abstention_head` adds the "unknown" output abstention objectives need.

Objectives with an abstention output (``objective.abstention`` set: Socrates, SAT, Deep Gamblers; ``caltrain losses``
marks them) train a model with K + 1 outputs, the last being "unknown". :func:`caltrain.fit` checks the model's
output width on one batch before training and names this helper when it is one short.

Example:
    >>> import torch
    >>> from torch import nn
    >>> model = with_abstention_head(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)))
    >>> model(torch.zeros(2, 4)).shape
    torch.Size([2, 4])
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["AbstentionHead", "with_abstention_head"]


class AbstentionHead(nn.Module):
    """``model``'s K logits followed by one "unknown" logit, computed from them by ``unknown = Linear(K, 1)``.

    The K class logits are unchanged, so a trained K-class model keeps its predictions; the extra logit starts
    at zero (zero weights and bias) and is learned with the rest.
    """

    def __init__(self, model: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.model = model
        self.unknown = nn.Linear(int(num_classes), 1)
        nn.init.zeros_(self.unknown.weight)
        nn.init.zeros_(self.unknown.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        return torch.cat([logits, self.unknown(logits)], dim=1)


def with_abstention_head(model: nn.Module, num_classes: int | None = None) -> nn.Module:
    """``model`` with one more output, the abstention ("unknown") logit, for K + 1-output objectives.

    When ``model`` clearly ends in an ``nn.Linear`` (the last layer of an ``nn.Sequential``, or a last child named
    ``fc`` / ``head`` / ``classifier``) that layer is replaced by one with an extra output row (the K class rows
    copied, the new row zero), so the model stays one module. Otherwise the model is wrapped in :class:`AbstentionHead`, which
    needs ``num_classes`` (K, the model's output width).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    parent, name, layer = _last_linear(model)
    if layer is not None:
        wider = nn.Linear(layer.in_features, layer.out_features + 1, bias=layer.bias is not None,
                          device=layer.weight.device, dtype=layer.weight.dtype)
        with torch.no_grad():
            wider.weight.zero_()
            wider.weight[: layer.out_features].copy_(layer.weight)
            if layer.bias is not None:
                wider.bias.zero_()
                wider.bias[: layer.out_features].copy_(layer.bias)
        setattr(parent, name, wider)
        return model
    if num_classes is None:
        raise ValueError("with_abstention_head: the model does not end in an nn.Linear; pass num_classes=K (its "
                         "output width) to wrap it in AbstentionHead")
    return AbstentionHead(model, num_classes)


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear | None]:
    """The output layer when it is clear: the last child of an ``nn.Sequential`` (recursively), or ``fc`` /
    ``head`` / ``classifier`` when it is the model's last registered child (torchvision's convention)."""
    children = list(model.named_children())
    if not children:
        return model, "", None
    name, last = children[-1]
    if not (isinstance(model, nn.Sequential) or name in ("fc", "head", "classifier")):
        return model, "", None
    if isinstance(last, nn.Linear):
        return model, name, last
    if isinstance(last, nn.Sequential):
        return _last_linear(last)
    return model, "", None
