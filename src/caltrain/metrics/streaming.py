"""Streaming metrics: ``update(probs, labels)`` per batch, ``compute()`` at the end, ``reset()`` to start over.

Every class keeps only float64 sums (per-bin statistics for the binned metrics: O(B) memory, O(K B) for
classwise), so pooling is exact: ``compute()`` after ``k`` batches equals the functional metric on the
concatenation, for any batch sizes, and dense inputs ``[N, K, *spatial]`` pool every pixel (no per-batch or
per-image averaging, no subsampling; ``ignore_index`` entries dropped). Equal-mass bins (AdaECE), AURC
and smooth ECE need every sample and are therefore not streamed (use :func:`summarize` on gathered
predictions).

Distributed: when ``torch.distributed`` is initialised with more than one process, ``compute()`` sums the
states of all processes with one ``all_reduce`` (on a copy; the local state is unchanged), so every rank
gets the metric of the whole split. Every rank must have called ``update`` at least once (the state shapes
are set by the first batch; :class:`ClasswiseCalibrationError` accepts ``num_classes`` to fix them upfront).

Example:
    >>> import torch
    >>> metric = CalibrationError(n_bins=10)
    >>> p = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7]], dtype=torch.float64)
    >>> metric.update(p[:2], torch.tensor([0, 1])); metric.update(p[2:], torch.tensor([1]))
    >>> round(float(metric.compute()), 6)
    0.333333
"""

from __future__ import annotations

from typing import Any

import torch

from caltrain.abstention import ABSTENTION_CONVENTIONS, apply_abstention
from caltrain.metrics.binning import BinStats, bin_statistics, uniform_bin_index, uniform_edges
from caltrain.metrics.classwise import classwise_bin_statistics
from caltrain.metrics.ece import NORMS, _top_label_values, calibration_error_from_stats, top_label_statistics
from caltrain.metrics.proper_scores import brier_per_sample, nll_per_sample
from caltrain.metrics.reliability import ReliabilityCurve
from caltrain.metrics.validation import prepare
from caltrain.utils.checks import check_choice, check_n_bins, check_positive_int

__all__ = [
    "Accuracy",
    "BrierScore",
    "CalibrationError",
    "ClasswiseCalibrationError",
    "NegativeLogLikelihood",
    "StreamingMetric",
    "StreamingSummary",
]


