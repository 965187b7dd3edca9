"""Training objectives behind one protocol: ``names()``, ``create(name, num_classes=..., ...)``, ``functional``."""

from caltrain.losses.base import REDUCTIONS, REQUIREMENTS, Objective, reduce_loss
from caltrain.losses.registry import LOSSES, create, names, register

# --- objective modules (importing registers them) ---
# baselines and simple seeds (one file per objective family):
from caltrain.losses import functional
from caltrain.losses.base import LogitObjective
from caltrain.losses.brier import Brier
from caltrain.losses.ce import CrossEntropy
from caltrain.losses.confidence_penalty import ConfidencePenalty
from caltrain.losses.dca import DCA
from caltrain.losses.dece import DECE
from caltrain.losses.focal import FLSD53, DualFocal, Focal
from caltrain.losses.gence import GenCE
from caltrain.losses.label_smoothing import LabelSmoothing
from caltrain.losses.logitnorm import LogitNorm
from caltrain.losses.mbls import MbLS
from caltrain.losses.mdca import MDCA
from caltrain.losses.mmce import MMCE
from caltrain.losses.poly1 import Poly1

_BASELINES = [
    "Brier", "ConfidencePenalty", "CrossEntropy", "DCA", "DECE", "DualFocal", "FLSD53", "Focal", "GenCE",
    "LabelSmoothing", "LogitNorm", "LogitObjective", "MDCA", "MMCE", "MbLS", "Poly1", "functional",
]

# stateful / model-aware objectives:
from caltrain.losses.adafocal import AdaFocalLoss  # noqa: E402
from caltrain.losses.calmo import CalMOLoss  # noqa: E402
from caltrain.losses.cals import CALSLoss  # noqa: E402
from caltrain.losses.deep_gamblers import DeepGamblersLoss  # noqa: E402
from caltrain.losses.pgd import pgd_attack  # noqa: E402
from caltrain.losses.self_adaptive_training import SelfAdaptiveTrainingLoss  # noqa: E402
from caltrain.losses.socrates import SocratesLoss  # noqa: E402

_STATEFUL = ["AdaFocalLoss", "CALSLoss", "CalMOLoss", "DeepGamblersLoss", "SelfAdaptiveTrainingLoss", "SocratesLoss",
             "pgd_attack"]

__all__ = [
    "LOSSES", "Objective", "REDUCTIONS", "REQUIREMENTS", "create", "names", "reduce_loss", "register",
    *_BASELINES, *_STATEFUL,
]
