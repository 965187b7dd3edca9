"""The end of a run: reload the selected model, its final metrics, post-hoc calibration, OOD scores, files.

:func:`finish_run` predicts the validation and test splits with the selected model, reports their metrics,
fits each configured post-hoc calibrator on validation and scores it on test (:func:`caltrain.posthoc.compare`,
the one owner of that step), scores the OOD sets (:func:`caltrain.train.ood.score_ood`), and (on the main
process) writes ``logits_{val,test,ood}.npz``, ``calibrators/<name>.json`` and, last, ``summary.json``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from caltrain import posthoc
from caltrain.train.checkpoint import BEST_KEYS, load_checkpoint
from caltrain.train.config import TrainConfig
from caltrain.train.evaluation import Evaluator
from caltrain.train.ood import score_ood
from caltrain.train.run_dir import RunDir
from caltrain.train.selection import Selection
from caltrain.utils.io import atomic_write_json, save_npz
from caltrain.utils.modules import unwrap

__all__ = ["finish_run"]


def finish_run(
    *, cfg: TrainConfig, run: RunDir, model: nn.Module, evaluator: Evaluator, selection: Selection, data: Any,
    steps: int, train_seconds: float, convention: str | None, device: torch.device, is_main: bool,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Report the selected model of a finished run; returns the summary (also written to ``summary.json``).

    Args:
        convention: the logits calibrators and OOD scores see (:func:`caltrain.abstention.calibration_logits`).
        device: where the selected weights are loaded.
        is_main: write the files (the main process only).
        extra: further summary entries (``caltrain.fit``: where the data came from, ``summary["data"]``).
    """
    selected_epoch = cfg.epochs
    if selection.best_epoch is not None:
        weights = load_checkpoint(run.best, device, required=BEST_KEYS)["model"]  # weights_only: runs no code
        try:
            unwrap(model).load_state_dict(weights)
        except (RuntimeError, TypeError, AttributeError) as err:
            first = next((line.strip() for line in str(err).splitlines() if line.strip()), "")
            raise ValueError(f"{run.best}: the weights do not fit this run's model ({first})") from None
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
    calibrated = posthoc.compare(
        logits["val"], logits["test"], cfg.eval.posthoc, n_bins=cfg.eval.n_bins, abstention=convention,
        true_posterior=evaluator.posterior("test"),
    )
    result["posthoc"], result["posthoc_params"] = calibrated.metrics, calibrated.params
    if cfg.eval.ood and data.ood_names:
        result["ood"], logits["ood"] = score_ood(
            logits["test"][0], data.ood, evaluator.predict_dataset, convention=convention
        )
    if extra:
        result.update(extra)
    if is_main:
        for split, (z, y) in logits.items():
            save_npz(run.logits(split), logits=z, labels=y)
        calibrated.save(run)
        atomic_write_json(run.summary, result)
    return result