class StreamingMetric:
    """Base class: named float64 state tensors, summed over ``update`` calls and over processes.

    Args:
        from_logits: inputs are logits (float64 softmax applied).
        ignore_index: label value of entries to leave out (dense inputs).
        validate_args: check values on every update (``False`` in hot loops: shape checks only).
        sync: all-reduce the states across processes in ``compute()`` when a process group is active.
    """

    def __init__(
        self,
        *,
        from_logits: bool = False,
        ignore_index: int | None = None,
        validate_args: bool = True,
        sync: bool = True,
    ) -> None:
        self.from_logits = from_logits
        self.ignore_index = ignore_index
        self.validate_args = validate_args
        self.sync = sync
        self._state: dict[str, torch.Tensor] = {}
        self.reset()

    # -- subclasses implement these two
    def _statistics(self, probs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _finalize(self, state: dict[str, torch.Tensor]) -> Any:
        raise NotImplementedError

    def _num_classes(self, probs: Any) -> int | None:
        """The label range ``[0, K)`` of a batch (``None``: the number of columns)."""
        return None

    def _prepare(self, probs: Any, labels: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return prepare(
            probs,
            labels,
            from_logits=self.from_logits,
            ignore_index=self.ignore_index,
            validate_args=self.validate_args,
            num_classes=self._num_classes(probs),
        )

    def reset(self) -> None:
        """Forget every update."""
        self._state = {}

    def update(self, probs: Any, labels: Any) -> None:
        """Add one batch: ``probs [B, K(, *spatial)]`` and ``labels [B(, *spatial)]``."""
        p, y = self._prepare(probs, labels)
        for name, value in self._statistics(p, y).items():
            old = self._state.get(name)
            if old is not None and old.shape != value.shape:
                raise ValueError(
                    f"probs: this batch gives state {name!r} the shape {tuple(value.shape)}, earlier batches "
                    f"{tuple(old.shape)} (a different number of classes?)"
                )
            self._state[name] = value if old is None else old + value

    def state(self) -> dict[str, torch.Tensor]:
        """The summed state (over processes too when a process group is active)."""
        if not self._state:
            raise ValueError(f"{type(self).__name__}: no samples seen; call update() before compute()")
        state = self._state
        dist = torch.distributed
        if self.sync and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            names = sorted(state)
            flat = torch.cat([state[k].reshape(-1) for k in names]).clone()
            dist.all_reduce(flat, op=dist.ReduceOp.SUM)
            out, offset = {}, 0
            for k in names:
                size = state[k].numel()
                out[k] = flat[offset : offset + size].reshape(state[k].shape)
                offset += size
            state = out
        return state

    def compute(self) -> Any:
        """The metric over every sample seen (all processes)."""
        return self._finalize(self.state())

    def merge(self, other: "StreamingMetric") -> "StreamingMetric":
        """Add the state of ``other`` (same class and settings) into this one; returns ``self``."""
        if type(other) is not type(self):
            raise ValueError(f"other: expected a {type(self).__name__}, got {type(other).__name__}")
        for name, value in other._state.items():
            self._state[name] = value.clone() if name not in self._state else self._state[name] + value
        return self


class CalibrationError(StreamingMetric):
    """Streaming top-label ECE / RMSCE / MCE on ``n_bins`` equal-width bins ``(lo, hi]`` (see ``ece.py``).

    ``compute()`` returns a float64 scalar; ``curve()`` the :class:`ReliabilityCurve` of the pooled bins.
    """

    def __init__(self, n_bins: int = 15, norm: str = "l1", **kwargs: Any) -> None:
        self.n_bins = check_n_bins(n_bins)
        self.norm = check_choice(norm, "norm", NORMS)
        super().__init__(**kwargs)

    def _statistics(self, probs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        stats = top_label_statistics(probs, labels, self.n_bins)
        return {"count": stats.count, "conf_sum": stats.conf_sum, "acc_sum": stats.acc_sum}

    def _stats(self, state: dict[str, torch.Tensor]) -> BinStats:
        edges = uniform_edges(self.n_bins, device=state["count"].device)
        return BinStats(state["count"], state["conf_sum"], state["acc_sum"], edges)

    def _finalize(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        return calibration_error_from_stats(self._stats(state), self.norm)

    def curve(self) -> ReliabilityCurve:
        """Reliability-curve data of every sample seen."""
        return ReliabilityCurve.from_stats(self._stats(self.state()))


class ClasswiseCalibrationError(StreamingMetric):
    """Streaming classwise ECE (Kull et al. 2019) on ``n_bins`` equal-width bins per class; O(K B) state."""

    def __init__(self, n_bins: int = 15, norm: str = "l1", *, num_classes: int | None = None, **kwargs: Any) -> None:
        self.n_bins = check_n_bins(n_bins)
        self.norm = check_choice(norm, "norm", NORMS)
        self.num_classes = None if num_classes is None else check_positive_int(num_classes, "num_classes")
        super().__init__(**kwargs)

    def reset(self) -> None:
        super().reset()
        if getattr(self, "num_classes", None) is not None:
            zeros = torch.zeros(self.num_classes, self.n_bins, dtype=torch.float64)
            self._state = {"count": zeros, "conf_sum": zeros.clone(), "acc_sum": zeros.clone()}

    def _statistics(self, probs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        stats = classwise_bin_statistics(probs, labels, self.n_bins)
        out = {"count": stats.count, "conf_sum": stats.conf_sum, "acc_sum": stats.acc_sum}
        if self._state and self._state["count"].device != stats.count.device:
            self._state = {k: v.to(stats.count.device) for k, v in self._state.items()}
        return out

    def _finalize(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        stats = BinStats(state["count"], state["conf_sum"], state["acc_sum"])
        return calibration_error_from_stats(stats, self.norm).mean()


class _MeanOf(StreamingMetric):
    def _per_sample(self, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _statistics(self, probs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        values = self._per_sample(probs, labels).to(torch.float64)
        n = torch.tensor(float(values.numel()), dtype=torch.float64, device=values.device)
        return {"sum": values.sum(), "n": n}

    def _finalize(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        return state["sum"] / state["n"]


class NegativeLogLikelihood(_MeanOf):
    """Streaming mean ``-log p_y`` (float64; see ``proper_scores.py`` for the clamp)."""

    def _per_sample(self, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return nll_per_sample(probs, labels)


class BrierScore(_MeanOf):
    """Streaming mean multiclass Brier score (sum over classes)."""

    def _per_sample(self, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return brier_per_sample(probs, labels)


class Accuracy(_MeanOf):
    """Streaming top-``k`` accuracy (``top_k=1``: plain accuracy)."""

    def __init__(self, top_k: int = 1, **kwargs: Any) -> None:
        self.top_k = check_positive_int(top_k, "top_k")
        super().__init__(**kwargs)

    def _per_sample(self, probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.top_k > probs.shape[1]:
            raise ValueError(f"top_k: expected at most the number of classes {probs.shape[1]}, got {self.top_k}")
        if self.top_k == 1:
            return probs.argmax(1) == labels
        return (probs.topk(self.top_k, dim=1).indices == labels[:, None]).any(1)


class StreamingSummary(StreamingMetric):
    """The streamable part of :func:`summarize` in one state: ``compute()`` -> dict of Python floats.

    Keys: ``n``, ``accuracy``, ``nll``, ``brier``, ``ece``, ``mce``, ``rmsce``, ``classwise_ece`` (and
    ``abstention_rate`` with an ``abstention`` convention, see ``abstention.py``). AdaECE, AURC and smooth
    ECE need every sample and are not included.
    """

    def __init__(self, n_bins: int = 15, *, abstention: str | None = None, **kwargs: Any) -> None:
        self.n_bins = check_n_bins(n_bins)
        if abstention is not None:
            check_choice(abstention, "abstention", ABSTENTION_CONVENTIONS)
        self.abstention = abstention
        super().__init__(**kwargs)

    def _num_classes(self, probs: Any) -> int | None:
        if self.abstention is None:
            return None
        shape = getattr(probs, "shape", None)
        return int(shape[1]) - 1 if shape is not None and len(shape) >= 2 else None

    def _statistics(self, probs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        if self.abstention is not None:
            scores, _ = apply_abstention(probs, self.abstention)
            out["abstained"] = (probs.argmax(1) == probs.shape[1] - 1).to(torch.float64).sum()
        else:
            scores = probs
        conf, correct = _top_label_values(scores, labels)
        stats = bin_statistics(conf, correct, uniform_bin_index(conf, self.n_bins), self.n_bins)
        cw = classwise_bin_statistics(scores, labels, self.n_bins)
        out.update(
            n=torch.tensor(float(labels.numel()), dtype=torch.float64, device=conf.device),
            correct=correct.to(torch.float64).sum(),
            nll=nll_per_sample(scores, labels).sum(),
            brier=brier_per_sample(scores, labels).sum(),
            count=stats.count, conf_sum=stats.conf_sum, acc_sum=stats.acc_sum,
            cw_count=cw.count, cw_conf_sum=cw.conf_sum, cw_acc_sum=cw.acc_sum,
        )
        return out

    def _finalize(self, state: dict[str, torch.Tensor]) -> dict[str, float]:
        top = BinStats(state["count"], state["conf_sum"], state["acc_sum"])
        cw = BinStats(state["cw_count"], state["cw_conf_sum"], state["cw_acc_sum"])
        n = state["n"]
        values = {
            "n": n,
            "accuracy": state["correct"] / n,
            "nll": state["nll"] / n,
            "brier": state["brier"] / n,
            "ece": calibration_error_from_stats(top, "l1"),
            "mce": calibration_error_from_stats(top, "max"),
            "rmsce": calibration_error_from_stats(top, "l2"),
            "classwise_ece": calibration_error_from_stats(cw, "l1").mean(),
        }
        if "abstained" in state:
            values["abstention_rate"] = state["abstained"] / n
        flat = torch.stack([v.to(torch.float64) for v in values.values()]).cpu().tolist()
        return dict(zip(values, flat))
