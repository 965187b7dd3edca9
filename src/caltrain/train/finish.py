"""The end of a run: reload the selected model, its final metrics, post-hoc calibration, OOD scores, files.

:func:`finish_run` reloads the selected weights and asks the task's evaluator for the end of the run
(:meth:`caltrain.train.evaluation.Evaluator.final`: validation and test metrics, each configured post-hoc
calibrator fitted on validation and scored on test through :func:`caltrain.posthoc.compare`, the one owner of
that step, and the OOD sets); on the main process it writes the evaluator's files (classification:
``logits_{val,test,ood}.npz``; dense: ``examples_test.npz``, ``reliability_test.json``), ``calibrators/<name>.json``
and, last, ``summary.json``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from caltrain.train.checkpoint import BEST_KEYS, load_checkpoint
from caltrain.train.config import TrainConfig
from caltrain.train.evaluation import Evaluator
from caltrain.train.run_dir import RunDir
from caltrain.train.selection import Selection
from caltrain.utils.io import atomic_write_json, save_npz
from caltrain.utils.modules import unwrap

__all__ = ["finish_run"]


def finish_run(
    *, cfg: TrainConfig, run: RunDir, model: nn.Module, evaluator: Evaluator, selection: Selection,
    steps: int, train_seconds: float, convention: str | None, device: torch.device, is_main: bool,
    extra: dict[str, Any] | None = None, sample_state: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Report the selected model of a finished run; returns the summary (also written to ``summary.json``).

    Args:
        convention: the logits calibrators and OOD scores see (:func:`caltrain.abstention.calibration_logits`).
        device: where the selected weights are loaded.
        is_main: write the files (the main process only).
        extra: further summary entries (``caltrain.fit``: where the data came from, ``summary["data"]``).
        sample_state: the objective's per-sample tables after the last epoch (merged across ranks), written to
            ``sample_state.npz`` when not empty.
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
    final = evaluator.final(posthoc_names=cfg.eval.posthoc, ood=bool(cfg.eval.ood), convention=convention)
    result: dict[str, Any] = {
        "epochs": cfg.epochs,
        "selected_epoch": selected_epoch,
        "steps": steps,
        "train_seconds": train_seconds,
        "task": evaluator.task,
        **final.summary,
        "abstention": evaluator.abstention,
    }
    if extra:
        result.update(extra)
    if is_main:
        final.save(run)
        if sample_state:
            save_npz(run.sample_state, **sample_state)
        atomic_write_json(run.summary, result)
    return result
