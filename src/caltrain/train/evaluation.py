"""Evaluation: the model's logits on a split in dataset order (gathered across ranks), and that split's metrics.

Probabilities are a float64 softmax of the float32 logits; the metrics are :func:`caltrain.metrics.summarize`
under the run's abstention convention, with the true calibration error where the dataset knows the posterior.
"""

from __future__ import annotations

from typing import Any, Callable, ContextManager

import torch
from torch import nn

from caltrain.train.distributed import DistContext, gather_rows

__all__ = ["Evaluator", "split_metrics"]


def split_metrics(logits: torch.Tensor, labels: torch.Tensor, true_posterior: torch.Tensor | None, *,
                  n_bins: int, abstention: str | None) -> dict[str, float]:
    """The summary metrics of ``logits`` (probabilities from a float64 softmax) against ``labels``."""
    from caltrain import metrics

    probs = torch.softmax(logits.double(), dim=1)
    return metrics.summarize(probs, labels, n_bins=n_bins, true_posterior=true_posterior, abstention=abstention)


class Evaluator:
    """Predicts and scores the current model on the dataset's splits.

    Args:
        model: the trained module, put in eval mode before predicting.
        forward_model: what is called on the inputs (``model`` or its ``torch.compile`` wrapper).
        data: the dataset (``train``/``val``/``test`` splits, each with ``true_posterior`` or None).
        loaders: the evaluation loader of each of the dataset's splits (unshuffled, not augmented).
        make_loader: builds such a loader for another split (an OOD set).
        n_bins, abstention: passed to the metrics.
        autocast: a factory of the mixed-precision context the forward passes run in.
        prepare: puts a batch of inputs in the model's memory format.
        dist: the process group (predictions are gathered from every rank).
        device: where the true posteriors go.
    """

    def __init__(
        self, *, model: nn.Module, forward_model: Callable[[torch.Tensor], torch.Tensor], data: Any,
        loaders: dict[str, Any], make_loader: Callable[[Any], Any], n_bins: int, abstention: str | None,
        autocast: Callable[[], ContextManager], prepare: Callable[[torch.Tensor], torch.Tensor], dist: DistContext,
        device: torch.device,
    ) -> None:
        self.model = model
        self.forward_model = forward_model
        self.data = data
        self.loaders = loaders
        self.make_loader = make_loader
        self.n_bins = n_bins
        self.abstention = abstention
        self.autocast = autocast
        self.prepare = prepare
        self.dist = dist
        self.device = device

    def predict(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (float32) and labels of ``split`` in dataset order, gathered across ranks."""
        return self.predict_loader(self.loaders[split], len(getattr(self.data, split)))

    def predict_dataset(self, split: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Like :meth:`predict`, for a split that is not one of the dataset's own (an OOD set)."""
        return self.predict_loader(self.make_loader(split), len(split))

    @torch.no_grad()
    def predict_loader(self, loader: Any, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and labels of the ``n`` samples ``loader`` yields (with their indices), in index order."""
        self.model.eval()
        logits_parts, label_parts, index_parts = [], [], []
        for x, y, idx in loader:
            with self.autocast():
                out = self.forward_model(self.prepare(x))
            logits_parts.append(out.float())
            label_parts.append(y)
            index_parts.append(idx)
        logits, labels, index = gather_rows(
            (torch.cat(logits_parts), torch.cat(label_parts), torch.cat(index_parts)), self.dist
        )
        ordered = logits.new_empty((n, logits.shape[1]))
        ordered[index] = logits
        ordered_labels = labels.new_empty((n,))
        ordered_labels[index] = labels
        return ordered, ordered_labels

    def posterior(self, split: str, index: torch.Tensor | None = None) -> torch.Tensor | None:
        """The true posterior of ``split`` (rows ``index``), or None where the dataset does not know it."""
        post = getattr(self.data, split).true_posterior
        if post is None:
            return None
        post = post.to(self.device)
        return post if index is None else post[index]

    def metrics(self, logits: torch.Tensor, labels: torch.Tensor,
                true_posterior: torch.Tensor | None) -> dict[str, float]:
        """:func:`split_metrics` with the run's bins and abstention convention."""
        return split_metrics(logits, labels, true_posterior, n_bins=self.n_bins, abstention=self.abstention)

    def evaluate(self, splits: tuple[str, ...]) -> dict[str, dict[str, float]]:
        """Metrics of the current model on each of ``splits``."""
        return {s: self.metrics(*self.predict(s), self.posterior(s)) for s in splits}
