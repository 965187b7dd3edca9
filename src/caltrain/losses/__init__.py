"""Training objectives behind one protocol: ``names()``, ``create(name, num_classes=..., ...)``, ``functional``.

Naming rule (one for every objective):

- the **registry name** is the short name the papers use (what configs and ``caltrain losses`` show);
- the **file** is the method's full name in snake_case (acronyms spelled out, no "loss" suffix);
- the **class** is the same full name in CamelCase; the pure function keeps the registry name
  (``caltrain.losses.functional.<registry name>`` for the objectives that need only logits and labels).

Former class names (``MbLS``, ``SocratesLoss``, ...) stay importable as aliases.

=================  =================================================  ========================================
registry name      file (``caltrain.losses.<file>``)                  class (former name)
=================  =================================================  ========================================
``adafocal``       ``adaptive_focal``                                 ``AdaptiveFocal`` (``AdaFocalLoss``)
``aslp``           ``adaptive_stochastic_label_perturbation``         ``AdaptiveStochasticLabelPerturbation``
                                                                      (``ASLP``)
``bce``            ``binary_cross_entropy``                           ``BinaryCrossEntropy``
``bce_ls``         ``self_calibrating_binary_cross_entropy`` (preset) ``SelfCalibratingBinaryCrossEntropy``,
                                                                      alpha = 1, beta = smoothing / 2
``brier``          ``brier_score``                                    ``BrierScore`` (``Brier``)
``calmo``          ``calmo`` (the paper names it only CalMO)          ``CalMO`` (``CalMOLoss``)
``calmo_flat``     ``calmo`` (ablation factory)                       ``CalMO`` with lambda_r = 0
``calmo_robust``   ``calmo`` (ablation factory)                       ``CalMO`` with lambda_s = 0
``cals``           ``class_adaptive_label_smoothing``                 ``ClassAdaptiveLabelSmoothing`` (``CALSLoss``)
``ce``             ``cross_entropy``                                  ``CrossEntropy``
``dca``            ``difference_confidence_accuracy``                 ``DifferenceConfidenceAccuracy`` (``DCA``)
``dece``           ``differentiable_expected_calibration_error``      ``DifferentiableExpectedCalibrationError``
                                                                      (``DECE``)
``deep_gamblers``  ``deep_gamblers``                                  ``DeepGamblers`` (``DeepGamblersLoss``)
``disturb_label``  ``self_calibrating_binary_cross_entropy`` (preset) ``SelfCalibratingBinaryCrossEntropy``,
                                                                      beta = 1
``dual_focal``     ``dual_focal``                                     ``DualFocal``
``ecp``            ``confidence_penalty``                             ``ConfidencePenalty``
``flsd53``         ``sample_dependent_focal``                         ``SampleDependentFocal`` (``FLSD53``)
``focal``          ``focal``                                          ``Focal``
``gence``          ``generative_cross_entropy``                       ``GenerativeCrossEntropy`` (``GenCE``)
``logitnorm``      ``logit_normalization``                            ``LogitNormalization`` (``LogitNorm``)
``ls``             ``label_smoothing``                                ``LabelSmoothing``
``mbls``           ``margin_based_label_smoothing``                   ``MarginBasedLabelSmoothing`` (``MbLS``)
``mdca``           ``multiclass_difference_confidence_accuracy``      ``MulticlassDifferenceConfidenceAccuracy``
                                                                      (``MDCA``)
``mmce``           ``maximum_mean_calibration_error``                 ``MaximumMeanCalibrationError`` (``MMCE``)
``poly1``          ``poly1``                                          ``Poly1``
``sc_bce``         ``self_calibrating_binary_cross_entropy``          ``SelfCalibratingBinaryCrossEntropy``
                                                                      (``SelfCalibratingBCE``)
``sat``            ``self_adaptive_training``                         ``SelfAdaptiveTraining``
                                                                      (``SelfAdaptiveTrainingLoss``)
``socrates``       ``socrates``                                       ``Socrates`` (``SocratesLoss``)
=================  =================================================  ========================================

Dense binary objectives (one logit per pixel: ``aslp``, ``bce``, ``bce_ls``, ``disturb_label``, ``sc_bce``; and
``focal`` on [N, 1, H, W] logits) declare ``tasks = {"dense_binary"}`` (base: ``DenseBinaryObjective``).

Other modules: :mod:`~caltrain.losses.base` (the protocol: ``Objective``, ``LogitObjective``,
``DenseBinaryObjective``),
:mod:`~caltrain.losses.registry`, :mod:`~caltrain.losses.functional` (the pure functions by registry name),
:mod:`~caltrain.losses.abstention_base` (``AbstentionObjective``, ``AdaptiveTargetObjective``: the K+1 objectives'
bases), :mod:`~caltrain.losses.pgd` (the L-inf PGD step shared with :mod:`caltrain.analysis.robust_margins`) and
the private ``_tensors`` (input checks, the half-precision upcast, log(1 - p_y), logit margins).

Example:
    >>> from caltrain import losses
    >>> objective = losses.create("mbls", num_classes=10)
    >>> type(objective).__name__, objective.registry_name, "2111.15430" in objective.paper
    ('MarginBasedLabelSmoothing', 'mbls', True)
"""

