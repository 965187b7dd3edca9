"""Training objectives behind one protocol: ``names()``, ``create(name, num_classes=..., ...)``, ``functional``."""

from caltrain.losses.base import REDUCTIONS, REQUIREMENTS, Objective, reduce_loss
from caltrain.losses.registry import LOSSES, create, names, register

# --- objective modules (importing registers them) ---
# baselines and simple seeds (one file per objective family):

# stateful / model-aware objectives:
from caltrain.losses import deep_gamblers, self_adaptive_training, socrates  # noqa: F401,E402

__all__ = ["LOSSES", "Objective", "REDUCTIONS", "REQUIREMENTS", "create", "names", "reduce_loss", "register"]
