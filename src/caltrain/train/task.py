"""What a task means to the trainer: which objectives fit it, how many outputs the model has, what is refused.

A dataset names its task (``DatasetSplits.task``, :data:`caltrain.data.splits.TASKS`): ``"classification"``
(labels ``[N]``, logits ``[N, K]``) or ``"dense_binary"`` (masks ``[N, 1, H, W]``, one logit per pixel, logits
``[N, 1, H, W]``). An objective lists the tasks it trains (``Objective.tasks``). The trainer asks this module,
and nothing else, about the difference; the evaluation of each task is its evaluator's
(:func:`caltrain.train.evaluation.make_evaluator`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["check_task", "model_outputs", "objective_classes"]


def objective_classes(task: str, num_classes: int) -> int:
    """The ``num_classes`` an objective is built with: the dataset's K, or 2 (background, foreground) for a dense
    binary task, whose dataset reports one output per pixel (``num_classes == 1``)."""
    return 2 if task == "dense_binary" else num_classes


def model_outputs(task: str, objective: Any) -> int:
    """The model's output channels: ``objective.num_outputs`` (K, or K + 1 with an abstention output), or 1 for a
    dense binary task (one foreground logit per pixel, whatever the objective: ``focal`` trains both tasks)."""
    return 1 if task == "dense_binary" else objective.num_outputs


def check_task(task: str, objective: Any, config: Any) -> None:
    """Refuse an objective, or a setting, that does not fit the dataset's task, before any work.

    The task follows from the dataset (``DatasetSplits.task``); the objective must list it in ``objective.tasks``.
    """
    if task not in objective.tasks:
        from caltrain import losses

        fitting = [name for name in losses.names() if task in losses.tasks(name)]
        raise ValueError(
            f"loss.name: {config.loss.name!r} trains {' and '.join(sorted(objective.tasks))} outputs, but data.name "
            f"{config.data.name!r} is a {task} task; objectives for it: {', '.join(fitting)}"
        )
    if task == "classification":
        return
    if objective.needs_validation:
        raise ValueError(f"loss.name: {config.loss.name!r} needs every validation logit, which a {task} task does "
                         "not keep (dense objectives ask for validation_statistics instead)")
    if config.curvature.every_steps:
        raise ValueError(f"curvature.every_steps: curvature tracking is for classifiers; a {task} task has none")
    if config.eval.abstention is not None:
        raise ValueError(f"eval.abstention: {config.eval.abstention!r} applies to classifiers; a {task} task has "
                         "no abstention output")
