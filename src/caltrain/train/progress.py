"""Progress display: a rich progress bar on a terminal, one line per epoch in logs, nothing when quiet."""

from __future__ import annotations

import sys
from typing import Any, Protocol

__all__ = ["Progress", "make_progress"]


class Progress(Protocol):
    def start_epoch(self, epoch: int, total_epochs: int, steps: int) -> None: ...
    def update(self, steps_done: int, loss: float, accuracy: float) -> None: ...
    def end_epoch(self, record: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


def _fmt(record: dict[str, Any]) -> str:
    parts = [f"epoch {record['epoch']}"]
    train = record.get("train", {})
    if "loss" in train:
        parts.append(f"loss {train['loss']:.4f}")
    for split in ("train", "val"):  # never test: a reader must not select on test numbers while training
        m = record.get(split)
        if m and "accuracy" in m:
            parts.append(f"{split} acc {m['accuracy']:.4f} ece {m.get('ece', float('nan')):.4f}")
    parts.append(f"{record.get('time_s', 0):.1f}s")
    return " | ".join(parts)


class _Silent:
    def start_epoch(self, epoch, total_epochs, steps):
        pass

    def update(self, steps_done, loss, accuracy):
        pass

    def end_epoch(self, record):
        pass

    def close(self):
        pass


class _Lines(_Silent):
    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr

    def end_epoch(self, record):
        print(_fmt(record), file=self.stream, flush=True)


class _RichBar(_Lines):
    def __init__(self) -> None:
        super().__init__()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

        self._bar = RichProgress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.3f}  val ece {task.fields[ece]}"),
            TimeElapsedColumn(), transient=False,
        )
        self._bar.start()
        self._task = None
        self._ece = "-"

    def start_epoch(self, epoch, total_epochs, steps):
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task("", total=steps, epoch=f"{epoch + 1}/{total_epochs}", loss=0.0, acc=0.0,
                                        ece=self._ece)

    def update(self, steps_done, loss, accuracy):
        self._bar.update(self._task, completed=steps_done, loss=loss, acc=accuracy)

    def end_epoch(self, record):
        val = record.get("val") or {}
        if "ece" in val:
            self._ece = f"{val['ece']:.4f}"
        self._bar.console.print(_fmt(record))

    def close(self):
        self._bar.stop()


def make_progress(quiet: bool, is_main: bool = True) -> Progress:
    """A rich bar on a terminal, epoch lines when stderr is not a terminal, silence when quiet or not rank 0."""
    if quiet or not is_main:
        return _Silent()
    if sys.stderr.isatty():
        try:
            return _RichBar()
        except ImportError:  # rich is an optional extra
            pass
    return _Lines()
