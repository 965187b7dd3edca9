"""Training objectives behind one protocol: ``names()``, ``create(name, num_classes=..., ...)``, ``functional``."""

from caltrain.losses.base import REDUCTIONS, REQUIREMENTS, Objective, reduce_loss
from caltrain.losses.registry import LOSSES, create, names, register

# --- objective modules (importing registers them) ---
# baselines and simple seeds (one file per objective family):

# stateful / model-aware objectives:

__all__ = ["LOSSES", "Objective", "REDUCTIONS", "REQUIREMENTS", "create", "names", "reduce_loss", "register"]