from caltrain.losses.base import (
    REDUCTIONS, REQUIREMENTS, TASKS, DenseBinaryObjective, LogitObjective, Objective, reduce_loss,
)
from caltrain.losses.registry import LOSSES, create, names, register, tasks

# Importing the objective modules registers them (``functional`` imports every logit-only one).
from caltrain.losses import functional
from caltrain.losses.abstention_base import AbstentionObjective, AdaptiveTargetObjective
from caltrain.losses.adaptive_focal import AdaFocalLoss, AdaptiveFocal
from caltrain.losses.adaptive_stochastic_label_perturbation import ASLP, AdaptiveStochasticLabelPerturbation
from caltrain.losses.binary_cross_entropy import BinaryCrossEntropy
from caltrain.losses.brier_score import Brier, BrierScore
from caltrain.losses.calmo import CalMO, CalMOLoss
from caltrain.losses.class_adaptive_label_smoothing import CALSLoss, ClassAdaptiveLabelSmoothing
from caltrain.losses.confidence_penalty import ConfidencePenalty
from caltrain.losses.cross_entropy import CrossEntropy
from caltrain.losses.deep_gamblers import DeepGamblers, DeepGamblersLoss
from caltrain.losses.difference_confidence_accuracy import DCA, DifferenceConfidenceAccuracy
from caltrain.losses.differentiable_expected_calibration_error import DECE, DifferentiableExpectedCalibrationError
from caltrain.losses.dual_focal import DualFocal
from caltrain.losses.focal import Focal
from caltrain.losses.generative_cross_entropy import GenCE, GenerativeCrossEntropy
from caltrain.losses.label_smoothing import LabelSmoothing
from caltrain.losses.logit_normalization import LogitNorm, LogitNormalization
from caltrain.losses.margin_based_label_smoothing import MarginBasedLabelSmoothing, MbLS
from caltrain.losses.maximum_mean_calibration_error import MMCE, MaximumMeanCalibrationError
from caltrain.losses.multiclass_difference_confidence_accuracy import MDCA, MulticlassDifferenceConfidenceAccuracy
from caltrain.losses.pgd import pgd_attack
from caltrain.losses.poly1 import Poly1
from caltrain.losses.sample_dependent_focal import FLSD53, SampleDependentFocal
from caltrain.losses.self_adaptive_training import SelfAdaptiveTraining, SelfAdaptiveTrainingLoss
from caltrain.losses.self_calibrating_binary_cross_entropy import SelfCalibratingBCE, SelfCalibratingBinaryCrossEntropy
from caltrain.losses.socrates import Socrates, SocratesLoss

_OBJECTIVES = [
    "AdaptiveFocal", "AdaptiveStochasticLabelPerturbation", "BinaryCrossEntropy", "BrierScore", "CalMO", "ClassAdaptiveLabelSmoothing", "ConfidencePenalty", "CrossEntropy",
    "DeepGamblers", "DifferenceConfidenceAccuracy", "DifferentiableExpectedCalibrationError", "DualFocal", "Focal",
    "GenerativeCrossEntropy", "LabelSmoothing", "LogitNormalization", "MarginBasedLabelSmoothing",
    "MaximumMeanCalibrationError", "MulticlassDifferenceConfidenceAccuracy", "Poly1", "SampleDependentFocal",
    "SelfAdaptiveTraining", "SelfCalibratingBinaryCrossEntropy", "Socrates",
]
#: Former class names, kept as aliases.
_FORMER = [
    "ASLP", "AdaFocalLoss", "Brier", "CALSLoss", "CalMOLoss", "DCA", "DECE", "DeepGamblersLoss", "FLSD53", "GenCE",
    "LogitNorm", "MDCA", "MMCE", "MbLS", "SelfAdaptiveTrainingLoss", "SelfCalibratingBCE",
    "SocratesLoss",
]

__all__ = [
    "AbstentionObjective", "AdaptiveTargetObjective", "DenseBinaryObjective", "LOSSES", "LogitObjective",
    "Objective", "REDUCTIONS", "REQUIREMENTS", "TASKS", "create", "functional", "names", "pgd_attack", "reduce_loss",
    "register", "tasks",
    *_OBJECTIVES, *_FORMER,
]
