"""``CalibratedClassifier``: a caltrain calibrator on top of a scikit-learn classifier.

The ``CalibratedClassifierCV``-style path (scikit-learn's ``cv="prefit"`` / ``FrozenEstimator`` semantics, or a
held-out split): the classifier's scores are read as logits and any registered calibrator (``"ts"``,
``"vector"``, ``"dirichlet"``, ``"platt"``, ...) is fitted on them.

Logits (``response``): ``"decision_function"`` (binary: the ``[N]`` positive-class score, given as ``[N]`` to the
binary calibrators and as ``[N, 2] = [0, s]`` to the others; multiclass: ``[N, K]``), ``"log_proba"``
(``log(predict_proba)``, clipped at the smallest positive float64 so that a zero probability stays finite), or
``"auto"`` (default): ``decision_function`` when the estimator has one, else ``log_proba`` (scikit-learn's
choice for ``method="temperature"``).

scikit-learn is needed only by :meth:`CalibratedClassifier.fit` with a held-out split (``cv`` a fraction) and by
``clone``; importing this module does not import it.

Example (needs scikit-learn):
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> X, y = make_classification(600, n_classes=3, n_informative=4, random_state=0)
    >>> clf = LogisticRegression(max_iter=1000).fit(X[:300], y[:300])
    >>> cal = CalibratedClassifier(clf, "ts").fit(X[300:], y[300:])  # cv="prefit": X, y are held out
    >>> cal.predict_proba(X[:2]).shape, cal.classes_.tolist()
    ((2, 3), [0, 1, 2])
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from caltrain.posthoc.base import Calibrator, NotFittedError
from caltrain.utils.checks import check_choice

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover - Python 3.10
    from typing_extensions import Self

__all__ = ["CalibratedClassifier"]

RESPONSES = ("auto", "decision_function", "log_proba")


class CalibratedClassifier:
    """A scikit-learn classifier whose scores go through a caltrain calibrator (a scikit-learn estimator).

    Args:
        estimator: a scikit-learn classifier (``classes_`` and ``decision_function`` or ``predict_proba``).
        method: a registered calibrator name (``caltrain.posthoc.names()``) or an unfitted :class:`Calibrator`
            (cloned on ``fit``: the one given is never fitted).
        cv: ``"prefit"`` (default): ``estimator`` is already fitted and ``fit(X, y)`` fits only the calibrator on
            ``X, y`` (pass data the estimator was not trained on); a float in ``(0, 1)``: ``fit`` clones
            ``estimator``, trains it on the rest and calibrates on a stratified held-out fraction ``cv``.
        response: which scores are the logits (module docstring): ``"auto"``, ``"decision_function"``,
            ``"log_proba"``.
        random_state: the held-out split's seed (``cv`` a fraction).

    Fitted attributes: ``estimator_`` (the fitted classifier), ``calibrator_`` (the fitted calibrator),
    ``classes_`` (the estimator's classes; ``predict`` returns them, ``predict_proba``'s columns follow them).
    """

    def __init__(
        self,
        estimator: Any,
        method: str | Calibrator = "ts",
        *,
        cv: str | float = "prefit",
        response: str = "auto",
        random_state: int | None = 0,
    ) -> None:
        self.estimator = estimator
        self.method = method
        self.cv = cv
        self.response = response
        self.random_state = random_state

    # --------------------------------------------------------------------------------------------- sklearn API
    def get_params(self, deep: bool = True) -> dict[str, Any]:
        params = {
            "estimator": self.estimator,
            "method": self.method,
            "cv": self.cv,
            "response": self.response,
            "random_state": self.random_state,
        }
        if deep:
            for owner in ("estimator", "method"):
                value = params[owner]
                if hasattr(value, "get_params") and not isinstance(value, type):
                    params.update({f"{owner}__{k}": v for k, v in value.get_params(deep=True).items()})
        return params

    def set_params(self, **params: Any) -> Self:
        valid = set(self.get_params(deep=False))
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            owner, _, sub = key.partition("__")
            if owner not in valid:
                raise ValueError(
                    f"invalid parameter {owner!r} for CalibratedClassifier; valid parameters: "
                    f"{', '.join(sorted(valid))}"
                )
            if sub:
                nested.setdefault(owner, {})[sub] = value
            else:
                setattr(self, owner, value)
        for owner, sub_params in nested.items():
            getattr(self, owner).set_params(**sub_params)
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "calibrator_")

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier", target_tags=TargetTags(required=True), classifier_tags=ClassifierTags()
        )

    def __repr__(self) -> str:
        return f"CalibratedClassifier({self.estimator!r}, {self.method!r}, cv={self.cv!r}, response={self.response!r})"

    # ------------------------------------------------------------------------------------------------ protocol
    def fit(self, X: Any, y: Any) -> Self:
        """Fit the calibrator on ``X, y`` (``cv="prefit"``) or train a clone of the estimator and calibrate on a
        held-out split (``cv`` a fraction)."""
        check_choice(self.response, "response", RESPONSES)
        y = np.asarray(y)
        if isinstance(self.cv, str):
            check_choice(self.cv, "cv", ("prefit",))
            estimator, X_cal, y_cal = self.estimator, X, y
            if not hasattr(estimator, "classes_"):
                raise NotFittedError(
                    f"cv='prefit': the estimator {type(estimator).__name__} is not fitted; fit it first, or pass "
                    "cv=0.2 to train a copy on 80% of X and calibrate on the rest"
                )
        else:
            if isinstance(self.cv, bool) or not isinstance(self.cv, float) or not 0 < self.cv < 1:
                raise ValueError(f"cv: expected 'prefit' or a held-out fraction in (0, 1), got {self.cv!r}")
            from sklearn.base import clone
            from sklearn.model_selection import train_test_split

            X_fit, X_cal, y_fit, y_cal = train_test_split(
                X, y, test_size=self.cv, stratify=y, random_state=self.random_state
            )
            estimator = clone(self.estimator).fit(X_fit, y_fit)
        classes = np.asarray(estimator.classes_)
        index = np.searchsorted(classes, y_cal)
        if ((index >= len(classes)) | (classes[np.minimum(index, len(classes) - 1)] != y_cal)).any():
            unknown = sorted(set(np.asarray(y_cal).tolist()) - set(classes.tolist()))
            raise ValueError(f"y: labels {unknown[:5]} are not among the estimator's classes_ {classes.tolist()}")
        calibrator = self._new_calibrator(len(classes))
        calibrator.fit(self._logits(estimator, X_cal, calibrator), index)
        self.estimator_, self.calibrator_, self.classes_ = estimator, calibrator, classes
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities ``[N, n_classes]`` (float64 NumPy), columns in ``classes_`` order."""
        self._check_fitted()
        return self.calibrator_.predict_proba(self._logits(self.estimator_, X, self.calibrator_))

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each row (from ``classes_``)."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X: Any, y: Any) -> float:
        """Accuracy of :meth:`predict` on ``y``."""
        return float(np.mean(self.predict(X) == np.asarray(y)))

    def decision_function(self, X: Any) -> np.ndarray:
        """Calibrated logits (logit-map calibrators; ``[N]`` for a binary calibrator given ``[N]`` scores)."""
        self._check_fitted()
        return self.calibrator_.transform(self._logits(self.estimator_, X, self.calibrator_))

    # ----------------------------------------------------------------------------------------------- internals
    def _check_fitted(self) -> None:
        if not hasattr(self, "calibrator_"):
            raise NotFittedError("this CalibratedClassifier is not fitted yet; call fit(X, y) first")

    def _new_calibrator(self, n_classes: int) -> Calibrator:
        from caltrain.posthoc.registry import create

        if isinstance(self.method, Calibrator):
            cal = type(self.method)(**self.method.get_params())
        elif isinstance(self.method, str):
            cal = create(self.method)
        else:
            raise ValueError(f"method: expected a calibrator name or a Calibrator, got {self.method!r}")
        if cal.binary_only and n_classes != 2:
            raise ValueError(
                f"method: {cal.name or type(cal).__name__} is binary; the estimator has {n_classes} classes"
            )
        return cal

    def _logits(self, estimator: Any, X: Any, calibrator: Calibrator) -> np.ndarray:
        response = self.response
        if response == "auto":
            response = "decision_function" if hasattr(estimator, "decision_function") else "log_proba"
        if response == "decision_function":
            z = np.asarray(estimator.decision_function(X), dtype=np.float64)
            if z.ndim == 1 and not calibrator.binary_only:
                z = np.stack([np.zeros_like(z), z], axis=1)
            return z
        p = np.asarray(estimator.predict_proba(X), dtype=np.float64)
        return np.log(np.clip(p, np.finfo(np.float64).tiny, None))
