"""Evaluation: the model's logits on a split in dataset order (gathered across ranks), and that split's metrics.

Probabilities are a float64 softmax of the float32 logits; the metrics are :func:`caltrain.metrics.summarize`
under the run's abstention convention, with the true calibration error where the dataset knows the posterior.

The trainer talks to an evaluator through four methods, the same for every task:

- :meth:`Evaluator.train_metrics`: an accumulator of the training batches' logits (``update``/``compute``);
- :meth:`Evaluator.score`: a split's metrics (a :class:`SplitScore`: metrics, whether every logit was finite, the
  objective's summed validation statistics when asked, and the logits where the task keeps them);
- :meth:`Evaluator.final`: the end of a run on the selected model (val/test metrics, post-hoc calibrators, OOD
  sets) as a :class:`FinalResult` (the summary entries and how to write the run's files);
- :meth:`Evaluator.predict`: a split's outputs in dataset order.

:func:`make_evaluator` picks the evaluator of the dataset's task: this module's :class:`Evaluator` for
classification, :class:`caltrain.train.dense.DenseEvaluator` (streamed, pooled pixel metrics) for a dense binary
task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ContextManager

import torch
from torch import nn

from caltrain.train.distributed import DistContext, gather_rows

__all__ = ["Evaluator", "FinalResult", "SplitScore", "make_evaluator", "split_metrics"]


@dataclass
class SplitScore:
    """What :meth:`Evaluator.score` returns for one split.

    Attributes:
        metrics: the split's summary metrics (empty when ``finite`` is False).
        finite: every logit of the split was finite (the trainer stops the run otherwise).
        statistics: the objective's :meth:`~caltrain.losses.base.Objective.validation_statistics` summed over the
            split (when asked for), else None.
        logits, labels: the split's outputs in dataset order, where the task keeps them (classification), else None.
    """

    metrics: dict[str, float]
    finite: bool = True
    statistics: dict[str, torch.Tensor] | None = None
    logits: torch.Tensor | None = None
    labels: torch.Tensor | None = None


@dataclass
class FinalResult:
    """What :meth:`Evaluator.final` returns: ``summary.json`` entries and ``save(run)``, which writes the run's
    files of the end of the run (logits or examples, calibrators) into a :class:`~caltrain.train.run_dir.RunDir`."""

    summary: dict[str, Any]
    save: Callable[[Any], None]


class _TrainLogits:
    """The classification accumulator of :meth:`Evaluator.train_metrics`: keeps the epoch's training logits."""

    def __init__(self, evaluator: "Evaluator") -> None:
        self.evaluator = evaluator
        self.parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def update(self, logits: torch.Tensor, labels: torch.Tensor, index: torch.Tensor) -> None:
        self.parts.append((logits.float(), labels, index))

    def compute(self) -> dict[str, float]:
        ev = self.evaluator
        logits, labels, index = gather_rows(tuple(torch.cat(p) for p in zip(*self.parts)), ev.dist)
        return ev.metrics(logits, labels, ev.posterior("train", index))


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

    #: The task this evaluator scores (``caltrain.data.splits.TASKS``).
    task = "classification"

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
        ordered = logits.new_empty((n, *logits.shape[1:]))
        ordered[index] = logits
        ordered_labels = labels.new_empty((n, *labels.shape[1:]))
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

    def train_metrics(self) -> Any:
        """An accumulator of one epoch's training batches: ``update(logits, labels, index)``, ``compute()``."""
        return _TrainLogits(self)

    def score(self, split: str, *, statistics: Callable[..., dict[str, torch.Tensor]] | None = None) -> SplitScore:
        """The current model's metrics on ``split`` (none when a logit is not finite), with the split's logits.

        Args:
            statistics: the objective's ``validation_statistics``; called on the gathered split (its sums are
                the split's totals).
        """
        logits, labels = self.predict(split)
        if not bool(torch.isfinite(logits).all()):
            return SplitScore({}, finite=False, logits=logits, labels=labels)
        stats = statistics(logits, labels) if statistics is not None else None
        return SplitScore(self.metrics(logits, labels, self.posterior(split)), statistics=stats, logits=logits,
                          labels=labels)

    def final(self, *, posthoc_names: tuple[str, ...], ood: bool, convention: str | None) -> FinalResult:
        """Val/test metrics of the (selected) model, the calibrators of ``posthoc_names`` fitted on validation and
        scored on test (:func:`caltrain.posthoc.compare`), the OOD sets when ``ood`` (MSP detection,
        :func:`caltrain.train.ood.score_ood`); files: ``logits_{val,test,ood}.npz`` and the calibrators.

        Args:
            convention: the logits calibrators and OOD scores see (:func:`caltrain.abstention.calibration_logits`).
        """
        from caltrain import posthoc
        from caltrain.train.ood import score_ood

        logits = {s: self.predict(s) for s in ("val", "test")}
        summary: dict[str, Any] = {
            "val": self.metrics(*logits["val"], self.posterior("val")),
            "test": self.metrics(*logits["test"], self.posterior("test")),
        }
        calibrated = posthoc.compare(
            logits["val"], logits["test"], posthoc_names, n_bins=self.n_bins, abstention=convention,
            true_posterior=self.posterior("test"),
        )
        summary["posthoc"], summary["posthoc_params"] = calibrated.metrics, calibrated.params
        if ood and self.data.ood_names:
            summary["ood"], logits["ood"] = score_ood(logits["test"][0], self.data.ood, self.predict_dataset,
                                                      convention=convention)

        def save(run: Any) -> None:
            from caltrain.utils.io import save_npz

            for split, (z, y) in logits.items():
                save_npz(run.logits(split), logits=z, labels=y)
            calibrated.save(run)

        return FinalResult(summary, save)


def make_evaluator(task: str, **kwargs: Any) -> Evaluator:
    """The evaluator of ``task`` (``"classification"`` or ``"dense_binary"``), built with ``kwargs``.

    ``posthoc_pixels`` and ``seed`` are the dense evaluator's (ignored for classification).
    """
    if task == "dense_binary":
        from caltrain.train.dense import DenseEvaluator

        return DenseEvaluator(**kwargs)
    kwargs.pop("posthoc_pixels", None)
    kwargs.pop("seed", None)
    return Evaluator(**kwargs)
