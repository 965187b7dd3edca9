"""Progress display: a rich progress bar on a terminal, one line per epoch in logs, nothing when quiet.

Both show where the whole run stands: the share of its training steps done and an estimate of the time left
(:class:`RunClock`: the wall time since the first step, evaluations included, per share done, times the share
left). The bar shows the running training loss and accuracy of the epoch (the trainer reads them on the host
every few steps).
"""

from __future__ import annotations

import sys
import time
from typing import Any, Protocol

__all__ = ["Progress", "RunClock", "format_duration", "make_progress", "set_enabled"]

_enabled = True


def set_enabled(enabled: bool) -> None:
    """Turn progress output off (or on again) in this process (a parallel suite's workers: see suite.py)."""
    global _enabled
    _enabled = bool(enabled)


def format_duration(seconds: float) -> str:
    """``"42 s"``, ``"3 min 05 s"``, ``"2 h 04 min"``.

    Example:
        >>> format_duration(4.2), format_duration(185), format_duration(7440)
        ('4.2 s', '3 min 05 s', '2 h 04 min')
    """
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, sec = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"


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


class RunClock:
    """The share of a run's training steps done and the time left, from ``start_epoch`` / ``update`` calls.

    The estimate is the wall time since the first ``start_epoch`` of this process divided by the share done
    since then, times the share left (a resumed run counts from its first new epoch); it includes the
    evaluations between epochs, and not the end of the run (calibrators, files).

    Example:
        >>> clock = RunClock(now=lambda: 0.0)
        >>> clock.start_epoch(0, 4, 10)
        >>> clock.now = lambda: 30.0
        >>> clock.update(5)  # an eighth of the run in 30 s
        >>> round(clock.fraction, 3), round(clock.seconds_left)
        (0.125, 210)
    """

    def __init__(self, now=time.perf_counter) -> None:
        self.now = now
        self.t0: float | None = None
        self.first = self.epoch = self.total = 0
        self.steps = 1
        self.done = 0

    def start_epoch(self, epoch: int, total_epochs: int, steps: int) -> None:
        if self.t0 is None:
            self.t0, self.first = self.now(), epoch
        self.epoch, self.total, self.steps, self.done = epoch, total_epochs, max(steps, 1), 0

    def update(self, steps_done: int) -> None:
        self.done = steps_done

    @property
    def fraction(self) -> float:
        """Share of the whole run's training steps done (0 to 1)."""
        return min(1.0, (self.epoch + self.done / self.steps) / max(self.total, 1))

    @property
    def seconds_left(self) -> float | None:
        """Estimated seconds to the last step, ``None`` before any step of this process."""
        if self.t0 is None:
            return None
        span = max(self.total - self.first, 1)
        done = (self.epoch - self.first + self.done / self.steps) / span
        if done <= 0:
            return None
        return (self.now() - self.t0) * (1 - done) / done

    def describe(self) -> str:
        """``"run 40%, about 2 min 10 s left"`` (the estimate left out until there is one)."""
        left = self.seconds_left
        text = f"run {100 * self.fraction:.0f}%"
        if left is not None and self.fraction < 1:
            text += f", about {format_duration(left)} left"
        return text


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
        self.clock = RunClock()

    def start_epoch(self, epoch, total_epochs, steps):
        self.clock.start_epoch(epoch, total_epochs, steps)

    def update(self, steps_done, loss, accuracy):
        self.clock.update(steps_done)

    def end_epoch(self, record):
        self.clock.update(self.clock.steps)
        print(f"{_fmt(record)} | {self.clock.describe()}", file=self.stream, flush=True)


class _RichBar(_Lines):
    def __init__(self) -> None:
        super().__init__()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn

        self._bar = RichProgress(
            TextColumn("[bold]epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}  acc {task.fields[acc]:.3f}  val ece {task.fields[ece]}"),
            TimeElapsedColumn(), TextColumn("{task.fields[run]}"), transient=False,
        )
        self._bar.start()
        self._task = None
        self._ece = "-"

    def start_epoch(self, epoch, total_epochs, steps):
        super().start_epoch(epoch, total_epochs, steps)
        if self._task is not None:
            self._bar.remove_task(self._task)
        self._task = self._bar.add_task("", total=steps, epoch=f"{epoch + 1}/{total_epochs}", loss=0.0, acc=0.0,
                                        ece=self._ece, run=self.clock.describe())

    def update(self, steps_done, loss, accuracy):
        super().update(steps_done, loss, accuracy)
        self._bar.update(self._task, completed=steps_done, loss=loss, acc=accuracy, run=self.clock.describe())

    def end_epoch(self, record):
        self.clock.update(self.clock.steps)
        val = record.get("val") or {}
        if "ece" in val:
            self._ece = f"{val['ece']:.4f}"
        self._bar.console.print(f"{_fmt(record)} | {self.clock.describe()}")

    def close(self):
        self._bar.stop()


def make_progress(quiet: bool, is_main: bool = True) -> Progress:
    """A rich bar on a terminal, epoch lines when stderr is not a terminal, silence when quiet or not rank 0."""
    if quiet or not is_main or not _enabled:
        return _Silent()
    if sys.stderr.isatty():
        try:
            return _RichBar()
        except ImportError:  # rich is an optional extra
            pass
    return _Lines()
