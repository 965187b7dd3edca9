"""Training objectives behind one protocol: ``names()``, ``create(name, num_classes=..., ...)``, ``functional``."""

from caltrain.losses.base import REDUCTIONS, REQUIREMENTS, Objective, reduce_loss

__all__ = ["Objective", "REDUCTIONS", "REQUIREMENTS", "reduce_loss"]
