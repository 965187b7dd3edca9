"""The calibrator protocol: scikit-learn style estimators on cached logits.

Every calibrator maps the logits of a trained classifier, ``z in R^C`` per sample, to calibrated class
probabilities. The protocol (one for all of them, no per-method branches in callers):

- ``fit(logits, labels) -> self`` on validation logits ``[N, C]`` and integer labels ``[N]``;
- ``predict_proba(logits) -> probs [N, C']`` (rows sum to 1, float64, on the logits' device);
- ``transform(logits) -> calibrated logits`` where the calibrator is a logit map (``is_logit_map``), such that
  ``predict_proba(z) == softmax(transform(z))``; others raise ``NotImplementedError``;
- fitted attributes end in ``_``; using a calibrator before ``fit`` raises :class:`NotFittedError`;
- ``params_``: a dict of the scalar fitted values (e.g. ``{"temperature": 1.7}``) for summaries;
- ``state_dict()`` / ``load_state_dict()`` and ``save(path)`` / :func:`caltrain.posthoc.load` through a small JSON
  file that restores identical outputs. Loading trusts nothing in the file (it is JSON only, never unpickled):
  the format tag, the calibrator name, the hyperparameters (through the constructor's checks) and every fitted
  value (its type, shape for the stored number of classes, finiteness and range, each calibrator's
  ``_fields``) are checked before anything is set, and a bad one raises ``ValueError`` naming the file and the
  field, e.g. ``cal.json: fitted['temperature_']: expected a finite number in (0, inf), got -1.0``.

Inputs may be ``torch.Tensor`` (CPU or GPU) or NumPy arrays; everything is computed in float64 on the logits'
device. Outputs follow the input: a tensor in gives a float64 tensor on its device, anything else (a NumPy array,
a list, a DataFrame) gives a float64 NumPy array, as scikit-learn estimators do.

scikit-learn: every calibrator is a scikit-learn estimator without importing scikit-learn (an optional extra):
``get_params(deep=True)`` / ``set_params(**params) -> self`` (checked by the constructor; an unknown name raises
``ValueError`` listing the valid ones), constructor arguments stored unmodified under their own names (so
``sklearn.base.clone`` gives an unfitted copy with equal parameters), ``predict(logits)`` (class indices, the
argmax of ``predict_proba``), ``score(logits, labels)`` (accuracy), ``classes_`` (``arange(n_classes_)``) after
fit, and the estimator tags scikit-learn reads (``__sklearn_tags__``, ``__sklearn_is_fitted__``). It can then be
the last step of a ``sklearn.pipeline.Pipeline`` whose earlier steps produce logits.

Abstention (K+1) models: the last logit is "unknown". ``abstention`` says what to calibrate, explicitly, in
the vocabulary of :mod:`caltrain.abstention` (the metrics' convention names):

- ``None`` (default): the logits are K ordinary class logits;
- ``"with_unknown"``: calibrate all K+1 logits as one (K+1)-class problem; outputs have K+1 columns and the last
  is the calibrated abstention probability (labels stay in ``[0, K)``; they are checked against K+1);
- ``"renormalized"``: drop the abstention logit and calibrate the K class logits (``softmax`` of the K class
  logits is exactly ``p_k / (1 - p_unknown)``); outputs have K columns.

``"without_unknown"`` is not a distribution, so no calibrator takes it. The old spellings ``"all"`` (=
``"with_unknown"``) and ``"classes"`` (= ``"renormalized"``) still work, with a ``DeprecationWarning``; a
calibrator stores and saves the new name, and files saved with an old name load (silently translated).

Example:
    >>> import torch
    >>> from caltrain.posthoc import TemperatureScaling
    >>> z = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 3.0], [1.0, -1.0, 0.0], [-1.0, 2.0, 0.0]])
    >>> cal = TemperatureScaling(abstention="renormalized").fit(z, torch.tensor([0, 1, 0, 0]))
    >>> cal.predict_proba(z).shape, cal.n_classes_, cal.abstention
    (torch.Size([4, 2]), 2, 'renormalized')
    >>> TemperatureScaling(abstention="with_unknown").fit(z, torch.tensor([0, 1, 0, 0])).predict_proba(z).shape
    torch.Size([4, 3])
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import sys
import types
import warnings
from typing import Any, ClassVar, overload

if sys.version_info >= (3, 11):
    from typing import Self
else:  # pragma: no cover - Python 3.10 (typing_extensions is a dependency of torch)
    from typing_extensions import Self

import numpy as np
import torch

from caltrain.abstention import CALIBRATABLE, calibration_logits, check_convention
from caltrain.utils.checks import (
    as_tensor,
    did_you_mean,
    check_finite,
    check_labels,
    check_ndim,
    check_nonempty,
    check_same_length,
)
from caltrain.utils.io import atomic_write_json, read_json, to_jsonable

__all__ = ["Calibrator", "FORMAT", "NotALogitMapError", "NotFittedError"]

#: Valid values of every calibrator's ``abstention`` argument (``None`` or a name of
#: :data:`caltrain.abstention.CALIBRATABLE`); public as the deprecated ``ABSTENTION_MODES``.
_ABSTENTION_CHOICES = (None, *CALIBRATABLE)
#: Format tag of saved calibrator files.
FORMAT = "caltrain.posthoc/1"
#: ``fit`` needs at least this many validation samples (one sample fits noise, silently).
MIN_FIT_SAMPLES = 2


class NotFittedError(ValueError, AttributeError):
    """A calibrator was used before ``fit`` (subclasses ``ValueError`` and ``AttributeError``, like scikit-learn's)."""


class NotALogitMapError(NotImplementedError, AttributeError):
    """``transform`` of a calibrator that is not a logit map (``is_logit_map`` False: histogram, isotonic, ETS).

    Raised when the attribute is looked up, so ``hasattr(cal, "transform")`` is False for them (scikit-learn
    then does not take them for transformers); a ``NotImplementedError`` as before.
    """


class _LogitMapOnly:
    """A method that exists only on logit maps (scikit-learn's ``available_if``, without importing it)."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        functools.update_wrapper(self, fn)

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        if not obj.is_logit_map:
            raise NotALogitMapError(
                f"{type(obj).__name__} is not a logit map; use predict_proba ({self.fn.__name__} exists only for "
                "logit maps)"
            )
        return types.MethodType(self.fn, obj)


class Field:
    """What one saved fitted attribute must be: checked by :meth:`Calibrator.load_state_dict` before it is set.

    Args:
        kind: ``"number"`` (a JSON number; ``integer=True``: a whole number, restored as ``int``) or ``"array"``
            (nested lists, restored as a float64 tensor).
        shape: for arrays, ``shape(calibrator, n_classes)`` -> the expected shape (``None`` entries: any
            length >= 1).
        low, high: bounds (numbers, or ``bound(calibrator)``, e.g. the calibrator's own ``t_min``), with
            ``low_inclusive`` / ``high_inclusive``; a bound taken from a hyperparameter allows a relative 1e-9
            (the float64 round trip ``1 / (1 / t)``).
        nondecreasing: array rows (last dim) must be sorted (bin edges, isotonic knots).
        simplex: the array's entries must sum to 1 (within 1e-6).
        optional: ``None`` (JSON ``null``) is a valid value, restored as ``None``.
        infinite: a number may be ``+inf`` (within the bounds; JSON ``Infinity``, which Python's json reads).
    """

    def __init__(
        self,
        kind: str,
        *,
        shape: Any = None,
        low: Any = None,
        high: Any = None,
        low_inclusive: bool = True,
        high_inclusive: bool = True,
        integer: bool = False,
        nondecreasing: bool = False,
        simplex: bool = False,
        optional: bool = False,
        infinite: bool = False,
    ) -> None:
        assert kind in ("number", "array")
        self.kind, self.shape, self.low, self.high = kind, shape, low, high
        self.low_inclusive, self.high_inclusive = low_inclusive, high_inclusive
        self.integer, self.nondecreasing, self.simplex = integer, nondecreasing, simplex
        self.optional = optional
        self.infinite = infinite

    def check(self, value: Any, key: str, cal: "Calibrator", n_classes: int) -> Any:
        """``value`` converted (``int``/``float``/float64 tensor), or ``ValueError`` naming ``fitted[key]``."""
        where = f"fitted[{key!r}]"
        if value is None and self.optional:
            return None
        low = self.low(cal) if callable(self.low) else self.low
        high = self.high(cal) if callable(self.high) else self.high
        slack_low = 1e-9 * abs(low) if callable(self.low) and low is not None else 0.0
        slack_high = 1e-9 * abs(high) if callable(self.high) and high is not None else 0.0
        interval = (
            f"{'[' if self.low_inclusive and low is not None else '('}{'-inf' if low is None else f'{low:g}'}, "
            f"{'inf' if high is None else f'{high:g}'}{']' if self.high_inclusive and high is not None else ')'}"
        )
        if self.kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{where}: expected a number, got {_describe(value)}")
            if self.integer and not (isinstance(value, int) or float(value).is_integer()):
                raise ValueError(f"{where}: expected a whole number, got {value!r}")
            v = float(value)
            finite = math.isfinite(v) or (self.infinite and v == math.inf)
            if not finite or not _within(v, low, high, self, slack_low, slack_high):
                raise ValueError(f"{where}: expected a finite number in {interval}, got {value!r}")
            return int(v) if self.integer else v
        if isinstance(value, (bool, int, float, str, dict)) or value is None:
            raise ValueError(f"{where}: expected an array (a list of numbers), got {_describe(value)}")
        try:
            arr = np.asarray(value.cpu() if torch.is_tensor(value) else value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: expected an array of numbers, got {_describe(value)} ({err})") from None
        expected = tuple(self.shape(cal, n_classes))
        if arr.ndim != len(expected) or any(
            (e is None and a < 1) or (e is not None and a != e) for a, e in zip(arr.shape, expected)
        ):
            doc = [("L" if e is None else e) for e in expected]
            raise ValueError(
                f"{where}: expected shape {doc} (for {n_classes} classes and this calibrator's hyperparameters), "
                f"got {list(arr.shape)}"
            )
        if not np.isfinite(arr).all():
            raise ValueError(f"{where}: expected finite values, found {int((~np.isfinite(arr)).sum())} NaN/infinite")
        bad = arr.size and [x for x in (arr.min(), arr.max()) if not _within(float(x), low, high, self, slack_low, slack_high)]
        if bad:
            raise ValueError(f"{where}: expected values in {interval}, got values in [{arr.min():g}, {arr.max():g}]")
        if self.nondecreasing and arr.shape[-1] > 1 and (np.diff(arr, axis=-1) < 0).any():
            raise ValueError(f"{where}: expected values sorted in non-decreasing order (along the last dim)")
        if self.simplex and arr.size and abs(arr.sum() - 1) > 1e-6:
            raise ValueError(f"{where}: expected weights summing to 1, got a sum of {arr.sum():.6g}")
        return torch.from_numpy(arr.copy())


def _within(v: float, low: Any, high: Any, f: Field, slack_low: float, slack_high: float) -> bool:
    if low is not None and not (v >= low - slack_low if f.low_inclusive else v > low):
        return False
    return high is None or (v <= high + slack_high if f.high_inclusive else v < high)


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '...' if len(text) > 40 else text}"


def positive_temperature(low: Any = None, high: Any = None) -> Field:
    """A temperature: a finite number > 0, within ``[low(cal), high(cal)]`` when given (e.g. ``t_min``, ``t_max``)."""
    if low is None:
        return Field("number", low=0.0, low_inclusive=False, high=high)
    return Field("number", low=low, high=high)


#: Fields most calibrators share.
ITERATIONS = Field("number", low=0, integer=True)
FINITE = Field("number")


class Calibrator:
    """Base class of every post-hoc calibrator (see the module docstring for the protocol).

    Subclasses implement ``_fit(z, y)`` on validated float64 logits ``z [N, C]`` and int64 labels ``y [N]``, and
    either ``_transform(z)`` (logit maps; ``predict_proba`` is then its softmax) or ``_predict_proba(z)``. They
    list their fitted attributes in ``_fitted`` (tensors or Python numbers) and their scalar summary in
    ``params_``. Hyperparameters are keyword-only constructor arguments stored under the same names.

    Args:
        abstention: ``None``, ``"with_unknown"`` or ``"renormalized"`` (module docstring; the deprecated
            ``"all"`` / ``"classes"`` are translated with a ``DeprecationWarning``).
    """

    #: Registry name (set by :func:`caltrain.posthoc.register`).
    name: ClassVar[str] = ""
    #: ``argmax predict_proba(z) == argmax z`` for every z (ties aside).
    preserves_argmax: ClassVar[bool] = False
    #: ``transform`` is available and ``predict_proba == softmax(transform)``.
    is_logit_map: ClassVar[bool] = True
    #: Only for two classes (logits ``[N]`` for the positive class, or ``[N, 2]``).
    binary_only: ClassVar[bool] = False
    #: Names of the fitted attributes saved by ``state_dict`` (``n_classes_`` is always saved).
    _fitted: ClassVar[tuple[str, ...]] = ()
    #: What each of ``_fitted`` must be when loaded (:class:`Field`); every name in ``_fitted`` has one.
    _fields: ClassVar[dict[str, Field]] = {}

    def __init__(self, *, abstention: str | None = None) -> None:
        with warnings.catch_warnings(record=True) as caught:  # re-issued below, attributed to the user's line
            warnings.simplefilter("always", DeprecationWarning)
            self.abstention = check_convention(abstention, "abstention", choices=CALIBRATABLE)
        for w in caught:
            warnings.warn(w.message, w.category, stacklevel=_user_stacklevel())

    # ----------------------------------------------------------------------------------------------- protocol
    def fit(self, logits: Any, labels: Any) -> Self:
        """Fit on validation ``logits`` ``[N, C]`` (``[N]`` allowed for binary calibrators) and ``labels`` ``[N]``."""
        z = self._logits(logits, "logits")
        y = as_tensor(labels, "labels")
        check_ndim(y, "labels", 1, "[N]")
        check_same_length(z, y, "logits", "labels")
        check_labels(y, z.shape[1], "labels")
        if z.shape[0] < MIN_FIT_SAMPLES:
            raise ValueError(
                f"logits: expected at least {MIN_FIT_SAMPLES} validation samples to fit {type(self).__name__}, got "
                f"{z.shape[0]} (a calibrator fitted on one sample is meaningless: pass the whole validation split)"
            )
        y = y.to(device=z.device, dtype=torch.long)
        # the optimisers use autograd: fitting works inside the caller's torch.no_grad() / inference_mode(), and
        # on inference tensors (cloned outside inference mode so that autograd may save them)
        with torch.inference_mode(False), torch.enable_grad():
            self._fit(z.detach().clone(), y.clone())
        self.n_classes_ = int(z.shape[1])
        return self

    @overload
    def predict_proba(self, logits: torch.Tensor) -> torch.Tensor: ...
    @overload
    def predict_proba(self, logits: Any) -> np.ndarray: ...

    def predict_proba(self, logits: Any) -> torch.Tensor | np.ndarray:
        """Calibrated probabilities ``[N, C]``, float64: a tensor on the logits' device for a tensor, else NumPy."""
        z = self._prepared(logits)
        return _like(self._predict_proba(z), logits)

    @_LogitMapOnly
    def transform(self, logits: Any) -> torch.Tensor | np.ndarray:
        """Calibrated logits ``[N, C]`` (logit maps only; ``[N]`` in, ``[N]`` out for binary calibrators).

        float64, a tensor on the logits' device for a tensor, else a NumPy array. On a calibrator that is not a
        logit map the attribute does not exist: looking it up raises :class:`NotALogitMapError` (a
        ``NotImplementedError`` and an ``AttributeError``).
        """
        raw = as_tensor(logits, "logits")
        out = self._transform(self._prepared(logits))
        if self.binary_only and raw.ndim == 1:
            out = out[:, 1]
        return _like(out, logits)

    @overload
    def predict(self, logits: torch.Tensor) -> torch.Tensor: ...
    @overload
    def predict(self, logits: Any) -> np.ndarray: ...

    def predict(self, logits: Any) -> torch.Tensor | np.ndarray:
        """Predicted class indices ``[N]`` (int64; the argmax of :meth:`predict_proba`, scikit-learn's ``predict``).

        With ``abstention="with_unknown"`` index ``n_classes_ - 1`` is the abstention ("unknown") output.
        """
        probs = self.predict_proba(as_tensor(logits, "logits"))
        return _like(probs.argmax(dim=1), logits)

    def score(self, logits: Any, labels: Any) -> float:
        """Accuracy of :meth:`predict` on ``labels`` (scikit-learn's ``ClassifierMixin.score``)."""
        y = as_tensor(labels, "labels")
        check_ndim(y, "labels", 1, "[N]")
        pred = self.predict(as_tensor(logits, "logits"))
        check_same_length(pred, y, "logits", "labels")
        return float((pred.cpu() == y.cpu().long()).double().mean())

    @_LogitMapOnly
    def fit_transform(self, logits: Any, labels: Any) -> torch.Tensor | np.ndarray:
        """``fit(logits, labels).transform(logits)`` (logit maps; a ``Pipeline``'s intermediate step calls it)."""
        return self.fit(logits, labels).transform(logits)

    def fit_predict_proba(self, logits: Any, labels: Any) -> torch.Tensor | np.ndarray:
        """``fit(logits, labels).predict_proba(logits)``."""
        return self.fit(logits, labels).predict_proba(logits)

    @property
    def classes_(self) -> np.ndarray:
        """``numpy.arange(n_classes_)``: what ``predict_proba``'s columns stand for (scikit-learn's ``classes_``)."""
        self._check_fitted()
        return np.arange(self.n_classes_)

    @property
    def params_(self) -> dict[str, float]:
        """The scalar fitted values, e.g. ``{"temperature": 1.7}`` (raises :class:`NotFittedError` before fit)."""
        self._check_fitted()
        return self._params()

    # --------------------------------------------------------------------------------------- for subclasses
    def _fit(self, z: torch.Tensor, y: torch.Tensor) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _transform(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict_proba(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self._transform(z), dim=1)

    def _params(self) -> dict[str, float]:
        return {}

    def _check_fields(self, values: dict[str, Any]) -> None:
        """Checks across fitted fields on load (each field alone is checked by its :class:`Field`)."""

    def _legacy_fitted(self, fitted: dict[str, Any]) -> dict[str, Any]:
        """``fitted`` of a file saved by an older caltrain, completed with the fields added since (default: as is).

        Called on load before the fields are checked; a subclass that added fitted fields fills them in here
        from the hyperparameters, only when all of them are absent (a file with some is checked as it is).
        """
        return fitted

    # ------------------------------------------------------------------------------------------------ state
    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "self"
        ]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's keyword arguments with their current values (the hyperparameters).

        ``deep`` is accepted for scikit-learn (a calibrator holds no nested estimators).
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set hyperparameters (scikit-learn's ``set_params``) and return ``self``.

        The new values go through the constructor's checks first (nothing is set if one fails); an unknown name
        raises ``ValueError`` listing the valid ones. Fitted attributes are kept, as in scikit-learn: refit.
        """
        valid = self._get_param_names()
        for key in params:
            if key not in valid:
                raise ValueError(
                    f"invalid parameter {key!r} for {type(self).__name__}; valid parameters: "
                    f"{', '.join(valid) or '(none)'}{did_you_mean(key, valid)}"
                )
        if params:
            checked = type(self)(**{**self.get_params(), **params})  # the constructor's checks and translations
            for key in params:
                setattr(self, key, getattr(checked, key))
        return self

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_classes_")

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's estimator tags (imported only when scikit-learn asks): a classifier on 2-D float logits."""
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(multi_class=not self.binary_only),
            transformer_tags=TransformerTags(preserves_dtype=["float64"]) if self.is_logit_map else None,
            input_tags=InputTags(one_d_array=self.binary_only, two_d_array=True),
        )

    def state_dict(self) -> dict[str, Any]:
        """``{"format", "name", "hyperparameters", "fitted"}``; fitted tensors are float64 CPU copies."""
        self._check_fitted()
        fitted: dict[str, Any] = {"n_classes_": self.n_classes_}
        for key in self._fitted:
            value = getattr(self, key)
            fitted[key] = value.detach().to("cpu", torch.float64).clone() if torch.is_tensor(value) else value
        return {"format": FORMAT, "name": self.name, "hyperparameters": self.get_params(), "fitted": fitted}

    def load_state_dict(self, state: dict[str, Any], *, source: str = "state") -> "Calibrator":
        """Restore the fitted attributes saved by :meth:`state_dict` (arrays become float64 tensors).

        Everything is checked before anything is set (module docstring): the format tag, the calibrator name,
        ``n_classes_`` (an integer >= 2; 2 for binary calibrators) and every fitted value against this
        calibrator's ``_fields``; a bad one raises ``ValueError`` starting with ``source`` (the file name when
        called by :func:`caltrain.posthoc.load`) and naming the field.
        """
        if not isinstance(state, dict):
            raise ValueError(f"{source}: expected a dict as returned by state_dict(), got {_describe(state)}")
        if state.get("format") != FORMAT:
            raise ValueError(
                f"{source}: format: expected {FORMAT!r} (a caltrain calibrator), got {_describe(state.get('format'))}"
            )
        if state.get("name") != self.name:
            raise ValueError(f"{source}: name: saved for calibrator {state.get('name')!r}, not {self.name!r}")
        fitted = state.get("fitted")
        if not isinstance(fitted, dict):
            raise ValueError(f"{source}: fitted: expected a dict of fitted values, got {_describe(fitted)}")
        fitted = self._legacy_fitted(fitted)
        missing = [k for k in ("n_classes_", *self._fitted) if k not in fitted]
        if missing:
            raise ValueError(f"{source}: fitted: missing fitted attribute(s) {', '.join(missing)}")
        k = fitted["n_classes_"]
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not float(k).is_integer() or k < 2:
            raise ValueError(f"{source}: fitted['n_classes_']: expected an integer >= 2, got {_describe(k)}")
        k = int(k)
        if self.binary_only and k != 2:
            raise ValueError(f"{source}: fitted['n_classes_']: {type(self).__name__} is binary, expected 2, got {k}")
        values: dict[str, Any] = {"n_classes_": k}
        try:
            for key in self._fitted:
                values[key] = self._fields[key].check(fitted[key], key, self, k)
            self._check_fields(values)
        except ValueError as err:
            raise ValueError(f"{source}: {err}") from None
        for key, value in values.items():
            setattr(self, key, value)
        return self

    def save(self, path: str | os.PathLike) -> None:
        """Write the calibrator (name, hyperparameters, fitted values) to a small JSON file, atomically."""
        atomic_write_json(path, to_jsonable(self.state_dict()))

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], *, source: str = "state") -> "Calibrator":
        """A calibrator of this class built from ``state["hyperparameters"]`` and loaded with ``state``.

        Bad hyperparameters (an unknown name, a value the constructor rejects) raise ``ValueError`` starting
        with ``source`` and naming ``hyperparameters``.
        """
        if not isinstance(state, dict):
            raise ValueError(f"{source}: expected a dict as returned by state_dict(), got {_describe(state)}")
        hyper = state.get("hyperparameters", {})
        if not isinstance(hyper, dict):
            raise ValueError(f"{source}: hyperparameters: expected a dict, got {_describe(hyper)}")
        hyper = dict(hyper)
        try:
            if hyper.get("abstention") is not None:
                with warnings.catch_warnings():  # files saved before the rename say "all" / "classes"
                    warnings.simplefilter("ignore", DeprecationWarning)
                    hyper["abstention"] = check_convention(hyper["abstention"], "abstention", choices=CALIBRATABLE)
            cal = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in hyper.items()})
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: hyperparameters: {err}") from None
        return cal.load_state_dict(state, source=source)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------------------------------- internals
    def _check_fitted(self) -> None:
        if not hasattr(self, "n_classes_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(logits, labels) first")

    def _logits(self, logits: Any, name: str) -> torch.Tensor:
        """Validate and convert to float64 ``[N, C]``, applying the binary and abstention conventions."""
        z = as_tensor(logits, name)
        if not (z.is_floating_point() or z.dtype in (torch.int32, torch.int64)):
            raise TypeError(f"{name}: expected real-valued logits, got dtype {z.dtype}")
        if self.binary_only:
            check_ndim(z, name, (1, 2), "[N] (logit of the positive class) or [N, 2]")
            if z.ndim == 2 and z.shape[1] != 2:
                raise ValueError(
                    f"{name}: {type(self).__name__} is for binary outputs, expected [N] or [N, 2], "
                    f"got shape {tuple(z.shape)}"
                )
        else:
            check_ndim(z, name, 2, "[N, C]")
        check_nonempty(z, name)
        z = z.to(torch.float64)
        check_finite(z, name)
        if z.ndim == 1:
            z = torch.stack([torch.zeros_like(z), z], dim=1)
        if self.abstention is not None:
            z = calibration_logits(z, self.abstention)
        if z.shape[1] < 2:
            raise ValueError(f"{name}: expected at least 2 classes, got shape {tuple(z.shape)}")
        return z

    def _prepared(self, logits: Any) -> torch.Tensor:
        self._check_fitted()
        z = self._logits(logits, "logits")
        if z.shape[1] != self.n_classes_:
            raise ValueError(
                f"logits: this calibrator was fitted on {self.n_classes_} classes"
                f"{' (after dropping the abstention logit)' if self.abstention == 'renormalized' else ''}, "
                f"got {z.shape[1]}"
            )
        return z


