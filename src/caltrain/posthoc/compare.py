"""Fit several calibrators on validation logits and score each on the test logits: one function for every caller.

:func:`compare` is the single place where "fit the configured calibrators on validation, report the test
metrics after each" happens: the trainer's end of run (``summary.json``'s ``posthoc`` and ``posthoc_params``),
``caltrain calibrate`` and, through the calibrators it saves (:meth:`PosthocComparison.save`), the report.

Abstention (K + 1 outputs): ``abstention`` names the convention of :mod:`caltrain.abstention` the calibrators
are fitted under; they see :func:`caltrain.abstention.calibration_logits` of the logits. ``"renormalized"``
drops the unknown logit (the calibrators fit the K class logits, as a run's do: :data:`RUN_ABSTENTION`) and the
K-column calibrated probabilities are scored as ordinary class probabilities; ``"with_unknown"`` calibrates all
K + 1 logits and scores the K + 1 columns under ``eval_abstention`` (default ``"with_unknown"``).

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> z = 3 * torch.randn(400, 3, generator=g, dtype=torch.float64)
    >>> y = torch.multinomial(torch.softmax(z / 3, 1), 1, generator=g)[:, 0]
    >>> result = compare((z[:200], y[:200]), (z[200:], y[200:]), ["ts"])
    >>> sorted(result.calibrators), result.params["ts"]["temperature"] > 1
    (['ts'], True)
    >>> result.metrics["ts"]["ece"] < result.uncalibrated["ece"]
    True
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from caltrain.abstention import CALIBRATABLE, calibration_logits, check_convention
from caltrain.posthoc.base import Calibrator
from caltrain.posthoc.registry import CALIBRATORS, create
from caltrain.utils.checks import as_tensor, check_choice, check_n_bins, check_ndim

__all__ = ["ON_ERROR", "PosthocComparison", "RUN_ABSTENTION", "compare"]

#: The convention a training run fits its calibrators under when its model has an abstention output:
#: the K class logits (the unknown logit dropped). A run without one uses ``None``.
RUN_ABSTENTION = "renormalized"
#: Valid ``on_error`` values of :func:`compare`.
ON_ERROR = ("raise", "record")


@dataclass
class PosthocComparison:
    """What :func:`compare` returns: the fitted calibrators and their test metrics, by name, in the given order.

    Attributes:
        calibrators: name -> fitted :class:`~caltrain.posthoc.base.Calibrator` (the ones that failed are absent).
        metrics: name -> :func:`caltrain.metrics.summarize` of the calibrated test probabilities (float64 values;
            the keys of ``caltrain evaluate --json``).
        params: name -> the calibrator's scalar fitted values (``params_``, e.g. ``{"temperature": 1.7}``), as in
            ``summary.json``'s ``posthoc_params``.
        fit_seconds: name -> seconds spent in ``fit``.
        warnings: name -> messages of the warnings raised while fitting (only with ``capture_warnings=True``).
        errors: name -> ``"ExceptionType: message"`` of the calibrators that failed (only with
            ``on_error="record"``).
        abstention: the convention the calibrators were fitted under (``None``: no abstention output).
        eval_abstention: the convention the calibrated probabilities were scored under.
    """

    calibrators: dict[str, Calibrator]
    metrics: dict[str, dict[str, float]]
    params: dict[str, dict[str, Any]]
    fit_seconds: dict[str, float] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    abstention: str | None = None
    eval_abstention: str | None = None
    n_bins: int = 15
    _test: tuple[Any, Any, Any] | None = field(default=None, repr=False, compare=False)

    @cached_property
    def uncalibrated(self) -> dict[str, float]:
        """:func:`caltrain.metrics.summarize` of the float64 softmax of the test logits the calibrators see
        (the "before" column of ``caltrain calibrate``), scored like :attr:`metrics`; computed on first use."""
        if self._test is None:
            raise ValueError("this comparison holds no test split (it was not built by compare())")
        logits, labels, posterior = self._test
        return _score(torch.softmax(logits.to(torch.float64), dim=1), labels, self.n_bins, self.eval_abstention,
                      posterior)

    def save(self, run_dir: Any) -> dict[str, Path]:
        """Write every fitted calibrator with ``Calibrator.save`` to ``RunDir(run_dir).calibrator(name)``.

        Args:
            run_dir: a :class:`caltrain.train.run_dir.RunDir` or a run directory path; files go to
                ``calibrators/<name>.json`` inside it (the folder is created).

        Returns:
            name -> the written path. Reload one with :func:`caltrain.posthoc.load`.
        """
        from caltrain.train.run_dir import RunDir

        run = run_dir if isinstance(run_dir, RunDir) else RunDir(Path(os.fspath(run_dir)))
        paths = {name: run.calibrator(name) for name in self.calibrators}
        for name, path in paths.items():
            self.calibrators[name].save(path)
        return paths


def compare(
    val: tuple[Any, Any],
    test: tuple[Any, Any] | None,
    names: Sequence[str],
    *,
    n_bins: int = 15,
    abstention: str | None = None,
    eval_abstention: str | None = "with_unknown",
    true_posterior: Any = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    on_error: str = "raise",
    capture_warnings: bool = False,
) -> PosthocComparison:
    """Fit each calibrator ``names`` on ``val`` and score it on ``test`` with :func:`caltrain.metrics.summarize`.

    Every name and every option is checked before anything is fitted: an unknown name raises at once
    (``UnknownNameError``, a ``ValueError``, with "did you mean"), a bad option a ``TypeError`` listing the
    valid ones.

    Args:
        val: ``(logits [N_val, C], labels [N_val])`` the calibrators are fitted on (tensors or arrays, any
            float dtype; labels integer in ``[0, C')`` with ``C'`` the width the calibrators see).
        test: ``(logits [N_test, C], labels [N_test])`` the calibrated probabilities are scored on; ``None``: fit
            only (``metrics`` is empty; the caller scores the calibrators, as the dense task does in one streaming
            pass over its test pixels, :mod:`caltrain.train.dense`).
        names: registry names of :mod:`caltrain.posthoc` (e.g. ``["ts", "ats"]``), fitted in this order;
            a repeated name is fitted once.
        n_bins: bins of the binned metrics (default 15).
        abstention: ``None`` (C ordinary class logits, default) or the convention the calibrators are fitted
            under for K + 1 outputs: ``"renormalized"`` (the K class logits; what a training run uses,
            :data:`RUN_ABSTENTION`) or ``"with_unknown"`` (all K + 1 logits).
        eval_abstention: the metric convention of the calibrated K + 1 columns when ``abstention`` is
            ``"with_unknown"`` (default ``"with_unknown"``); otherwise the calibrated probabilities are ordinary
            class probabilities and this is ignored.
        true_posterior: optional ``[N_test, K]`` true class probabilities of the test split (adds ``true_ece``,
            ``pointwise_ce``, ``grouping_loss``).
        options: name -> keyword options of that calibrator (its constructor's arguments), e.g.
            ``{"dirichlet": {"reg_lambda": 0.1}}``; every key must be in ``names``.
        on_error: ``"raise"`` (default): a calibrator failing to fit or predict raises; ``"record"``: its
            ``ValueError``/``TypeError``/``ImportError`` is kept in ``errors`` and the others go on (callers
            check the data first, so a failure is the calibrator's own).
        capture_warnings: keep the warnings raised while fitting in ``warnings`` instead of emitting them.

    Returns:
        A :class:`PosthocComparison`.

    Raises:
        UnknownNameError: an unknown calibrator name (before any fit).
        TypeError: an option a calibrator does not take (before any fit).
        ValueError: bad ``names``, ``options``, ``abstention``, ``on_error`` or logits shapes.
    """
    check_choice(on_error, "on_error", ON_ERROR)
    n_bins = check_n_bins(n_bins)
    abstention = check_convention(abstention, "abstention", choices=CALIBRATABLE)
    if abstention == "with_unknown":
        eval_abstention = check_convention(eval_abstention, "eval_abstention")
    else:
        eval_abstention = None
    calibrators = _create_all(names, options)
    val_z, val_y = _split(val, "val", abstention)
    test_z, test_y = _split(test, "test", abstention) if test is not None else (None, None)
    if test_z is not None and val_z.shape[1] != test_z.shape[1]:
        raise ValueError(
            f"val, test: expected logits [N, C] with the same C, got {tuple(val_z.shape)} and {tuple(test_z.shape)}"
        )
    result = PosthocComparison(calibrators={}, metrics={}, params={}, abstention=abstention,
                               eval_abstention=eval_abstention, n_bins=n_bins,
                               _test=None if test is None else (test_z, test_y, true_posterior))
    for name, calibrator in calibrators.items():
        try:
            with warnings.catch_warnings(record=capture_warnings) as caught:
                if capture_warnings:
                    warnings.simplefilter("always")
                start = time.perf_counter()
                calibrator.fit(val_z, val_y)
                seconds = time.perf_counter() - start
            metrics = None if test_z is None else _score(calibrator.predict_proba(test_z), test_y, n_bins,
                                                         eval_abstention, true_posterior)
        except (ValueError, TypeError, ImportError) as err:
            if on_error == "raise":
                raise
            result.errors[name] = f"{type(err).__name__}: {err}"
            continue
        result.calibrators[name] = calibrator
        if metrics is not None:
            result.metrics[name] = metrics
        result.params[name] = calibrator.params_ or _fitted_params(calibrator)
        result.fit_seconds[name] = seconds
        if capture_warnings:
            result.warnings[name] = [str(w.message) for w in caught]
    return result


def _create_all(names: Sequence[str], options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Calibrator]:
    """Unfitted calibrators by name, every name and option checked first (nothing is fitted here)."""
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise ValueError(f"names: expected a list of calibrator names, got {names!r}")
    unique = list(dict.fromkeys(names))
    for name in unique:
        CALIBRATORS.get(name)  # UnknownNameError with the valid names and "did you mean"
    options = dict(options or {})
    extra = [k for k in options if k not in unique]
    if extra:
        raise ValueError(f"options: given for {extra}, which are not in names {unique}")
    return {name: create(name, **dict(options.get(name) or {})) for name in unique}


def _split(pair: tuple[Any, Any], name: str, abstention: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(logits the calibrators see [N, C'], labels [N])`` of one split, shapes checked."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{name}: expected a pair (logits [N, C], labels [N])")
    logits = as_tensor(pair[0], f"{name} logits")
    check_ndim(logits, f"{name} logits", 2, "[N, C]")
    return calibration_logits(logits, abstention), as_tensor(pair[1], f"{name} labels")


def _score(probs: torch.Tensor, labels: Any, n_bins: int, abstention: str | None, posterior: Any) -> dict[str, float]:
    from caltrain import metrics

    return metrics.summarize(probs, labels, n_bins=n_bins, true_posterior=posterior, abstention=abstention)


def _fitted_params(calibrator: Calibrator) -> dict[str, Any]:
    """Scalar fitted attributes (``name_``) of a calibrator whose ``params_`` is empty, for the summary."""
    out = {}
    for key, value in vars(calibrator).items():
        if key.endswith("_") and not key.startswith("_"):
            if isinstance(value, (int, float)):
                out[key.rstrip("_")] = value
            elif torch.is_tensor(value) and value.numel() == 1:
                out[key.rstrip("_")] = float(value)
    return out
