"""The end of a run: reload the selected model, its final metrics, post-hoc calibration, OOD scores, files.

:func:`finish_run` predicts the validation and test splits with the selected model, reports their metrics,
fits each configured post-hoc calibrator on validation and scores it on test (:func:`fit_posthoc`), scores the
OOD sets (:func:`caltrain.train.ood.score_ood`), and (on the main process) writes ``logits_{val,test,ood}.npz``
and ``summary.json``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from caltrain.abstention import calibration_logits
from caltrain.train.checkpoint import load_checkpoint
from caltrain.train.config import TrainConfig
from caltrain.train.evaluation import Evaluator
from caltrain.train.ood import score_ood
from caltrain.train.run_dir import RunDir
from caltrain.train.selection import Selection
from caltrain.utils.io import atomic_write_json, save_npz
from caltrain.utils.modules import unwrap

__all__ = ["finish_run", "fit_posthoc"]


def finish_run(
    *, cfg: TrainConfig, run: RunDir, model: nn.Module, evaluator: Evaluator, selection: Selection, data: Any,
    steps: int, train_seconds: float, convention: str | None, device: torch.device, is_main: bool,
) -> dict[str, Any]:
    """Report the selected model of a finished run; returns the summary (also written to ``summary.json``).

    Args:
        convention: the logits calibrators and OOD scores see (:func:`caltrain.abstention.calibration_logits`).
        device: where the selected weights are loaded.
        is_main: write the files (the main process only).
    """
    selected_epoch = cfg.epochs
    if selection.best_epoch is not None:
        unwrap(model).load_state_dict(load_checkpoint(run.best, device)["model"])
        selected_epoch = selection.best_epoch
    logits = {s: evaluator.predict(s) for s in ("val", "test")}
    result: dict[str, Any] = {
        "epochs": cfg.epochs,
        "selected_epoch": selected_epoch,
        "steps": steps,
        "train_seconds": train_seconds,
        "val": evaluator.metrics(*logits["val"], evaluator.posterior("val")),
        "test": evaluator.metrics(*logits["test"], evaluator.posterior("test")),
        "posthoc": {},
        "posthoc_params": {},
        "abstention": evaluator.abstention,
    }
    result["posthoc"], result["posthoc_params"] = fit_posthoc(
        cfg.eval.posthoc, logits["val"], logits["test"], n_bins=cfg.eval.n_bins,
        true_posterior=evaluator.posterior("test"), convention=convention,
    )
    if cfg.eval.ood and data.ood_names:
        result["ood"], logits["ood"] = score_ood(
            logits["test"][0], data.ood, evaluator.predict_dataset, convention=convention
        )
    if is_main:
        for split, (z, y) in logits.items():
            save_npz(run.logits(split), logits=z, labels=y)
        atomic_write_json(run.summary, result)
    return result


def fit_posthoc(
    names: list[str], val: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor], *,
    n_bins: int, true_posterior: torch.Tensor | None, convention: str | None,
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, Any]]]:
    """Fit each calibrator in ``names`` on the validation (logits, labels), score it on test.

    Returns the test metrics after each calibrator and its fitted parameters, by name.
    """
    from caltrain import posthoc

    scores: dict[str, dict[str, float]] = {}
    params: dict[str, dict[str, Any]] = {}
    val_z, val_y = val
    test_z, test_y = test
    for name in names:
        calibrator = posthoc.create(name)
        calibrator.fit(calibration_logits(val_z, convention), val_y)
        probs = calibrator.predict_proba(calibration_logits(test_z, convention))
        from caltrain import metrics

        scores[name] = metrics.summarize(probs, test_y, n_bins=n_bins, true_posterior=true_posterior)
        params[name] = getattr(calibrator, "params_", None) or _fitted_params(calibrator)
    return scores, params


def _fitted_params(calibrator: Any) -> dict[str, Any]:
    """Scalar fitted attributes (``name_``) of a calibrator, for the summary."""
    out = {}
    for key, value in vars(calibrator).items():
        if key.endswith("_") and not key.startswith("_"):
            if isinstance(value, (int, float)):
                out[key.rstrip("_")] = value
            elif torch.is_tensor(value) and value.numel() == 1:
                out[key.rstrip("_")] = float(value)
    return out
