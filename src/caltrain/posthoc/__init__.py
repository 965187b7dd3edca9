"""Post-hoc calibrators on cached logits: ``names()``, ``create(name, **options)``, ``load(path)``.

One scikit-learn style protocol (:mod:`caltrain.posthoc.base`): ``fit(logits, labels) -> self``,
``predict_proba(logits)``, ``transform(logits)`` for logit maps, fitted attributes ending in ``_``, ``params_``,
``state_dict()``/``load_state_dict()``, ``save(path)``/``load(path)`` (small JSON files).

Registry names: ``ts``, ``ts-grid-ece``, ``ats`` (a reconstruction), ``vector``, ``matrix``, ``dirichlet``,
``ets``, ``histogram``, ``isotonic``, and for binary outputs ``platt`` and ``beta``.

:func:`compare` fits several calibrators on validation logits and scores each on the test logits (the trainer's
end of run, ``caltrain calibrate``); :meth:`PosthocComparison.save` writes them into a run directory.

Every calibrator is also a scikit-learn estimator on logits (``clone``, ``get_params``/``set_params``, a
``Pipeline``'s last step; NumPy in, NumPy out). :class:`CalibratedClassifier` calibrates a scikit-learn
classifier's scores (``cv="prefit"`` or a held-out fraction); :class:`CalibratedModel` wraps a PyTorch model and
a calibrator into one ``nn.Module`` fitted on a validation ``DataLoader``.
"""

from caltrain.posthoc.base import Calibrator, NotALogitMapError, NotFittedError
from caltrain.posthoc.registry import CALIBRATORS, create, load, names, register

# --- calibrator modules (importing registers them) ---
from caltrain.posthoc.temperature import (  # noqa: E402
    GridECETemperatureScaling,
    TemperatureScaling,
    fit_temperature,
    temperature_nll,
)
from caltrain.posthoc.ats import AdaptiveTemperatureScaling  # noqa: E402
from caltrain.posthoc.linear import (  # noqa: E402
    DirichletCalibration,
    MatrixScaling,
    VectorScaling,
    fit_linear_calibration,
    linear_calibration_loss,
)
from caltrain.posthoc.ets import EnsembleTemperatureScaling  # noqa: E402
from caltrain.posthoc.histogram import HistogramBinning  # noqa: E402
from caltrain.posthoc.isotonic import IsotonicCalibration  # noqa: E402
from caltrain.posthoc.binary import BetaCalibration, PlattScaling, fit_logistic  # noqa: E402
from caltrain.posthoc.compare import RUN_ABSTENTION, PosthocComparison, compare  # noqa: E402
from caltrain.posthoc.model import CalibratedModel  # noqa: E402
from caltrain.posthoc.classifier import CalibratedClassifier  # noqa: E402

__all__ = [
    "AdaptiveTemperatureScaling",
    "BetaCalibration",
    "CalibratedClassifier",
    "CalibratedModel",
    "CALIBRATORS",
    "Calibrator",
    "DirichletCalibration",
    "EnsembleTemperatureScaling",
    "GridECETemperatureScaling",
    "HistogramBinning",
    "IsotonicCalibration",
    "MatrixScaling",
    "NotALogitMapError",
    "NotFittedError",
    "PlattScaling",
    "PosthocComparison",
    "RUN_ABSTENTION",
    "TemperatureScaling",
    "VectorScaling",
    "compare",
    "create",
    "fit_linear_calibration",
    "fit_logistic",
    "fit_temperature",
    "load",
    "names",
    "register",
    "temperature_nll",
]


def __getattr__(name: str):
    """``ABSTENTION_MODES``: deprecated (a ``DeprecationWarning``), see :mod:`caltrain.posthoc.base`."""
    if name == "ABSTENTION_MODES":
        from caltrain.posthoc import base

        return base.__getattr__(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