def _like(out: torch.Tensor, reference: Any) -> torch.Tensor | np.ndarray:
    """``out`` as a tensor if ``reference`` (the caller's input) is one, else as a NumPy array (scikit-learn)."""
    return out if torch.is_tensor(reference) else out.detach().cpu().numpy()


def load_json(path: str | os.PathLike) -> dict[str, Any]:
    """Read a saved calibrator file (JSON only: nothing is ever unpickled) and check its format tag.

    A missing file raises ``FileNotFoundError``; anything that is not a JSON object with ``format`` =
    :data:`FORMAT` (a pickle, a ``.pt`` file, another JSON file) raises ``ValueError`` naming the file.
    """
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a directory, not a caltrain calibrator file")
    try:
        state = read_json(path)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a caltrain calibrator file (not JSON: {err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = _describe(state.get("format")) if isinstance(state, dict) else f"a JSON {type(state).__name__}"
        raise ValueError(f"{path}: not a caltrain calibrator file (format: expected {FORMAT!r}, got {found})")
    return state


def _user_stacklevel() -> int:
    """``stacklevel`` (for a ``warnings.warn`` in the caller) of the first frame outside caltrain.posthoc and the
    registry, so that a DeprecationWarning names the user's line (and is shown by default in ``__main__``)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith(
        ("caltrain.posthoc", "caltrain.utils.registry")
    ):
        frame, level = frame.f_back, level + 1
    return level


def __getattr__(name: str) -> Any:
    if name == "ABSTENTION_MODES":
        warnings.warn(
            "caltrain.posthoc.ABSTENTION_MODES is deprecated and will be removed in the next release; the "
            "calibrators' abstention values are None and caltrain.abstention.CALIBRATABLE "
            "('with_unknown', 'renormalized'; formerly 'all', 'classes')",
            DeprecationWarning,
            stacklevel=_user_stacklevel(),
        )
        return _ABSTENTION_CHOICES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
