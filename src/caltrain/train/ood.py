"""OOD scoring at the end of a run: maximum-softmax-probability detection of each OOD set against the test split."""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch

from caltrain.abstention import calibration_logits

__all__ = ["score_ood"]


def score_ood(
    test_logits: torch.Tensor, ood_sets: Callable[[], Mapping[str, Any]],
    predict: Callable[[Any], tuple[torch.Tensor, torch.Tensor]], *, convention: str | None,
) -> tuple[dict[str, dict[str, float]], tuple[torch.Tensor, torch.Tensor]]:
    """MSP detection metrics of every OOD set against the test split, and the first set's logits and labels.

    Args:
        test_logits: the test split's logits.
        ood_sets: returns the OOD sets by name (the dataset's ``ood``).
        predict: the logits and labels of a set (:meth:`caltrain.train.evaluation.Evaluator.predict_dataset`).
        convention: the logits the score sees (:func:`caltrain.abstention.calibration_logits`): ``"renormalized"``
            drops an abstention output, None keeps every logit.
    """
    from caltrain import metrics

    scores_in = metrics.ood_score(calibration_logits(test_logits, convention).double(), "msp", from_logits=True)
    out, first = {}, None
    for name, split in ood_sets().items():
        z, y = predict(split)
        scores_out = metrics.ood_score(calibration_logits(z, convention).double(), "msp", from_logits=True)
        out[name] = metrics.ood_detection(scores_in, scores_out)
        first = first or (z, y)
    return out, first
