"""Model selection: which epoch's model the run reports (``eval.select``).

``last`` reports the final model; ``best_val_loss`` / ``best_val_accuracy`` the epoch with the lowest validation
NLL / highest validation accuracy (the first such epoch on ties), whose weights the trainer saves to
``best.pt`` when it improves. The state (``{"value", "epoch"}``) is saved in every checkpoint.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Selection"]


class Selection:
    """The best epoch so far under ``select`` (epochs are 1-based, as in ``metrics.jsonl``)."""

    def __init__(self, select: str, best: dict[str, Any] | None = None) -> None:
        self.select = select
        self.best: dict[str, Any] = best if best is not None else {"value": None, "epoch": None}

    def value(self, record: dict[str, Any]) -> float | None:
        """The score (higher is better) of an epoch's record, or None when selecting the last epoch."""
        if self.select == "last":
            return None
        key, sign = ("nll", -1.0) if self.select == "best_val_loss" else ("accuracy", 1.0)
        return sign * record["val"][key]

    def update(self, epoch: int, record: dict[str, Any]) -> bool:
        """Take the record of 0-based ``epoch`` into account; True when it is the new best."""
        value = self.value(record)
        if value is None:
            return False
        if self.best["value"] is None or value > self.best["value"]:
            self.best = {"value": value, "epoch": epoch + 1}
            return True
        return False

    @property
    def best_epoch(self) -> int | None:
        """The selected epoch when it is not simply the last one (its weights are in ``best.pt``), else None."""
        return self.best["epoch"] if self.select != "last" else None
